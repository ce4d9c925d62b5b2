/* Invoice draft form: add a line without a round trip (a copy of the formset's empty form), mark removed
   lines, ask before deleting a draft. The totals are not computed here: htmx posts the form to the
   server, which answers with its own computation. Without JavaScript the same buttons post the form. */
(function () {
  "use strict";

  function refreshTotals(form) {
    form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function initLines(form) {
    var body = form.querySelector("[data-invoice-lines]");
    var template = document.getElementById("invoice-line-template");
    var total = form.querySelector("input[name$='-TOTAL_FORMS']");
    var add = form.querySelector("[data-invoice-add-line]");
    if (!body || !template || !total || !add) {
      return;
    }
    add.type = "button";
    add.addEventListener("click", function () {
      var index = parseInt(total.value, 10) || 0;
      var html = template.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(index + 1));
      body.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      var row = body.lastElementChild;
      var first = row && row.querySelector("input:not([type=hidden]), select");
      if (first) {
        first.focus();
      }
      refreshTotals(form);
    });
    body.addEventListener("change", function (event) {
      var box = event.target;
      if (box.name && /-DELETE$/.test(box.name)) {
        var row = box.closest("tr");
        if (row) {
          row.classList.toggle("invoice-line-removed", box.checked);
        }
      }
    });
  }

  function initConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  function init() {
    var form = document.getElementById("invoice-form");
    if (form) {
      initLines(form);
    }
    initConfirm();
    var summary = document.getElementById("invoice-errors");
    if (summary) {
      summary.focus();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
