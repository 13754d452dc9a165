// bench leaderboard site: sortable tables (mouse and keyboard) whose sort is kept in the address, search on
// the index, the study's score selector and a board's compare view. No dependencies, no network.
// A table with class "sortable" has <button class="sort"> headers; each cell carries its
// raw value in data-value (the CSV's text). Numbers sort numerically, empty/NaN go last.
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  // the address's state: #key=value&key=value (a table id -> "column.direction"; "<table id>.q" and
// "<table id>.family" -> a board table's filters; score; cmp)
  function state() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }
  function save(key, value) {
    var s = state(), parts = [];
    if (value) s[key] = value; else delete s[key]; // an empty value (a cleared filter) leaves the address
    Object.keys(s).forEach(function (k) { parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(s[k])); });
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
  }

  function key(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isFinite(v) ? v : null;
  }

  function sortBy(table, th, button, dir) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var first = button.getAttribute("data-first") || "ascending";
    if (!dir) dir = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var ka = key(a.cells[col], numeric), kb = key(b.cells[col], numeric);
      if (ka === null || kb === null) return (ka === null) - (kb === null); // missing last
      return ka < kb ? -sign : ka > kb ? sign : 0; // stable: ties keep their order
    });
    rows.forEach(function (r) { body.appendChild(r); });
    each(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var status = document.querySelector('.sort-status[data-for="' + table.id + '"]');
    if (status) status.textContent = "Sorted by " + button.getAttribute("data-label") + ", " + dir + ".";
  }

  function tables() {
    var saved = state();
    each(document.querySelectorAll("table.sortable"), function (table) {
      each(table.querySelectorAll("thead button.sort"), function (button) {
        button.addEventListener("click", function () {
          sortBy(table, button.parentNode, button);
          save(table.id, button.getAttribute("data-label") + "." + button.parentNode.getAttribute("aria-sort"));
        });
      });
      var want = saved[table.id];
      if (want) {
        var i = want.lastIndexOf("."), name = want.slice(0, i), dir = want.slice(i + 1);
        each(table.querySelectorAll("thead th"), function (th) {
          if (th.getAttribute("data-name") === name) sortBy(table, th, th.querySelector("button.sort"), dir);
        });
      }
    });
  }

  // a board table's filter bar (div.table-filter[data-for=table id]): rows whose method or mode contains the
  // text and whose data-family is the chosen family stay; the others are hidden (sorting keeps that)
  function filters() {
    var saved = state();
    each(document.querySelectorAll("div.table-filter"), function (bar) {
      var id = bar.getAttribute("data-for"), table = document.getElementById(id);
      if (!table) return;
      var q = bar.querySelector("input.filter-q"), fam = bar.querySelector("select.filter-family"),
          status = bar.querySelector(".filter-status");
      function apply() {
        var text = q.value.trim().toLowerCase(), f = fam.value, shown = 0, rows = table.tBodies[0].rows;
        each(rows, function (r) {
          var name = ((r.getAttribute("data-method") || "") + " " + (r.getAttribute("data-mode") || "")).toLowerCase();
          var keep = (!text || name.indexOf(text) >= 0) && (!f || r.getAttribute("data-family") === f);
          r.hidden = !keep;
          if (keep) shown += 1;
        });
        status.textContent = text || f ? "Showing " + shown + " of " + rows.length + " rows." : "";
      }
      if (saved[id + ".q"]) q.value = saved[id + ".q"];
      var want = saved[id + ".family"];
      if (want && fam.querySelector('option[value="' + want.replace(/"/g, '\\"') + '"]')) fam.value = want;
      apply();
      q.addEventListener("input", function () { apply(); save(id + ".q", q.value.trim()); });
      fam.addEventListener("change", function () { apply(); save(id + ".family", fam.value); });
    });
  }

  function search() {
    var input = document.getElementById("search"), data = document.getElementById("search-data");
    if (!input || !data) return;
    var entries = JSON.parse(data.textContent), out = document.getElementById("search-results");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      out.textContent = "";
      if (!q) return;
      entries.filter(function (e) {
        return (e.label + " " + e.kind + " " + (e.detail || "")).toLowerCase().indexOf(q) >= 0;
      }).slice(0, 40).forEach(function (e) {
        var li = document.createElement("li"), a = document.createElement("a"), k = document.createElement("span");
        a.href = e.href; a.textContent = e.label; k.className = "muted"; k.textContent = " " + e.kind;
        li.appendChild(a); li.appendChild(k); out.appendChild(li);
      });
    });
  }

  function scores() {
    var select = document.querySelector("select.score-select");
    if (!select) return;
    function show(v) {
      each(document.querySelectorAll(".grid-score"), function (g) { g.hidden = g.getAttribute("data-score") !== v; });
    }
    var want = state().score;
    if (want && select.querySelector('option[value="' + want + '"]')) select.value = want;
    show(select.value);
    select.addEventListener("change", function () { show(select.value); save("score", select.value); });
  }

  function fmt(v) {
    if (v === null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : a >= 100 ? v.toFixed(1) : v.toPrecision(3);
  }

  function compare() {
    var data = window.BENCH_COMPARE, root = document.getElementById("compare");
    if (!data || !root) return;
    var stem = document.getElementById("cmp-stem"), a = document.getElementById("cmp-a"),
        b = document.getElementById("cmp-b"), metric = document.getElementById("cmp-metric");
    function label(v) { // "method|mode" -> "method (mode)", "method|" -> "method"
      var i = v.indexOf("|"), mode = v.slice(i + 1);
      return i < 0 ? v : v.slice(0, i) + (mode ? " (" + mode + ")" : "");
    }
    function options(select, values) {
      select.textContent = "";
      values.forEach(function (v) {
        var o = document.createElement("option"); o.value = v; o.textContent = label(v); select.appendChild(o);
      });
    }
    function fill(keep) {
      var d = data[stem.value], names = Object.keys(d.entries);
      options(a, names); options(b, names);
      options(metric, d.metrics.map(function (m) { return m.name; }));
      a.value = keep && keep.a && d.entries[keep.a] ? keep.a : names[0];
      b.value = keep && keep.b && d.entries[keep.b] ? keep.b : names[Math.min(1, names.length - 1)];
      if (keep && keep.m) metric.value = keep.m;
    }
    function row(cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { var td = document.createElement("td"); td.innerHTML = c; tr.appendChild(td); });
      return tr;
    }
    function render() {
      var d = data[stem.value], ea = d.entries[a.value], eb = d.entries[b.value];
      var shared = Object.keys(ea).filter(function (t) { return t in eb; }).sort(function (x, y) { return x - y; });
      var body = document.querySelector("#compare-table tbody");
      body.textContent = "";
      d.metrics.forEach(function (m, j) {
        var n = 0, sa = 0, sb = 0, better = 0, worse = 0, tie = 0;
        shared.forEach(function (t) {
          var x = ea[t][j], y = eb[t][j];
          if (x === null || y === null) return;
          n += 1; sa += x; sb += y;
          if (x === y) tie += 1; else if ((x > y) === m.higher) better += 1; else worse += 1;
        });
        var tr = row([m.name + (m.higher ? " ↑" : " ↓"), String(n), n ? fmt(sa / n) : "–", n ? fmt(sb / n) : "–",
                      n ? fmt((sa - sb) / n) : "–", String(better), String(worse), String(tie)]);
        tr.setAttribute("data-metric", m.name);
        body.appendChild(tr);
      });
      var j = d.metrics.map(function (m) { return m.name; }).indexOf(metric.value), per = document.querySelector("#compare-errors tbody");
      per.textContent = "";
      shared.forEach(function (t) {
        var x = ea[t][j], y = eb[t][j];
        per.appendChild(row(['<a href="errors/' + t + '.html">#' + t + "</a>", fmt(x), fmt(y),
                             x === null || y === null ? "–" : fmt(x - y)]));
      });
      document.getElementById("compare-status").textContent = label(a.value) + " against " + label(b.value) +
        " on " + shared.length + " shared errors.";
      save("cmp", [stem.value, a.value, b.value, metric.value].join(","));
    }
    var saved = (state().cmp || "").split(",");
    if (saved[0] && data[saved[0]]) stem.value = saved[0];
    fill({a: saved[1], b: saved[2], m: saved[3]});
    stem.addEventListener("change", function () { fill(); render(); });
    [a, b, metric].forEach(function (s) { s.addEventListener("change", render); });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tips = window.BENCH_TIPS || {}; // a board's metric definitions, shared by its error pages
    each(document.querySelectorAll("button.sort[data-tip-ref]"), function (button) {
      var tip = tips[button.getAttribute("data-tip-ref")];
      if (tip) button.setAttribute("data-tip", tip);
    });
    tables();
    filters();
    search();
    scores();
    compare();
  });
})();
