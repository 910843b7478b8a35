// Callbacks: while the phone system places a call, ask for its state every 2 s (every 5 s once placed)
// and reload the page when it changes (placed: the outcome buttons stay; failed, also after it was placed,
// e.g. nobody answered on Twilio: the reason is shown and the item is back on the list).  On the live
// screen, the callback strip is refreshed every 30 s.
(function () {
  "use strict";
  var state = document.getElementById("attempt-state");
  var shown = state && state.dataset.status;
  if (state && state.dataset.statusUrl && (shown === "placing" || shown === "placed")) {
    var timer = setInterval(function () {
      fetch(state.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.status !== shown) { clearInterval(timer); window.location.reload(); }
        })
        .catch(function () { /* the next tick tries again */ });
    }, shown === "placing" ? 2000 : 5000);
  }
  var strip = document.getElementById("callback-strip");
  if (strip && strip.dataset.refresh) {
    setInterval(function () {
      fetch(strip.dataset.refresh, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var box = document.createElement("div");
          box.innerHTML = html;
          var fresh = box.querySelector("#callback-strip");
          if (fresh) { strip.replaceChildren.apply(strip, Array.prototype.slice.call(fresh.childNodes)); }
        })
        .catch(function () { /* kept as it was */ });
    }, 30000);
  }
})();
