// "Give to the caller" buttons on directory results (moved out of the template: the CSP forbids inline scripts).
document.addEventListener("click", async function (ev) {
  const btn = ev.target.closest("button.dir-give");
  if (!btn) return;
  ev.preventDefault();
  const labels = JSON.parse(document.getElementById("directory-labels").textContent);
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const res = await fetch(btn.dataset.url, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
    body: JSON.stringify({kind: "directory", ref_id: btn.dataset.refId, label: btn.dataset.label})});
  btn.textContent = res.ok ? labels.recorded : labels.error + " " + res.status;
  btn.disabled = res.ok;
});
