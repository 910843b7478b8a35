/* The record form: autosave to the server as the counsellor types (debounced), keep every
   keystroke in localStorage while offline or signed out, replay it when back, and show the
   differences when another tab saved first (HTTP 409). */
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form) return;
  var id = form.dataset.recordId;
  var readOnly = form.dataset.readonly === "1";
  var version = parseInt(form.dataset.version, 10);
  var KEY = "hotline-draft-" + id;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var ui = JSON.parse((document.getElementById("ui-text") || {}).textContent || "{}");
  var server = JSON.parse((document.getElementById("record-data") || {}).textContent || "{}");
  var statusEl = document.getElementById("save-status");
  var timer = null, inFlight = false, again = false, conflictVersion = null;
  var SKIP = {csrf_token: 1, version: 1, action: 1};
  // Checkbox groups that give a list of codes (issues, caller flags), not one yes/no.
  var MULTI = {issues: 1};
  form.querySelectorAll("fieldset.multi input[type=checkbox]").forEach(function (el) { MULTI[el.name] = 1; });

  function status(text, cls) {
    statusEl.textContent = text || "";
    statusEl.className = "small " + (cls || "");
  }

  function collect() {
    var out = {primary_issue: ""};
    Object.keys(MULTI).forEach(function (k) { out[k] = []; });
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || SKIP[el.name]) return;
      if (MULTI[el.name]) { if (el.checked) out[el.name].push(el.value); return; }
      if (el.type === "radio") { if (el.checked) out[el.name] = el.value; return; }
      if (el.type === "checkbox") { out[el.name] = el.checked; return; }
      out[el.name] = el.value;
    });
    return out;
  }

  function apply(fields) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || SKIP[el.name] || !(el.name in fields)) return;
      var v = fields[el.name];
      if (MULTI[el.name]) { el.checked = (v || []).indexOf(el.value) >= 0; return; }
      if (el.type === "radio") { el.checked = v === el.value; return; }
      if (el.type === "checkbox") { el.checked = !!v; return; }
      el.value = v == null ? "" : v;
    });
  }

  function setVersion(v) {
    version = v;
    form.dataset.version = String(v);
    document.querySelectorAll(".version-field").forEach(function (el) { el.value = String(v); });
  }

  function load() { try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { return null; } }
  function store(fields, dirty) {
    try { localStorage.setItem(KEY, JSON.stringify({base: version, fields: fields, dirty: dirty, at: Date.now()})); }
    catch (e) { /* storage full or disabled: the server copy still works */ }
  }

  function same(a, b) {
    var keys = Object.keys(a);
    for (var i = 0; i < keys.length; i++) {
      var k = keys[i], x = a[k], y = b[k];
      if (MULTI[k] || Array.isArray(x) || Array.isArray(y)) {
        if ((x || []).slice().sort().join() !== (y || []).slice().sort().join()) return false;
        continue;
      }
      if (x === "" || x === false) x = null;
      if (y === "" || y === false) y = null;
      if (x != null && y != null && String(x) === String(y)) continue;
      if (x !== y) return false;
    }
    return true;
  }

  function showConflict(body) {
    var box = document.getElementById("conflict-box");
    var rows = document.getElementById("conflict-rows");
    document.getElementById("conflict-detail").textContent = body.detail || ui.conflict;
    rows.textContent = "";
    Object.keys(body.differences || {}).forEach(function (k) {
      var d = body.differences[k], tr = document.createElement("tr");
      [d.label || k, d.yours, d.theirs].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = Array.isArray(v) ? v.join(", ") : (v == null ? "—" : String(v));
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    conflictVersion = body.current_version;
    box.hidden = false;
  }

  function save(opts) {
    if (readOnly) return Promise.resolve();
    opts = opts || {};
    var fields = collect();
    store(fields, true);
    if (!navigator.onLine) { status(ui.offline, "offline"); return Promise.resolve(); }
    if (inFlight) { again = true; return Promise.resolve(); }
    if (conflictVersion !== null && !opts.force) return Promise.resolve();
    inFlight = true;
    status(ui.saving, "muted");
    return fetch("/records/" + encodeURIComponent(id), {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({version: version, fields: fields})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok) {
          setVersion(body.version);
          var now = collect();
          store(now, !same(now, fields));
          status(ui.saved + " · v" + body.version, "muted");
          document.body.dataset.savedVersion = String(body.version);
        } else if (r.status === 409 && body.current_version && !Object.keys(body.differences || {}).length) {
          // The server already holds exactly these values (a save whose answer was lost when the
          // page reloaded): not a conflict; carry on from the server's version.
          setVersion(body.current_version);
          again = true;
        } else if (r.status === 409) {
          showConflict(body);
          status(body.detail, "error");
        } else if (r.status === 401 || r.status === 403) {
          statusEl.textContent = ui.session_ended + " ";
          statusEl.className = "small error";
          var a = document.createElement("a");
          a.href = "/login?next=" + encodeURIComponent(location.pathname);
          a.target = "_blank";
          a.textContent = ui.sign_in_again;
          statusEl.appendChild(a);
        } else if (r.status === 422) {
          if (body.version) setVersion(body.version);
          status(body.detail, "error");
        } else {
          status(body.detail || ("HTTP " + r.status), "error");
        }
      });
    }, function () {
      status(ui.offline, "offline");
    }).then(function () {
      inFlight = false;
      if (again) { again = false; schedule(); }
    });
  }

  function schedule() {
    clearTimeout(timer);
    var fields = collect();
    store(fields, true);  // every keystroke survives a crash or a reload, online or not
    timer = setTimeout(save, 700);
  }

  if (!readOnly) {
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    window.addEventListener("online", function () { save(); });
    window.addEventListener("offline", function () { status(ui.offline, "offline"); });
    form.addEventListener("submit", function (e) {
      if (!navigator.onLine) { e.preventDefault(); store(collect(), true); status(ui.offline, "offline"); }
    });
    var nc = document.getElementById("nc-form");
    if (nc) nc.addEventListener("submit", function () { try { localStorage.removeItem(KEY); } catch (e) {} });
    document.getElementById("keep-mine").addEventListener("click", function () {
      if (conflictVersion === null) return;
      setVersion(conflictVersion);
      conflictVersion = null;
      document.getElementById("conflict-box").hidden = true;
      save({force: true});
    });
    document.getElementById("take-theirs").addEventListener("click", function () {
      try { localStorage.removeItem(KEY); } catch (e) {}
      location.reload();
    });
    // Replay what this browser kept and the server has not seen.
    var kept = load();
    if (kept && kept.fields && !kept.dirty && kept.base > version) {
      // This browser already saved a newer version than the page shows: the page was rendered
      // while that save was still being written (a reload right after the network came back).
      // What the browser kept is what the server now holds, so show it.
      apply(kept.fields);
      setVersion(kept.base);
    } else if (kept && kept.dirty && kept.fields) {
      if (same(kept.fields, server)) {
        store(kept.fields, false);
      } else {
        apply(kept.fields);
        if (kept.base && kept.base !== version) { setVersion(kept.base); }  // older: a conflict to show; newer: the page is stale
        save();
      }
    } else if (kept && form.dataset.state === "completed") {
      try { localStorage.removeItem(KEY); } catch (e) {}
    }
  }

  // This record's call: facts and the caller's history (server-rendered, escaped).
  var thisCall = document.getElementById("this-call");
  if (thisCall) {
    fetch(thisCall.dataset.historyUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html) thisCall.querySelector(".pop-history").innerHTML = html; })
      .catch(function () {});
  }

  // Side panels: directory and legal quick-reference, fetched as HTML fragments.
  document.querySelectorAll(".panel").forEach(function (panel) {
    var f = panel.querySelector(".panel-search"), body = panel.querySelector(".panel-body");
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      var q = f.querySelector("input").value;
      var url = panel.dataset.url + "?record_id=" + encodeURIComponent(id) + "&q=" + encodeURIComponent(q);
      if (panel.dataset.kind === "legal") url += "&issues=" + encodeURIComponent(collect().issues.join(","));
      fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.text(); })
        .then(function (html) { body.innerHTML = html; });
    });
    body.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("button[data-ref-id]");
      if (!b) return;
      e.preventDefault();
      b.disabled = true;
      fetch("/records/" + encodeURIComponent(id) + "/references", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({kind: panel.dataset.kind, ref_id: b.dataset.refId, label: b.dataset.label || b.textContent})
      }).then(function (r) { b.classList.add(r.ok ? "done" : "failed"); if (!r.ok) b.disabled = false; },
              function () { b.classList.add("failed"); b.disabled = false; });
    });
  });

  document.addEventListener("keydown", function (e) {
    var k = (e.key || "").toLowerCase();
    if (e.ctrlKey && k === "s") { e.preventDefault(); clearTimeout(timer); save(); }
    else if (e.ctrlKey && k === "enter") { e.preventDefault(); var c = document.getElementById("complete-btn"); if (c) c.click(); }
    else if (e.altKey && k === "d") { e.preventDefault(); document.querySelector("#directory-panel input").focus(); }
    else if (e.altKey && k === "l") { e.preventDefault(); document.querySelector("#legal-panel input").focus(); }
    else if (e.altKey && k === "n") { e.preventDefault(); var n = document.getElementById("notes"); if (n) n.focus(); }
  });
})();
