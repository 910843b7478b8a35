// Audited reveal of a caller's full number on the calls list and on records: a button
// [data-reveal-call="<call id>"] asks the server (POST /live/calls/<id>/reveal, which audits it)
// and shows the number in place of the masked one beside it.
(function () {
  "use strict";
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("[data-reveal-call]") : null;
    if (!btn) return;
    ev.preventDefault();
    btn.disabled = true;
    fetch("/live/calls/" + encodeURIComponent(btn.dataset.revealCall) + "/reveal", {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": token, "Accept": "application/json", "Content-Type": "application/json"},
      body: "{}"
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (data) {
      var cell = btn.parentNode.querySelector(".caller-number");
      if (cell) { cell.textContent = data.number; cell.classList.add("revealed"); }
      btn.remove();
    }).catch(function () {
      btn.disabled = false;
      var err = document.getElementById("reveal-error");
      if (err) err.hidden = false;
    });
  });
})();
