/* A "given to the caller" button (directory or legal, on the record page, the live screen or the
   directory and legal pages) is an edit of the record. When the record's day has been signed off
   the server refuses it without a reason (HTTP 422, errors.lock_reason): ask for the reason in the
   page's #lock-reason-dialog, then send again with it. Cancelling changes nothing. */
(function () {
  "use strict";

  function ask(message) {
    var dlg = document.getElementById("lock-reason-dialog");
    if (!dlg || typeof dlg.showModal !== "function") return Promise.resolve(null);
    var input = dlg.querySelector("textarea");
    var own = document.getElementById("lock_reason");  // the record form's own reason, if typed already
    dlg.querySelector(".lock-reason-message").textContent = message || "";
    if (!input.value && own && own.value) input.value = own.value;
    dlg.returnValue = "";
    return new Promise(function (resolve) {
      dlg.addEventListener("close", function done() {
        dlg.removeEventListener("close", done);
        var why = dlg.returnValue === "ok" ? input.value.trim() : "";
        resolve(why || null);
      });
      dlg.showModal();
      input.focus();
    });
  }

  function lockMessage(r) {
    if (r.status !== 422) return Promise.resolve(null);
    return r.clone().json().then(function (d) {
      var errors = (d && d.detail && d.detail.errors) || (d && d.errors) || {};
      return errors.lock_reason || null;
    }, function () { return null; });
  }

  /* POST {kind, ref_id, label} to the record's references; resolves to the final Response, or to
     null when the user chose not to change a signed-off record. */
  function give(recordId, body) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    function send(data) {
      return fetch("/records/" + encodeURIComponent(recordId) + "/references", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRF-Token": meta ? meta.content : ""},
        body: JSON.stringify(data)
      });
    }
    function attempt(data) {
      return send(data).then(function (r) {
        return lockMessage(r).then(function (message) {
          if (!message) return r;
          return ask(message).then(function (why) {
            if (why === null) return null;
            var again = {};
            Object.keys(data).forEach(function (k) { again[k] = data[k]; });
            again.lock_reason = why;
            return attempt(again);
          });
        });
      });
    }
    return attempt(body);
  }

  window.hotlineReferences = {give: give};
})();
