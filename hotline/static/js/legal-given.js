// "Given to the caller" buttons on a legal text (moved out of the template: the CSP forbids inline scripts).
document.addEventListener("click", function (ev) {
  var b = ev.target.closest && ev.target.closest("button.legal-given");
  if (!b) return;
  var meta = document.querySelector('meta[name="csrf-token"]');
  b.disabled = true;
  fetch("/records/" + encodeURIComponent(b.dataset.recordId) + "/references", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "Accept": "application/json",
              "X-CSRF-Token": meta ? meta.content : ""},
    body: JSON.stringify({kind: "legal", ref_id: b.dataset.refId, label: b.dataset.label})
  }).then(function (r) {
    b.classList.add(r.ok ? "done" : "failed");
    if (!r.ok) b.disabled = false;
  }, function () { b.classList.add("failed"); b.disabled = false; });
});
