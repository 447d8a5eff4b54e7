// medops dashboard: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // filters apply as soon as a choice changes
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.form) select.form.submit(); });
  });
  // forms that disable or revoke ask first
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  // a canary round in progress: reload the monitoring page until it ends
  if (document.querySelector("[data-job-running]")) {
    window.setTimeout(function () { window.location.reload(); }, 5000);
  }
  // the review queue by keyboard alone: 1 / 2 / 3 choose for the focused criterion (then focus
  // moves on), j / k move between criteria, Enter saves and opens the next example
  var queue = document.querySelector("form[data-review-queue]");
  if (queue) {
    var criteria = Array.prototype.slice.call(queue.querySelectorAll("fieldset.criterion"));
    var current = function () {
      var at = document.activeElement && document.activeElement.closest ? document.activeElement.closest("fieldset.criterion") : null;
      return at ? criteria.indexOf(at) : -1;
    };
    var focusAt = function (i) {
      if (criteria.length) criteria[Math.max(0, Math.min(criteria.length - 1, i))].focus();
    };
    if (criteria.length) criteria[0].focus();
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var typing = event.target && event.target.type === "text";
      if (event.key === "Enter" && event.target.tagName !== "BUTTON") {
        event.preventDefault();
        queue.requestSubmit();
        return;
      }
      if (typing) return;
      var i = current();
      if (event.key === "j") { event.preventDefault(); focusAt(i + 1); }
      else if (event.key === "k") { event.preventDefault(); focusAt(i < 0 ? 0 : i - 1); }
      else if (event.key === "1" || event.key === "2" || event.key === "3") {
        if (i < 0) return;
        event.preventDefault();
        var radio = criteria[i].querySelector("input[data-key='" + event.key + "']");
        if (radio) radio.checked = true;
        if (i + 1 < criteria.length) focusAt(i + 1); else criteria[i].focus();
      }
    });
  }
})();
