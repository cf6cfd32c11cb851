// Small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    document.documentElement.classList.add("js");
    // Selects marked data-autosubmit submit their form on change (the language switcher).
    document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    // Buttons marked data-copy copy the value of the element they name.
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source || !navigator.clipboard) return;
        navigator.clipboard.writeText(source.value || source.textContent).then(function () {
          button.setAttribute("data-copied", "true");
        });
      });
    });
    // A field marked data-show-if="name=value" is shown only while the form's field `name`
    // has that value (Azure's API version); without JavaScript it stays shown, with its note.
    document.querySelectorAll("[data-show-if]").forEach(function (field) {
      var rule = field.getAttribute("data-show-if").split("=");
      var control = field.form && field.form.elements.namedItem(rule[0]);
      var wrapper = field.closest(".form-field") || field;
      if (!control) return;
      function update() { wrapper.hidden = control.value !== rule[1]; }
      control.addEventListener("change", update);
      update();
    });
    // Close an open <details> menu when clicking elsewhere.
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.menu[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) menu.removeAttribute("open");
      });
    });
  });
})();
