/* The inbox badge in the top bar: the live screen's feed tells it at once (live.js re-sends each
   "notification" event as a "hotline:notification" DOM event); other pages ask for the count
   every minute while visible and when they become visible again.  Text only, never markup. */
(function () {
  "use strict";
  var link = document.getElementById("notif-link");
  var badge = document.getElementById("notif-count");
  if (!link || !badge) return;
  var label = link.getAttribute("data-label") || "%(num)s";

  function setCount(n) {
    n = Math.max(0, parseInt(n, 10) || 0);
    badge.textContent = String(n);
    badge.hidden = n === 0;
    link.classList.toggle("has-unread", n > 0);
    link.setAttribute("data-unread", String(n));
    link.setAttribute("aria-label", label.replace("%(num)s", String(n)));
  }

  document.addEventListener("hotline:notification", function (e) {
    var d = e.detail || {};
    if (typeof d.unread === "number") setCount(d.unread);
  });

  function refresh() {
    if (document.visibilityState === "hidden") return;
    fetch("/notifications/count", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && typeof d.unread === "number") setCount(d.unread); })
      .catch(function () { /* offline: keep the last count */ });
  }
  // the live screen and the wallboard keep a feed open: it brings the count, no need to ask
  var live = document.querySelector('script[src="/live-static/live.js"], script[src="/live-static/wallboard.js"]');
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") refresh(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) refresh(); });  // back/forward cache
  if (!live) setInterval(refresh, 60000);
})();
