// Live status of pending gradings (grader/server/live.py says why polling): each element with
// data-live="<status.json URL>" is polled while its grading is pending; the status text changes
// in place, and the page reloads once a grading ends, to show its score and report link.
(function () {
  "use strict";
  var cells = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  if (!cells.length || !window.fetch) { return; }
  var delay = 2000;
  function poll() {
    if (document.hidden) { return setTimeout(poll, delay); }
    Promise.all(cells.map(function (cell) {
      return fetch(cell.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (state) {
          if (!state) { return false; }
          if (cell.textContent.trim() !== state.status) {
            cell.textContent = state.status;
            cell.className = "status-" + state.status;
          }
          return !state.pending;
        }, function () { return false; });
    })).then(function (ended) {
      if (ended.indexOf(true) >= 0) { window.location.reload(); return; }
      delay = Math.min(delay * 1.5, 15000);
      setTimeout(poll, delay);
    });
  }
  setTimeout(poll, delay);
}());
