/// The report's stylesheet and script, inlined so the HTML file stands alone (no network, no files).
enum ReportAssets {
    static let css = """
    :root { --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --bg: #fff; --alt: #f5f5f7; --accent: #0b57d0; }
    * { box-sizing: border-box; }
    body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg);
           background: var(--bg); margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; }
    h1 { font-size: 22px; margin: 4px 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
    .sub { color: var(--muted); margin: 0 0 12px; }
    table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
    th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
    th { background: var(--alt); cursor: pointer; user-select: none; position: sticky; top: 0; }
    th.text, td.text { text-align: left; }
    th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
    th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
    tr.best td { font-weight: 600; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; }
    svg.chart { width: 660px; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
    svg .grid { stroke: #eee; } svg .tick { font-size: 10px; fill: var(--muted); } svg .axis { font-size: 11px; fill: var(--fg); }
    svg .title { font-size: 12px; font-weight: 600; } svg .legend { font-size: 11px; }
    .filters { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; background: var(--alt); padding: 8px 12px;
               border-radius: 6px; margin-bottom: 10px; }
    .filters label { color: var(--muted); } .filters select, .filters input { margin-left: 4px; font: inherit; }
    .grid-wrap { overflow-x: auto; }
    table.samples td { vertical-align: top; text-align: center; padding: 6px; }
    table.samples img { width: 96px; height: 96px; image-rendering: pixelated; display: block; margin: 0 auto 2px; border-radius: 3px; }
    table.samples .small img { width: 64px; height: 64px; display: inline-block; margin: 0 1px; }
    .score { font-size: 12px; color: var(--muted); } .score b { color: var(--fg); }
    td.meta { text-align: left; font-size: 12px; color: var(--muted); }
    details pre { background: var(--alt); padding: 10px; border-radius: 6px; overflow-x: auto; font-size: 12px; }
    .count { color: var(--muted); font-size: 12px; }
    """

    static let script = """
    (function () {
      'use strict';
      // Sortable tables: click a header; numbers sort by their exact data-value.
      document.querySelectorAll('table.sortable').forEach(function (table) {
        table.querySelectorAll('th').forEach(function (th, col) {
          th.addEventListener('click', function () {
            var asc = th.getAttribute('aria-sort') !== 'ascending';
            table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
            th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
            var body = table.tBodies[0];
            var rows = Array.prototype.slice.call(body.rows);
            rows.sort(function (a, b) {
              var x = a.cells[col].getAttribute('data-value'), y = b.cells[col].getAttribute('data-value');
              var nx = parseFloat(x), ny = parseFloat(y), cmp;
              if (!isNaN(nx) && !isNaN(ny)) { cmp = nx - ny; } else { cmp = String(x).localeCompare(String(y)); }
              return asc ? cmp : -cmp;
            });
            rows.forEach(function (r) { body.appendChild(r); });
          });
        });
      });
      // Sample filters: source class, target class, minimum score of one method, top-n by that score.
      var grid = document.getElementById('samples');
      if (!grid) { return; }
      var source = document.getElementById('f-source'), target = document.getElementById('f-target');
      var by = document.getElementById('f-by'), min = document.getElementById('f-min'), top = document.getElementById('f-top');
      var count = document.getElementById('f-count');
      function apply() {
        var rows = Array.prototype.slice.call(grid.tBodies[0].rows);
        var key = by.value, threshold = parseFloat(min.value), n = parseInt(top.value, 10);
        var shown = rows.filter(function (r) {
          var s = JSON.parse(r.getAttribute('data-scores'))[key];
          var ok = (source.value === '' || r.getAttribute('data-source') === source.value) &&
                   (target.value === '' || r.getAttribute('data-target') === target.value) &&
                   (isNaN(threshold) || (typeof s === 'number' && s >= threshold));
          r.hidden = !ok;
          return ok;
        });
        if (!isNaN(n) && n > 0) {
          shown.sort(function (a, b) {
            return (JSON.parse(b.getAttribute('data-scores'))[key] || -Infinity) - (JSON.parse(a.getAttribute('data-scores'))[key] || -Infinity);
          });
          shown.forEach(function (r, i) { if (i >= n) { r.hidden = true; } });
          shown = shown.slice(0, n);
        }
        count.textContent = shown.length + ' of ' + rows.length + ' samples shown';
      }
      [source, target, by, min, top].forEach(function (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); });
      apply();
    })();
    """
}
