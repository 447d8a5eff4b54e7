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
})();
