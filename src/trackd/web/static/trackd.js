// trackd's dashboard: a list marked data-live="URL" follows new events without a reload, by
// fetching its rows from URL every few seconds while the page is visible and "live" is on.
// The pages work without this file; it only saves pressing reload while work runs.
(function () {
  "use strict";
  var EVERY_MS = 5000;
  var list = document.querySelector("[data-live]");
  var box = document.getElementById("live");
  if (!list) return;
  var url = list.getAttribute("data-live");
  function refresh() {
    if (document.hidden || (box && !box.checked)) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) return null; // logged out: leave the page be
        return response.text();
      })
      .then(function (html) {
        if (html !== null && html !== undefined) list.innerHTML = html;
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }
  setInterval(refresh, EVERY_MS);
})();
