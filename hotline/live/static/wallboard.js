/* Supervisor wallboard: live over the same event stream (board=1), which also carries the
   server's figures ("wallboard" events, at most one a second, after updates), so the board is
   always the server's truth without asking for it.  Text only, never markup. */
(function () {
  "use strict";
  var board = document.getElementById("wallboard");
  if (!board) return;
  var data = JSON.parse(document.getElementById("wallboard-data").textContent);
  var labels = JSON.parse(document.getElementById("wallboard-labels").textContent);
  var statusEl = document.getElementById("sse-status");
  var spyLabels = JSON.parse((document.getElementById("wallboard-spy") || {}).textContent || "{}");
  var spyStatus = document.getElementById("wb-spy-status");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var centre = board.dataset.centre;
  var pending = null, lastId = null, es = null;

  function fmt(s) { s = Math.max(0, Math.round(s)); var m = Math.floor(s / 60), r = s % 60; return m + ":" + (r < 10 ? "0" : "") + r; }
  function since(iso) { return (Date.now() - Date.parse(iso)) / 1000; }
  function row(cells, cls) {
    var tr = document.createElement("tr");
    cells.forEach(function (c, i) {
      var td = document.createElement("td");
      td.textContent = c == null ? "" : String(c);
      if (cls && cls[i]) td.className = cls[i];
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(id, rows, emptyText) {
    var tb = document.getElementById(id);
    tb.textContent = "";
    if (!rows.length) { tb.appendChild(row([emptyText], ["muted"])); return; }
    rows.forEach(function (r) { tb.appendChild(r); });
  }
  // an overflowed call: the line, and whether it came from another centre or went to one
  function lineText(c) { return c.overflow ? c.line + " · " + (labels["overflow_" + c.overflow] || "") : c.line; }
  function draw() {
    fill("wb-waiting", data.waiting.map(function (w) {
      var s = since(w.since);
      var tr = row([lineText(w), w.caller, fmt(s)], [null, "mono", (s > 60 ? "long-wait " : "") + "wb-since"]);
      tr.dataset.callId = w.id; tr.dataset.since = w.since;
      if (w.overflow) tr.dataset.overflow = w.overflow;
      return tr;
    }), labels.nobody_waiting);
    fill("wb-progress", data.in_progress.map(function (p) {
      var tr = row([p.counsellor, lineText(p), fmt(since(p.since))], [null, null, "wb-since"]);
      tr.dataset.callId = p.id; tr.dataset.since = p.since;
      if (p.overflow) tr.dataset.overflow = p.overflow;
      var td = document.createElement("td");
      td.className = "wb-spy";
      if (p.spy) {
        ["listen", "whisper", "barge"].forEach(function (mode) {
          var b = document.createElement("button");
          b.type = "button"; b.className = "small"; b.dataset.mode = mode; b.dataset.callId = p.id;
          b.textContent = spyLabels[mode] || mode; b.title = spyLabels[mode + "_title"] || "";
          td.appendChild(b);
        });
      }
      tr.appendChild(td);
      return tr;
    }), labels.no_calls_in_progress);
    fill("wb-presence", data.presence.map(function (p) {
      var tr = row([p.name, labels[p.state] || p.state], [null, "state-" + p.state]);
      tr.dataset.userId = p.user_id; tr.dataset.state = p.state; return tr;
    }), labels.no_counsellors);
    Object.keys(data.totals).forEach(function (k) {
      var dd = board.querySelector('[data-total="' + k + '"]');
      if (dd) dd.textContent = String(data.totals[k]);
    });
    (data.figures || []).forEach(function (f) {  // the domains' figures (e.g. callbacks waiting)
      var dd = board.querySelector('[data-figure="' + f.key + '"]');
      if (dd) dd.textContent = String(f.text);
    });
    var sv = data.service || {warnings: []};
    board.querySelectorAll("[data-metric]").forEach(function (dd) {
      var v = sv[dd.dataset.metric];
      dd.textContent = v === null || v === undefined ? "\u2014" : v + (dd.dataset.unit === "percent" ? " %" : " s");
    });
    board.querySelectorAll("[data-warning]").forEach(function (li) {
      li.hidden = (sv.warnings || []).indexOf(li.dataset.warning) < 0;
    });
  }
  function listen(button) {
    spyStatus.textContent = "";
    fetch("/live/calls/" + encodeURIComponent(button.dataset.callId) + "/listen", {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({mode: button.dataset.mode})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        spyStatus.textContent = r.ok ? spyLabels.ringing : (spyLabels.failed + " " + (body.detail || r.status));
        spyStatus.className = "small " + (r.ok ? "ok" : "error");
      });
    }).catch(function () { spyStatus.textContent = labels.connection_lost; });
  }
  document.getElementById("wb-progress").addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("button[data-mode]") : null;
    if (b) listen(b);
  });
  // Re-read when the stream (re)opens or the server could not keep every update for this screen;
  // after updates the server pushes the figures itself (every wallboard re-reading them after
  // each update was 200 requests a second with 200 wallboards).
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      fetch("/live/wallboard.json?centre=" + encodeURIComponent(centre), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d) { data = d; draw(); } });
    }, 1000);
  }
  function note(e) { if (e.lastEventId) lastId = e.lastEventId; }
  function connect() {
    es = new EventSource("/live/events?board=1&centre=" + encodeURIComponent(centre) + (lastId ? "&last_event_id=" + lastId : ""));
    es.addEventListener("hello", function (e) { note(e); statusEl.textContent = labels.connected; refresh(); });
    // The server could not keep every update for this screen (too far behind, or a reconnect
    // after the ring moved on): the summary is re-read.
    es.addEventListener("resync", refresh);
    es.addEventListener("wallboard", function (e) { data = JSON.parse(e.data); draw(); });
    ["call", "presence", "record"].forEach(function (t) {
      es.addEventListener(t, function (e) {
        note(e);
        if (t === "record") {
          var rec = JSON.parse(e.data).record || {}, li = document.createElement("li"), a = document.createElement("a");
          a.href = "/records/" + rec.id; a.textContent = "#" + rec.id + " " + (rec.primary_issue || "");
          li.appendChild(a); document.getElementById("wb-records").insertBefore(li, document.getElementById("wb-records").firstChild);
        }
      });
    });
    es.addEventListener("notification", function (e) {  // the inbox badge (static/js/notifications.js)
      note(e);
      document.dispatchEvent(new CustomEvent("hotline:notification", {detail: JSON.parse(e.data).notification || {}}));
    });
    es.addEventListener("error", function () {
      statusEl.textContent = labels.connection_lost;
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    });
  }
  setInterval(function () {
    document.querySelectorAll("#wb-waiting tr[data-since], #wb-progress tr[data-since]").forEach(function (tr) {
      var td = tr.querySelector("td.wb-since") || tr.lastElementChild, s = since(tr.dataset.since);
      td.textContent = fmt(s);
    });
  }, 1000);
  draw();
  connect();
})();
