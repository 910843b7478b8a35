/* The live screen and the record page: server-sent events keep the current call's card (timers,
   status) and the strip of other incoming calls up to date, and presence (busy, wrap-up) follows
   the calls.  The browser's EventSource reconnects by itself and sends Last-Event-ID; when the
   server refuses (session ended) we retry with ?last_event_id=.  Everything from the server goes
   into the page as text, never as markup, except the caller history fragment, which the server
   renders with escaping. */
(function () {
  "use strict";
  var area = document.getElementById("pop-area");
  if (!area) return;
  var pops = document.getElementById("pops");
  var tpl = document.getElementById("pop-template");
  var statusEl = document.getElementById("sse-status");
  var card = document.getElementById("call-card");
  var labels = JSON.parse((document.getElementById("live-labels") || {}).textContent || "{}");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var userId = parseInt(area.dataset.userId, 10);
  var role = area.dataset.role;
  var currentCall = area.dataset.currentCall || "";
  var reloadOnAnswer = area.dataset.reloadOnAnswer === "1";
  var lastId = null, es = null, retryTimer = null;
  var MAX_POPS = 5;
  var dismissed = {};
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
    if (c.queue_wait_seconds != null && c.queue_wait_seconds !== "") return Number(c.queue_wait_seconds);
    var start = Date.parse(c.queued_at || c.received_at);
    if (!start) return 0;
    var end = c.answered_at ? Date.parse(c.answered_at) : (c.ended_at ? Date.parse(c.ended_at) : Date.now());
    return (end - start) / 1000;
  }

  function talkSeconds(c) {
    if (!c.answered_at) return null;
    if (c.ended_at && c.talk_seconds != null && c.talk_seconds !== "") return Number(c.talk_seconds);
    var end = c.ended_at ? Date.parse(c.ended_at) : Date.now();
    return (end - Date.parse(c.answered_at)) / 1000;
  }

  function mine(c) {
    return c.counsellor_id === userId || (c.answered_by && c.counsellor_id === userId);
  }

  // ------------------------------------------------------------------ the current call's card
  var cardCall = null;
  if (card) {
    cardCall = {id: card.dataset.callId, received_at: card.dataset.receivedAt, queued_at: card.dataset.queuedAt,
                answered_at: card.dataset.answeredAt, ended_at: card.dataset.endedAt,
                queue_wait_seconds: card.dataset.wait, talk_seconds: card.dataset.talk};
    var rv = document.getElementById("cc-reveal");
    if (rv) rv.addEventListener("click", function () {
      reveal(cardCall.id, function (number) { document.getElementById("cc-caller").textContent = number; rv.hidden = true; });
    });
    var hist = document.getElementById("cc-history");
    if (hist) hist.addEventListener("toggle", function () {
      if (!hist.open || hist.dataset.loaded) return;
      hist.dataset.loaded = "1";
      loadHistory(cardCall.id, hist.querySelector(".pop-history"));
    });
  }

  function tickCard() {
    if (!card || !cardCall) return;
    document.getElementById("cc-wait").textContent = fmtSeconds(waitSeconds(cardCall));
    var t = talkSeconds(cardCall);
    document.getElementById("cc-talk").textContent = t == null ? "—" : fmtSeconds(t);
  }

  function updateCard(c) {
    cardCall = Object.assign(cardCall || {}, c);
    var st = document.getElementById("cc-status");
    if (st) st.textContent = (labels.status || {})[c.status] || "";
    card.classList.toggle("ended", !!c.ended_at);
    tickCard();
  }

  // ------------------------------------------------------------------ the strip of other calls
  function removePop(id) {
    var el = pops.querySelector('.pop[data-call-id="' + id + '"]');
    if (el) el.remove();
  }

  function render(c, snapshot) {
    var id = String(c.id);
    if (card && cardCall && id === String(cardCall.id)) { updateCard(c); return; }
    if (dismissed[id]) return;
    // Abandoned or ended calls leave the strip.
    if (c.ended_at || c.status === "abandoned" || c.status === "missed") { removePop(id); return; }
    if (!snapshot && c.answered_at && !c.ended_at && mine(c) && (reloadOnAnswer || (window.location.pathname === "/live" && currentCall))) {
      // Your call was answered: the live screen becomes its workspace (what was typed in the
      // previous record is saved or kept in this browser and replayed when it is opened again).
      window.location.reload();
      return;
    }
    var el = pops.querySelector('.pop[data-call-id="' + id + '"]');
    var isNew = !el;
    if (isNew) {
      el = tpl.content.firstElementChild.cloneNode(true);
      el.dataset.callId = id;
      pops.insertBefore(el, pops.firstChild);
      while (pops.children.length > MAX_POPS) pops.removeChild(pops.lastChild);
      el.querySelector(".pop-open").addEventListener("click", function () { openRecord(id); });
      el.querySelector(".pop-dismiss").addEventListener("click", function () { dismissed[id] = 1; el.remove(); });
    }
    el._call = c;
    el.dataset.mine = (mine(c) || role === "counsellor") ? "1" : "";
    el.querySelector(".pop-line").textContent = c.line || c.queue || "";
    el.querySelector(".pop-caller").textContent = c.caller_masked || "—";
    el.querySelector(".pop-wait").textContent = fmtSeconds(waitSeconds(c));
    el.querySelector(".pop-status").textContent = (labels.status || {})[c.status] || "";
    if (isNew) requestAnimationFrame(function () { window.__popTimes[id] = Date.now(); });
  }

  function loadHistory(id, target) {
    fetch("/live/calls/" + encodeURIComponent(id) + "/pop", {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html && target) target.innerHTML = html; })
      .catch(function () {});
  }

  function openRecord(id) {
    fetch("/records/for-call/" + encodeURIComponent(id), {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": csrf}
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && d.url) window.location.href = d.url; });
  }

  function reveal(id, done) {
    fetch("/live/calls/" + encodeURIComponent(id) + "/reveal", {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": csrf}
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) done(d.number); });
  }

  // ------------------------------------------------------------------ presence (busy, wrap-up)
  var presenceForm = document.getElementById("presence-form");
  var presenceLabels = JSON.parse((document.getElementById("presence-labels") || {}).textContent || "{}");
  var wrapUntil = presenceForm && presenceForm.dataset.until ? Date.parse(presenceForm.dataset.until) : null;
  var wrapAsked = false;

  function showPresence(state, until) {
    if (!presenceForm) return;
    presenceForm.dataset.state = state;
    var now = document.getElementById("presence-now");
    now.textContent = presenceLabels[state] || "";
    now.className = "presence-now state-" + state;
    presenceForm.querySelectorAll("button[name=state]").forEach(function (b) {
      var on = b.value === state;
      b.classList.toggle("current", on);
      if (on) b.setAttribute("aria-pressed", "true"); else b.removeAttribute("aria-pressed");
    });
    wrapUntil = state === "wrap_up" && until ? Date.parse(until) : null;
    wrapAsked = false;
    document.getElementById("wrap-up-left").hidden = !wrapUntil;
    tickWrapUp();
  }

  // A presence button changes presence in place: the screen is not reloaded in the middle of a call
  // (and a shortcut typed right after is not lost to the reload). Without a usable answer the form is
  // submitted the plain way.
  if (presenceForm) presenceForm.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.value || !window.fetch) return;
    event.preventDefault();
    fetch(presenceForm.action, {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({state: button.value})
    }).then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; })
      .then(function (d) {
        if (d) { showPresence(d.state, null); return; }
        var field = document.createElement("input");
        field.type = "hidden"; field.name = "state"; field.value = button.value;
        presenceForm.appendChild(field);
        HTMLFormElement.prototype.submit.call(presenceForm);
      });
  });

  function tickWrapUp() {
    if (!wrapUntil) return;
    var left = (wrapUntil - Date.now()) / 1000;
    document.getElementById("wrap-up-seconds").textContent = fmtSeconds(left);
    if (left <= 0 && !wrapAsked) {
      wrapAsked = true;
      fetch("/live/presence/wrap-up-over", {method: "POST", credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": csrf}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d) showPresence(d.state, d.until); });
    }
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
    // The updates this screen missed are no longer kept: ask for the calls in progress instead.
    es.addEventListener("resync", loadActive);
    es.addEventListener("call", function (e) {
      onEvent(e);
      var msg = JSON.parse(e.data);
      if (msg.call) render(msg.call);
    });
    es.addEventListener("presence", function (e) {
      onEvent(e);
      var p = JSON.parse(e.data).presence || {};
      if (p.user_id === userId) showPresence(p.state, p.until);
    });
    es.addEventListener("referral_alert", function (e) { onEvent(e); referralAlert(JSON.parse(e.data).alert || {}); });
    es.addEventListener("notification", function (e) {  // the inbox badge (static/js/notifications.js)
      onEvent(e);
      document.dispatchEvent(new CustomEvent("hotline:notification", {detail: JSON.parse(e.data).notification || {}}));
    });
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
    tickCard();
    tickWrapUp();
  }, 1000);
  tickCard();
  tickWrapUp();

  // Alt+R: the record of YOUR current call (never simply the newest pop); Alt+X: dismiss the
  // newest call in the strip.
  document.addEventListener("keydown", function (e) {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    var k = (e.key || "").toLowerCase();
    if (k === "r") {
      e.preventDefault();
      if (card && card.dataset.recordUrl) {
        if (window.location.pathname === card.dataset.recordUrl || !document.getElementById("cc-open")) {
          var first = document.querySelector("#record-form select, #record-form input:not([type=hidden])");
          if (first) first.focus();
        } else {
          window.location.href = card.dataset.recordUrl;
        }
        return;
      }
      var own = pops.querySelector('.pop[data-mine="1"]');
      if (own) openRecord(own.dataset.callId);
    } else if (k === "x") {
      var newest = pops.querySelector(".pop");
      if (newest) { e.preventDefault(); dismissed[newest.dataset.callId] = 1; newest.remove(); }
    }
  });
  // The calls in progress when the screen opens (or after a resync), drawn like the stream's.
  function loadActive() {
    fetch("/live/calls.json", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { ((d && d.calls) || []).slice().reverse().forEach(function (c) { render(c, true); }); })
      .catch(function () { /* the stream goes on; the next resync asks again */ });
  }

  loadActive();
  connect();
})();
