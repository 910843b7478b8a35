/* Province and commune pickers on the record form: type-ahead over the 34 provinces (old names
   lead to the new ones) and the chosen province's communes; diacritics (đ too) are ignored by the
   server.  Only a choice from the list is kept: no free text reaches the record. */
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form) return;
  var ui = JSON.parse((document.getElementById("ui-text") || {}).textContent || "{}");
  function picker(box) {
    var input = box.querySelector(".place-input"), code = box.querySelector(".place-code");
    var list = box.querySelector(".place-list"), kind = box.dataset.kind;
    var items = [], active = -1, t = null, chosenName = input.value;
    function provinceCode() { var p = form.querySelector('input[name="province_code"]'); return p ? p.value : ""; }
    function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; }
    function draw() {
      list.textContent = "";
      if (!items.length) {
        var li = document.createElement("li");
        li.className = "muted"; li.textContent = ui.no_match;
        list.appendChild(li);
      }
      items.forEach(function (it, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.id = box.dataset.field + "-opt-" + i;
        li.dataset.code = it.code;
        li.textContent = it.note ? it.note : it.name;
        if (i === active) { li.className = "active"; li.setAttribute("aria-selected", "true"); }
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
        list.appendChild(li);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      if (active >= 0) input.setAttribute("aria-activedescendant", box.dataset.field + "-opt-" + active);
    }
    function choose(i) {
      var it = items[i];
      if (!it) return;
      var changed = code.value !== it.code;
      code.value = shownCode = it.code;
      input.value = chosenName = it.name;
      close();
      if (changed) {
        if (kind === "province") {  // the commune belongs to the old province: choose it again
          var other = form.querySelector('.place-picker[data-kind="commune"]');
          if (other) { other.querySelector(".place-code").value = ""; other.querySelector(".place-input").value = ""; }
        }
        form.dispatchEvent(new Event("change"));
      }
    }
    function lookup() {
      var url = kind === "province" ? "/records/places/provinces?q=" + encodeURIComponent(input.value)
        : "/records/places/communes?province=" + encodeURIComponent(provinceCode()) + "&q=" + encodeURIComponent(input.value);
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (d) { items = d.items || []; active = items.length ? 0 : -1; draw(); })
        .catch(function () {});
    }
    // Values put back from this browser's copy or a merge carry codes: show their names.
    var shownCode = code.value;
    form.addEventListener("hotline:applied", function () {
      if (code.value === shownCode) return;
      shownCode = code.value;
      if (!code.value) { input.value = chosenName = ""; return; }
      var url = kind === "province" ? "/records/places/provinces?q=" + encodeURIComponent(code.value)
        : "/records/places/communes?province=" + encodeURIComponent(provinceCode()) + "&q=" + encodeURIComponent(code.value);
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (d) { var it = (d.items || [])[0]; if (it) input.value = chosenName = it.name; })
        .catch(function () {});
    });
    input.addEventListener("input", function (e) {
      e.stopPropagation();  // typing in the picker is not a value until one is chosen
      clearTimeout(t);
      t = setTimeout(lookup, 120);
    });
    input.addEventListener("change", function (e) { e.stopPropagation(); });
    input.addEventListener("focus", function () { if (!code.value) lookup(); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { e.preventDefault(); if (list.hidden) { lookup(); return; } active = Math.min(items.length - 1, active + 1); draw(); }
      else if (e.key === "ArrowUp") { e.preventDefault(); active = Math.max(0, active - 1); draw(); }
      else if (e.key === "Enter") { if (!list.hidden && active >= 0) { e.preventDefault(); choose(active); } }
      else if (e.key === "Escape") { close(); input.value = chosenName; }
    });
    input.addEventListener("blur", function () {
      setTimeout(function () {
        close();
        if (!input.value.trim()) {
          if (code.value) { code.value = shownCode = ""; chosenName = ""; form.dispatchEvent(new Event("change")); }
        } else if (input.value !== chosenName) {
          input.value = chosenName;  // no free text: back to the last choice
        }
      }, 150);
    });
  }
  form.querySelectorAll(".place-picker").forEach(picker);
})();
