// bench leaderboard site: sortable tables (mouse and keyboard), no dependencies, no network.
// A table with class "sortable" has <button class="sort"> headers; each cell carries its
// raw value in data-value (the CSV's text). Numbers sort numerically, empty/NaN go last.
(function () {
  "use strict";

  function key(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isFinite(v) ? v : null;
  }

  function sortBy(table, th, button) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var first = button.getAttribute("data-first") || "ascending";
    var dir = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var ka = key(a.cells[col], numeric), kb = key(b.cells[col], numeric);
      if (ka === null || kb === null) return (ka === null) - (kb === null); // missing last
      return ka < kb ? -sign : ka > kb ? sign : 0; // stable: ties keep their order
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var status = document.querySelector('.sort-status[data-for="' + table.id + '"]');
    if (status) status.textContent = "Sorted by " + button.getAttribute("data-label") + ", " + dir + ".";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tips = window.BENCH_TIPS || {}; // a board's metric definitions, shared by its error pages
    Array.prototype.forEach.call(document.querySelectorAll("button.sort[data-tip-ref]"), function (button) {
      var tip = tips[button.getAttribute("data-tip-ref")];
      if (tip) button.setAttribute("data-tip", tip);
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      Array.prototype.forEach.call(table.querySelectorAll("thead button.sort"), function (button) {
        button.addEventListener("click", function () { sortBy(table, button.parentNode, button); });
      });
    });
  });
})();
