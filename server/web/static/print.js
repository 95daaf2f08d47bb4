// The enrollment code page's print button: shown only where JavaScript runs (Ctrl+P works everywhere).
(function () {
  "use strict";
  var button = document.getElementById("skriv-ut");
  if (!button || !window.print) { return; }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
