// "Given to the caller" buttons on a legal text (moved out of the template: the CSP forbids inline scripts).
// A signed-off record asks for the reason first (lock-reason.js); cancelling changes nothing.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest && ev.target.closest("button.legal-given");
  if (!b) return;
  b.disabled = true;
  window.hotlineReferences.give(b.dataset.recordId, {kind: "legal", ref_id: b.dataset.refId, label: b.dataset.label})
    .then(function (r) {
      if (r === null) { b.disabled = false; return; }
      b.classList.remove("failed");
      b.classList.add(r.ok ? "done" : "failed");
      if (!r.ok) b.disabled = false;
    }, function () { b.classList.add("failed"); b.disabled = false; });
});
