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
  var timer = null, inFlight = false, again = false, completeAfter = false, conflictVersion = null;
  var refQueue = Promise.resolve();
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
    form.dispatchEvent(new CustomEvent("hotline:applied"));  // e.g. the place pickers show the names
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

  // ---------------------------------------------------------------- conflicts, field by field
  // ``base``: the values this tab last knew to be on the server.  When another tab saved first,
  // a field only one side changed is merged silently; a field both changed is the counsellor's
  // choice (mine, saved, or for text both kept and editable).  The server keeps the rejected
  // version in the history, so no text is lost whatever is chosen.
  var base = JSON.parse(JSON.stringify(server));
  var conflict = null;
  var TEXTS = {notes: 1, callback_safe_time: 1, referral_to: 1, referral_data: 1, ethnic_minority: 1, language: 1};

  function sameValue(x, y) { var a = {}, b = {}; a.k = x; b.k = y; return same(a, b); }
  function shown(v) { return Array.isArray(v) ? v.join(", ") : (v == null || v === "" ? "—" : String(v)); }

  function mergeText(b, mineV, theirs) {
    b = b || ""; mineV = mineV || ""; theirs = theirs || "";
    if (mineV.indexOf(b) === 0 && theirs.indexOf(b) === 0) return theirs + mineV.slice(b.length);
    return theirs + "\n---\n" + mineV;
  }

  function showConflict(body) {
    var box = document.getElementById("conflict-box");
    var rows = document.getElementById("conflict-rows");
    var mineNow = collect();
    var merged = {}, open = [];
    Object.keys(body.differences || {}).forEach(function (k) {
      var d = body.differences[k], b = base[k];
      if (sameValue(mineNow[k] !== undefined ? mineNow[k] : d.yours, b)) merged[k] = d.theirs;  // only they changed it
      else if (sameValue(d.theirs, b)) merged[k] = d.yours;  // only I changed it
      else open.push(k);
    });
    apply(merged);  // decided already: shown at once
    conflict = {version: body.current_version, differences: body.differences || {}, merged: merged, open: open};
    conflictVersion = body.current_version;
    if (!open.length) { finishMerge(); return; }
    document.getElementById("conflict-detail").textContent = body.detail || ui.conflict;
    rows.textContent = "";
    open.forEach(function (k) {
      var d = body.differences[k], tr = document.createElement("tr");
      tr.dataset.field = k;
      [d.label || k, shown(d.yours), shown(d.theirs)].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      var td = document.createElement("td");
      var choices = TEXTS[k] ? ["both", "mine", "theirs"] : ["mine", "theirs"];
      choices.forEach(function (c, i) {
        var lab = document.createElement("label"), r = document.createElement("input");
        lab.className = "check small";
        r.type = "radio"; r.name = "merge-" + k; r.value = c; r.checked = i === 0;
        lab.appendChild(r); lab.appendChild(document.createTextNode(" " + ui[c]));
        td.appendChild(lab);
      });
      if (TEXTS[k]) {
        var ta = document.createElement("textarea");
        ta.className = "merge-text"; ta.rows = 4;
        ta.value = mergeText(base[k], d.yours, d.theirs);
        td.appendChild(ta);
        td.addEventListener("change", function (e) {
          if (e.target.type !== "radio") return;
          ta.value = e.target.value === "mine" ? (d.yours || "") : e.target.value === "theirs" ? (d.theirs || "")
            : mergeText(base[k], d.yours, d.theirs);
        });
      }
      tr.appendChild(td);
      rows.appendChild(tr);
    });
    box.hidden = false;
    status(body.detail, "error");
  }

  function finishMerge(choose) {
    if (!conflict) return;
    var values = {};
    Object.keys(conflict.merged).forEach(function (k) { values[k] = conflict.merged[k]; });
    conflict.open.forEach(function (k) {
      var d = conflict.differences[k];
      var tr = document.querySelector('#conflict-rows tr[data-field="' + k + '"]');
      var pick = choose || (tr && (tr.querySelector("input[type=radio]:checked") || {}).value) || "mine";
      if (TEXTS[k]) {
        if (choose === "mine") values[k] = mergeText(base[k], d.yours, d.theirs);  // keep mine: their text stays too
        else if (choose === "theirs") values[k] = d.theirs;
        else values[k] = tr ? tr.querySelector("textarea.merge-text").value : mergeText(base[k], d.yours, d.theirs);
      } else {
        values[k] = pick === "theirs" ? d.theirs : d.yours;
      }
    });
    apply(values);
    setVersion(conflict.version);
    conflictVersion = null;
    conflict = null;
    document.getElementById("conflict-box").hidden = true;
    save({force: true, merge: true}).then(function () { status(ui.merged, "muted"); });
  }

  function save(opts) {
    if (readOnly) return Promise.resolve();
    opts = opts || {};
    var fields = collect();
    store(fields, true);
    if (!navigator.onLine) { status(ui.offline, "offline"); return Promise.resolve(); }
    if (inFlight) {  // after the save under way; a completion asked meanwhile is not lost
      if (opts.complete) completeAfter = true; else again = true;
      return Promise.resolve();
    }
    if (conflictVersion !== null && !opts.force) return Promise.resolve();
    inFlight = true;
    status(ui.saving, "muted");
    return fetch("/records/" + encodeURIComponent(id), {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({version: version, fields: fields, merge: !!opts.merge, complete: !!opts.complete})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok) {
          base = JSON.parse(JSON.stringify(fields));
          showErrors({});
          if (opts.complete && body.next) {
            try { localStorage.removeItem(KEY); } catch (e) {}
            window.location.assign(body.next);  // back to the live screen
            return;
          }
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
          if (body.errors && body.errors.version === undefined) base = JSON.parse(JSON.stringify(fields));
          status(body.detail, "error");
          showErrors(body.errors || {});
        } else {
          status(ui.failed.replace("%(status)s", String(r.status)), "error");
        }
      });
    }, function () {
      status(ui.offline, "offline");
    }).then(function () {
      inFlight = false;
      if (completeAfter) { completeAfter = false; again = false; save({complete: true}); }
      else if (again) { again = false; schedule(); }
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
    // Save and Complete go through fetch: no page is posted, so going back never asks to resend a
    // form; errors show beside their fields and in the list above the form.
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!navigator.onLine) { store(collect(), true); status(ui.offline, "offline"); return; }
      var action = e.submitter && e.submitter.value;
      clearTimeout(timer);
      save({complete: action === "complete"});
    });
    var nc = document.getElementById("nc-form");
    if (nc) nc.addEventListener("submit", function () { try { localStorage.removeItem(KEY); } catch (e) {} });
    document.getElementById("keep-mine").addEventListener("click", function () { finishMerge("mine"); });
    document.getElementById("merge-apply").addEventListener("click", function () { finishMerge(); });
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
      // One at a time (each is an edit of the record), and the record's new version is adopted so
      // the next autosave is not taken for another tab's change.
      // A signed-off record asks for the reason first (lock-reason.js); cancelling changes nothing.
      refQueue = refQueue.then(function () {
        return window.hotlineReferences.give(id, {
          kind: panel.dataset.kind, ref_id: b.dataset.refId, label: b.dataset.label || b.textContent
        }).then(function (r) {
          if (r === null) { b.disabled = false; return; }
          b.classList.remove("failed");
          b.classList.add(r.ok ? "done" : "failed");
          if (!r.ok) { b.disabled = false; return; }
          return r.json().then(function (d) {
            if (d && d.version === version + 1 && !inFlight) setVersion(d.version);
          }, function () {});
        }, function () { b.classList.add("failed"); b.disabled = false; });
      });
    });
  });

  // ---------------------------------------------------------------- errors beside the fields
  function showErrors(errors) {
    var box = document.getElementById("form-errors");
    form.querySelectorAll(".field-error.js").forEach(function (el) { el.remove(); });
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    var names = Object.keys(errors || {});
    if (!box) return;
    var list = box.querySelector("ul");
    list.textContent = "";
    names.forEach(function (name) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = "#f-" + name; a.textContent = errors[name];
      li.appendChild(a); list.appendChild(li);
      var field = document.getElementById("f-" + name);
      if (field) {
        field.classList.add("has-error");
        var p = document.createElement("p");
        p.className = "field-error js"; p.textContent = errors[name];
        field.appendChild(p);
      }
    });
    box.hidden = !names.length;
    if (names.length) box.scrollIntoView({block: "nearest"});
  }

  // ---------------------------------------------------------------- imminent risk
  var riskSelect = form.querySelector('select[name="risk"]');
  function riskShown(prompt) {
    var on = riskSelect && riskSelect.value === "imminent";
    var banner = document.getElementById("risk-banner");
    if (banner) banner.hidden = !on;
    var cc = document.getElementById("call-card");
    if (cc) cc.classList.toggle("risk-imminent", on);
    var badge = document.getElementById("cc-risk");
    if (badge) badge.hidden = !on;
    form.classList.toggle("risk-imminent", on);
    var dlg = document.getElementById("risk-dialog");
    if (on && prompt && dlg && dlg.showModal && !dlg.open) dlg.showModal();
  }
  if (riskSelect) {
    riskSelect.addEventListener("change", function () { riskShown(true); });
    riskShown(false);
  }


  document.addEventListener("keydown", function (e) {
    var k = (e.key || "").toLowerCase();
    if (e.ctrlKey && k === "s") { e.preventDefault(); clearTimeout(timer); save(); }
    else if (e.ctrlKey && k === "enter") { e.preventDefault(); var c = document.getElementById("complete-btn"); if (c) c.click(); }
    else if (e.altKey && k === "d") { e.preventDefault(); document.querySelector("#directory-panel input").focus(); }
    else if (e.altKey && k === "l") { e.preventDefault(); document.querySelector("#legal-panel input").focus(); }
    else if (e.altKey && k === "g") { e.preventDefault(); var n = document.getElementById("notes"); if (n) n.focus(); }
  });
})();
