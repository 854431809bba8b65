// resetgate's reset page. Its only script, and the page works without it: the mail's link
// carries the code in the URL fragment (#code=...), which browsers never send to a server;
// this fills the code in and takes it out of the address bar.
(function () {
  "use strict";
  var found = /^#code=([0-9][0-9 ]{3,40})$/.exec(window.location.hash);
  if (!found) {
    return;
  }
  var code = document.getElementById("code");
  if (!code) {
    // The first step: go to the code step, keeping the fragment.
    var step = document.documentElement.getAttribute("data-code-step");
    if (step) {
      window.location.replace(step + window.location.hash);
    }
    return;
  }
  code.value = found[1].replace(/ /g, "");
  window.history.replaceState(null, "", window.location.pathname);
  var button = code.form && code.form.querySelector("button");
  if (button) {
    button.focus();
  }
})();
