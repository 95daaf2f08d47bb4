// Klinikvy live: the server says over SSE (/api/v1/live, cookie session) that the unit's figures
// changed; we fetch the server-rendered part of the page again and swap it in. All formatting stays
// on the server, so a live number looks exactly like a reloaded one.
(function () {
  "use strict";
  var region = document.getElementById("live-region");
  var status = document.getElementById("live-status");
  if (!region || !window.EventSource) { return; }
  var fragmentUrl = region.getAttribute("data-fragment-url");
  var busy = false, again = false;

  function say(text) { if (status) { status.textContent = text; } }

  // A table someone opened stays open, and focus stays where it was, when the part is replaced.
  function swap(html) {
    var open = [];
    region.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    var focused = document.activeElement && region.contains(document.activeElement) ? document.activeElement : null;
    var focusedDetails = focused && focused.closest("details[id]");
    region.innerHTML = html;
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    if (focusedDetails) {
      var restored = document.getElementById(focusedDetails.id);
      var summary = restored && restored.querySelector("summary");
      if (summary) { summary.focus(); }
    }
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(fragmentUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { window.location.reload(); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        if (html !== region.innerHTML) { swap(html); }
        var now = new Date();
        say("Uppdaterad kl. " + now.toLocaleTimeString("sv-SE", { hour: "2-digit", minute: "2-digit", second: "2-digit" }) + ".");
      })
      .catch(function () { say("Kunde inte hämta nya siffror. Försöker igen vid nästa ändring."); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  (region.getAttribute("data-live-urls") || "").split(" ").forEach(function (url) {
    if (!url) { return; }
    var source = new EventSource(url, { withCredentials: true });
    source.addEventListener("figures", refresh);
    source.onerror = function () { say("Anslutningen för liveuppdatering bröts. Försöker ansluta igen …"); };
  });
})();
