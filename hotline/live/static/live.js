/* Screen pop over server-sent events.  The browser's EventSource reconnects by itself and sends
   Last-Event-ID; when the server refuses (session ended) we retry with ?last_event_id=.
   Everything from the server is put into the page as text, never as markup, except the caller
   history fragment, which the server renders with escaping. */
(function () {
  "use strict";
  var area = document.getElementById("pop-area");
  if (!area) return;
  var pops = document.getElementById("pops");
  var tpl = document.getElementById("pop-template");
  var empty = document.getElementById("pop-empty");
  var statusEl = document.getElementById("sse-status");
  var labels = JSON.parse((document.getElementById("live-labels") || {}).textContent || "{}");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var lastId = null, es = null, retryTimer = null;
  var MAX_POPS = 4;
  window.__popTimes = window.__popTimes || {};

  function setStatus(ok) {
    if (!statusEl) return;
    statusEl.textContent = ok ? statusEl.dataset.ok : statusEl.dataset.lost;
    statusEl.className = "small " + (ok ? "muted" : "error");
  }

  function fmtSeconds(s) {
    s = Math.max(0, Math.round(s));
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function waitSeconds(c) {
    if (c.queue_wait_seconds != null) return c.queue_wait_seconds;
    var start = Date.parse(c.queued_at || c.received_at);
    if (!start) return 0;
    var end = c.answered_at ? Date.parse(c.answered_at) : (c.ended_at ? Date.parse(c.ended_at) : Date.now());
    return (end - start) / 1000;
  }

  function render(c) {
    var id = String(c.id);
    var el = pops.querySelector('.pop[data-call-id="' + id + '"]');
    var isNew = !el;
    if (isNew) {
      el = tpl.content.firstElementChild.cloneNode(true);
      el.dataset.callId = id;
      pops.insertBefore(el, pops.firstChild);
      while (pops.children.length > MAX_POPS) pops.removeChild(pops.lastChild);
      el.querySelector(".pop-open").addEventListener("click", function () { openRecord(id); });
      var rv = el.querySelector(".pop-reveal");
      if (rv) rv.addEventListener("click", function () { reveal(id, el); });
    }
    el._call = c;
    el.querySelector(".pop-line").textContent = c.line || c.queue || "";
    if (!el.dataset.revealed) el.querySelector(".pop-caller").textContent = c.caller_masked || "—";
    el.querySelector(".pop-cid").textContent = (labels.cid || {})[c.caller_id_status] || c.caller_id_status || "";
    el.querySelector(".pop-wait").textContent = fmtSeconds(waitSeconds(c));
    el.querySelector(".pop-status").textContent = (labels.status || {})[c.status] || c.status || "";
    el.classList.toggle("ended", !!c.ended_at);
    if (empty) empty.hidden = true;
    if (isNew) {
      requestAnimationFrame(function () { window.__popTimes[id] = Date.now(); });
      loadHistory(id, el);
    }
  }

  function loadHistory(id, el) {
    fetch("/live/calls/" + encodeURIComponent(id) + "/pop", {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html) el.querySelector(".pop-history").innerHTML = html; })
      .catch(function () {});
  }

  function openRecord(id) {
    fetch("/records/for-call/" + encodeURIComponent(id), {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": csrf}
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && d.url) window.location.href = d.url; });
  }

  function reveal(id, el) {
    fetch("/live/calls/" + encodeURIComponent(id) + "/reveal", {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": csrf}
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        el.dataset.revealed = "1";
        el.querySelector(".pop-caller").textContent = d.number;
      });
  }

  function onEvent(e) {
    if (e.lastEventId) lastId = e.lastEventId;
  }

  // Referral alerts (escalations, failed deliveries, partners' answers): text only, never markup.
  var alertBox = document.getElementById("referral-alerts");
  var alertLabels = JSON.parse((document.getElementById("referral-alert-labels") || {}).textContent || "{}");
  function fill(text, values) {
    return String(text || "").replace(/%\((\w+)\)s/g, function (_, k) { return values[k] == null ? "" : String(values[k]); });
  }
  function referralAlert(a) {
    if (!alertBox || !a.kind || !alertLabels[a.kind]) return;
    var v = {code: a.code, service: a.service_name, minutes: a.minutes, reason: a.reason};
    var el = document.createElement("div");
    el.className = "card warn referral-alert referral-" + a.kind;
    el.dataset.referralId = a.referral_id;
    var p = document.createElement("p");
    p.textContent = fill(alertLabels[a.kind], v);
    el.appendChild(p);
    if (a.kind === "escalation") {
      var s = document.createElement("p");
      s.className = "referral-suggestion";
      s.textContent = a.suggestion ? fill(alertLabels.suggestion, {name: a.suggestion.name, beds: a.suggestion.beds_free,
        phone: a.suggestion.phone || ""}) : alertLabels.no_suggestion;
      el.appendChild(s);
    }
    var link = document.createElement("a");
    link.href = "/referrals/" + encodeURIComponent(a.referral_id);
    link.textContent = alertLabels.open;
    el.appendChild(link);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.textContent = alertLabels.dismiss;
    close.addEventListener("click", function () { el.remove(); });
    el.appendChild(document.createTextNode(" "));
    el.appendChild(close);
    alertBox.insertBefore(el, alertBox.firstChild);
  }

  function connect() {
    var url = "/live/events" + (lastId ? "?last_event_id=" + encodeURIComponent(lastId) : "");
    es = new EventSource(url, {withCredentials: true});
    es.addEventListener("open", function () { setStatus(true); });
    es.addEventListener("hello", function (e) { onEvent(e); setStatus(true); });
    es.addEventListener("call", function (e) {
      onEvent(e);
      var msg = JSON.parse(e.data);
      if (msg.call) render(msg.call);
    });
    es.addEventListener("referral_alert", function (e) { onEvent(e); referralAlert(JSON.parse(e.data).alert || {}); });
    es.addEventListener("error", function () {
      setStatus(false);
      if (es.readyState === EventSource.CLOSED) {  // refused (e.g. signed out): try again later
        clearTimeout(retryTimer);
        retryTimer = setTimeout(connect, 5000);
      }
    });
  }

  setInterval(function () {
    pops.querySelectorAll(".pop").forEach(function (el) {
      if (el._call && !el._call.answered_at && !el._call.ended_at) {
        el.querySelector(".pop-wait").textContent = fmtSeconds(waitSeconds(el._call));
      }
    });
  }, 1000);

  document.addEventListener("keydown", function (e) {
    if (e.altKey && !e.ctrlKey && (e.key === "r" || e.key === "R")) {
      var first = pops.querySelector(".pop");
      if (first) { e.preventDefault(); openRecord(first.dataset.callId); }
    }
  });
  connect();
})();
