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
          // The button says so ("Copied", in the page's language) for a moment.
          var label = button.getAttribute("data-copied-label");
          if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
          button.setAttribute("data-copied", "true");
          if (label) button.textContent = label;
          clearTimeout(button.copiedTimer);
          button.copiedTimer = setTimeout(function () {
            button.removeAttribute("data-copied");
            button.textContent = button.getAttribute("data-label");
          }, 2000);
        });
      });
    });
    // A form that posts shows that it is working: its submit button is marked busy (a
    // spinner, aria-busy) and further clicks are ignored until the answer comes. Buttons that
    // wait on the provider say what they wait for (data-busy-label: "Testing…"). An htmx form
    // gets the same while htmx's request runs. Without JavaScript the browser's own loading
    // indicator is all there is, and the page the server answers with says what happened.
    function markBusy(form, submitter) {
      var button = submitter || form.querySelector("button[type=submit], button:not([type])");
      if (!button || button.getAttribute("aria-busy") === "true") return;
      button.setAttribute("aria-busy", "true");
      button.classList.add("is-busy");
      var label = button.getAttribute("data-busy-label");
      if (label) {
        button.setAttribute("data-label", button.textContent);
        button.textContent = label;
      }
    }
    function clearBusy(root) {
      root.querySelectorAll("[aria-busy=true].is-busy").forEach(function (button) {
        button.removeAttribute("aria-busy");
        button.classList.remove("is-busy");
        if (button.hasAttribute("data-label")) button.textContent = button.getAttribute("data-label");
      });
    }
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if ((form.method || "").toLowerCase() !== "post" || event.defaultPrevented) return;
      var button = event.submitter;
      if (button && button.getAttribute("aria-busy") === "true") {
        event.preventDefault();  // already sent once: wait for the answer
        return;
      }
      markBusy(form, button);
    });
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      var form = event.target.closest("form");
      var trigger = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
      if (form) markBusy(form, trigger && trigger.submitter);
    });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      clearBusy(event.target.closest("form") || event.target);
    });
    // Coming back with the browser's Back button shows the page as it was left: not busy.
    window.addEventListener("pageshow", function () { clearBusy(document); });
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
    // A table that scrolls inside its card can be scrolled from the keyboard too: it takes
    // the focus (and is named after its card's heading) while it is wider than its card.
    function markScrollableTables() {
      document.querySelectorAll(".table-wrap").forEach(function (wrap) {
        if (wrap.scrollWidth > wrap.clientWidth + 1) {
          if (!wrap.hasAttribute("tabindex")) {
            var heading = wrap.closest("section, .card");
            heading = heading && heading.querySelector("h2, h3");
            wrap.setAttribute("tabindex", "0");
            wrap.setAttribute("role", "region");
            wrap.setAttribute("aria-label", heading ? heading.textContent.trim() : document.title);
            wrap.setAttribute("data-scrollable", "");
          }
        } else if (wrap.hasAttribute("data-scrollable")) {
          ["tabindex", "role", "aria-label", "data-scrollable"].forEach(function (name) {
            wrap.removeAttribute(name);
          });
        }
      });
    }
    markScrollableTables();
    if (window.ResizeObserver) {
      var observer = new ResizeObserver(markScrollableTables);
      observer.observe(document.documentElement);
    }
    document.body.addEventListener("htmx:afterSettle", markScrollableTables);
    // Close an open <details> menu when clicking elsewhere.
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.menu[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) menu.removeAttribute("open");
      });
    });
  });
})();
