// Courier dashboard: hand-drawn SVG charts (no dependency). spark(series, options) returns an
// <svg> of one or more lines over the same x axis; null values leave a gap.
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  function el(name, attrs) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  /** series: [{ values: number[] (null allowed), color }]; options: { width, height, capacity } */
  function spark(series, options) {
    var w = options.width || 140;
    var h = options.height || 28;
    var cap = options.capacity || 300;
    var max = 0;
    series.forEach(function (s) {
      s.values.forEach(function (v) { if (v !== null && v > max) max = v; });
    });
    var svg = el('svg', { width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
    svg.appendChild(el('rect', { x: 0, y: 0, width: w, height: h, fill: '#f6f8fb' }));
    // The x axis spans the points present, at least a minute's, at most `cap`.
    var span = Math.min(cap, Math.max(60, series.reduce(function (m, s) { return Math.max(m, s.values.length); }, 0)));
    series.forEach(function (s) {
      var n = s.values.length;
      var d = '';
      var pen = false;
      for (var i = 0; i < n; i++) {
        var v = s.values[i];
        if (v === null || v === undefined) { pen = false; continue; }
        var x = w - ((n - 1 - i) * w) / Math.max(1, span - 1);
        var y = h - 2 - (max > 0 ? (v / max) * (h - 4) : 0);
        d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
        pen = true;
      }
      if (d) svg.appendChild(el('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': 1.5 }));
    });
    svg.setAttribute('data-max', String(max));
    return svg;
  }
  window.CourierCharts = { spark: spark };
})();
