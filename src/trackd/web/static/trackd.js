// trackd's dashboard: an opt-in refresh of the page every 5 s, remembered per browser.
// The pages work without this file; it only saves pressing reload while work runs.
(function () {
  "use strict";
  var KEY = "trackd.refresh";
  var EVERY_MS = 5000;
  var box = document.getElementById("refresh");
  if (!box) return;
  var timer = null;
  function schedule() {
    if (timer !== null) clearTimeout(timer);
    timer = box.checked ? setTimeout(function () { location.reload(); }, EVERY_MS) : null;
  }
  try { box.checked = localStorage.getItem(KEY) === "1"; } catch (e) { /* storage off */ }
  box.addEventListener("change", function () {
    try { localStorage.setItem(KEY, box.checked ? "1" : "0"); } catch (e) { /* storage off */ }
    schedule();
  });
  schedule();
})();
