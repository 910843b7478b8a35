/* hotline: small helpers every page can use. No framework, no network beyond this site. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";

  /* fetch() that sends the CSRF token and the session cookie; a 401 sends the user to sign in. */
  window.hotlineFetch = function (url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({ "X-CSRF-Token": token, "Accept": "application/json" }, options.headers || {});
    return fetch(url, options).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
      }
      return response;
    });
  };
  window.hotlineCsrfToken = function () { return token; };

  /* htmx, when a page loads it, sends the token on every request. */
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = token;
  });

  /* <form data-confirm="…"> asks before submitting. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  /* <button data-shortcut="Alt+A">: the key combination clicks it (focuses it when it is a field).
     Handled here rather than with accesskey, whose modifier keys differ between browsers. */
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || !event.key || event.key.length !== 1) return;
    var el = document.querySelector('[data-shortcut="Alt+' + event.key.toUpperCase() + '"]');
    if (!el) return;
    event.preventDefault();
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) { el.focus(); } else { el.click(); }
  });

  /* "?" (outside a text field) or the top-bar button shows the keyboard shortcuts; Esc closes them. */
  var help = document.getElementById("shortcuts-help");
  function toggleHelp() {
    if (!help) return;
    if (help.open) { help.close(); } else if (help.showModal) { help.showModal(); } else { help.setAttribute("open", ""); }
  }
  var helpButton = document.getElementById("shortcuts-button");
  if (helpButton) helpButton.addEventListener("click", toggleHelp);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "?" || event.ctrlKey || event.altKey || event.metaKey) return;
    var el = event.target;
    var tag = el && el.tagName ? el.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (el && el.isContentEditable)) return;
    event.preventDefault();
    toggleHelp();
  });
})();
