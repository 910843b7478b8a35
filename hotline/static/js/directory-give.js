// "Give to the caller" buttons on directory results (moved out of the template: the CSP forbids inline scripts).
// A signed-off record asks for the reason first (lock-reason.js); cancelling changes nothing.
document.addEventListener("click", async function (ev) {
  const btn = ev.target.closest("button.dir-give");
  if (!btn) return;
  ev.preventDefault();
  const labels = JSON.parse(document.getElementById("directory-labels").textContent);
  btn.disabled = true;
  const res = await window.hotlineReferences.give(btn.dataset.recordId,
    {kind: "directory", ref_id: btn.dataset.refId, label: btn.dataset.label});
  if (res === null) { btn.disabled = false; return; }
  btn.textContent = res.ok ? labels.recorded : labels.error + " " + res.status;
  btn.classList.toggle("done", res.ok);
  btn.disabled = res.ok;
});
