// Live status of pending gradings (grader/server/live.py says why short polling): each element
// with data-status="<status.json URL>" is polled while its grading is pending (every 2 s, backing
// off to 15 s, paused while the tab is hidden). When a status changes, the page is fetched again
// and the regions marked data-live are swapped in place by id: no reload, so focus and a
// half-filled form stay, and screen readers hear the change (aria-live on the region). Without
// JavaScript, the <noscript> refresh in base.html reloads the page instead.
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) { return; }
  var delay = 2000;
  function get(url) {
    return fetch(url, {credentials: "same-origin", cache: "no-store"});
  }
  function swapRegions() {
    return get(window.location.href)
      .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var update = fresh.getElementById(region.id);
          if (update && update.innerHTML !== region.innerHTML) { region.innerHTML = update.innerHTML; }
        });
      });
  }
  function poll() {
    var cells = Array.prototype.slice.call(document.querySelectorAll("[data-status]"));
    if (!cells.length) { return; }  // nothing pending any more
    if (document.hidden) { setTimeout(poll, delay); return; }
    Promise.all(cells.map(function (cell) {
      return get(cell.getAttribute("data-status"))
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (state) { return !!state && state.status !== cell.textContent.trim(); },
              function () { return false; });
    })).then(function (changed) {
      function later() { delay = Math.min(delay * 1.5, 15000); setTimeout(poll, delay); }
      if (changed.indexOf(true) < 0) { later(); return; }
      delay = 2000;
      swapRegions().then(later, later);
    });
  }
  setTimeout(poll, delay);
}());
