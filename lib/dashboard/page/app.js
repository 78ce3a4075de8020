// Courier dashboard page: reads /api/state once, then the `frame` events of /events (at most one
// a second). Every text from the server goes in with textContent: message types, errors and
// headers are data, never markup.
'use strict';
(function () {
  var token = new URLSearchParams(location.search).get('token');
  var q = function (path, params) {
    var u = new URL(path, location.href);
    if (token) u.searchParams.set('token', token);
    if (params) for (var k in params) u.searchParams.set(k, params[k]);
    return u.toString();
  };
  var FIG = { publishRate: 0, consumeRate: 1, backlog: 2, inFlight: 3, timeToDrainMs: 4, p50: 5, p99: 6 };
  var capacity = 300;
  // Per key ("t:" type, "h:" handler): the points' tuples, oldest first, at most `capacity`.
  var series = new Map();
  var $ = function (id) { return document.getElementById(id); };
  var make = function (tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };

  function addPoint(p) {
    var seen = new Set();
    [['t:', p.types], ['h:', p.handlers]].forEach(function (pair) {
      for (var k in pair[1]) {
        var key = pair[0] + k;
        seen.add(key);
        var s = series.get(key);
        if (!s) { s = []; series.set(key, s); }
        s.push(pair[1][k]);
        if (s.length > capacity) s.shift();
      }
    });
    series.forEach(function (s, key) {
      if (!seen.has(key)) { s.push(null); if (s.length > capacity) s.shift(); }
      if (s.every(function (x) { return x === null; })) series.delete(key);
    });
  }
  function col(key, i) {
    return (series.get(key) || []).map(function (t) { return t === null ? null : t[i]; });
  }
  function num(v, digits) {
    if (v === null || v === undefined) return '-';
    return Number(v).toLocaleString('en-US', { maximumFractionDigits: digits || 0 });
  }
  function ms(v) {
    if (v === null || v === undefined) return 'never';
    if (v < 1000) return v + ' ms';
    if (v < 120000) return (v / 1000).toFixed(1) + ' s';
    return Math.round(v / 60000) + ' min';
  }
  function chartCell(key, parts, label, attrs) {
    var td = make('td');
    var div = make('div', null, 'cell');
    div.appendChild(window.CourierCharts.spark(parts.map(function (p) { return { values: col(key, p[0]), color: p[1] }; }), { capacity: capacity }));
    var v = make('span', label, 'val');
    div.appendChild(v);
    td.appendChild(div);
    for (var a in attrs || {}) td.setAttribute(a, attrs[a]);
    return td;
  }
  function growing(key) {
    var b = col(key, FIG.backlog).filter(function (x) { return x !== null; });
    return b.length >= 3 && b[b.length - 1] > b[b.length - 3];
  }

  function renderServices(frame) {
    var root = $('services');
    root.textContent = '';
    if (!frame.services.length) root.appendChild(make('p', 'No live instance yet (services appear with discovery or metricsReporter).', 'muted'));
    frame.services.forEach(function (s) {
      var card = make('div', null, 'card');
      card.setAttribute('data-service', s.name);
      card.appendChild(make('h3', s.name + ' (' + s.instances.length + ')'));
      var ul = make('ul');
      s.instances.forEach(function (i) {
        var li = make('li', i.id + (i.transport ? ' · ' + i.transport : '') + (i.version ? ' · v' + i.version : '') + (i.reportsMetrics ? '' : ' · no metrics'));
        li.setAttribute('data-instance', i.id);
        ul.appendChild(li);
      });
      card.appendChild(ul);
      root.appendChild(card);
    });
  }

  function renderGraph(frame) {
    var NS = 'http://www.w3.org/2000/svg';
    var g = frame.graph;
    var pubs = Array.from(new Set(g.publishers.map(function (p) { return p.service; }))).sort();
    var subs = Array.from(new Set(g.subscribers.map(function (s) { return s.handler; }))).sort();
    var types = g.types;
    var rowH = 20;
    var rows = Math.max(pubs.length, types.length, subs.length, 1);
    var W = 1120, H = rows * rowH + 20;
    var x = [10, 300, 690];
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var y = function (list, item) {
      var off = (rows - list.length) * rowH / 2;
      return 14 + off + list.indexOf(item) * rowH;
    };
    var text = function (tx, ty, s, cls, anchor) {
      var t = document.createElementNS(NS, 'text');
      t.setAttribute('x', tx); t.setAttribute('y', ty);
      if (cls) t.setAttribute('class', cls);
      if (anchor) t.setAttribute('text-anchor', anchor);
      t.textContent = s;
      svg.appendChild(t);
      return t;
    };
    var line = function (x1, y1, x2, y2, color) {
      var p = document.createElementNS(NS, 'path');
      var mx = (x1 + x2) / 2;
      p.setAttribute('d', 'M' + x1 + ' ' + y1 + ' C' + mx + ' ' + y1 + ' ' + mx + ' ' + y2 + ' ' + x2 + ' ' + y2);
      p.setAttribute('stroke', color);
      svg.appendChild(p);
    };
    g.publishers.forEach(function (p) { line(x[0] + 170, y(pubs, p.service) - 4, x[1] - 6, y(types, p.type) - 4, '#2f6fdf'); });
    g.subscribers.forEach(function (s) { line(x[1] + 250, y(types, s.type) - 4, x[2] - 6, y(subs, s.handler) - 4, '#1f9d6b'); });
    pubs.forEach(function (p) { text(x[0], y(pubs, p), p).setAttribute('data-publisher', p); });
    types.forEach(function (t) {
      var f = frame.types[t];
      text(x[1], y(types, t), t + (f ? '  ' + num(f.publishRate, 1) + '/s' : ''), 'type').setAttribute('data-graph-type', t);
    });
    subs.forEach(function (s) { text(x[2], y(subs, s), s).setAttribute('data-subscriber', s); });
    var root = $('graph');
    root.textContent = '';
    root.appendChild(svg);
  }

  function renderTable(id, prefix, entries, handler) {
    var body = $(id).querySelector('tbody');
    body.textContent = '';
    entries.forEach(function (e) {
      var name = e[0], f = e[1], key = prefix + name;
      var tr = make('tr');
      tr.setAttribute(handler ? 'data-handler' : 'data-type', name);
      tr.setAttribute('data-backlog', f.backlog === null ? '' : String(f.backlog));
      tr.setAttribute('data-rate', String(handler ? f.consumeRate : f.publishRate));
      var nameCell = make('td', name, 'name');
      nameCell.title = handler ? (f.pattern || '') + ' · ' + f.services.join(', ') + ' · ' + f.instances + ' instance(s)' : name;
      tr.appendChild(nameCell);
      if (handler) tr.appendChild(chartCell(key, [[FIG.consumeRate, '#1f9d6b']], num(f.consumeRate, 1)));
      else tr.appendChild(chartCell(key, [[FIG.publishRate, '#2f6fdf'], [FIG.consumeRate, '#1f9d6b']], num(f.publishRate, 1) + ' / ' + num(f.consumeRate, 1)));
      var b = chartCell(key, [[FIG.backlog, '#d9822b']], num(f.backlog) + (handler && f.backlogFrom === 'broker' ? ' (broker)' : ''), { 'data-figure': 'backlog' });
      if (growing(key)) b.querySelector('.val').classList.add('grow');
      tr.appendChild(b);
      tr.appendChild(chartCell(key, [[FIG.inFlight, '#6b7585']], num(f.inFlight)));
      tr.appendChild(chartCell(key, [[FIG.timeToDrainMs, '#8a5cd6']], ms(f.timeToDrainMs)));
      tr.appendChild(chartCell(key, [[FIG.p50, '#2f6fdf'], [FIG.p99, '#c93c3c']], num(f.p50, 1) + ' / ' + num(f.p99, 1)));
      if (handler) {
        tr.appendChild(make('td', num(f.failed)));
        tr.appendChild(make('td', num(f.deadLettered)));
      }
      body.appendChild(tr);
    });
  }

  function post(path, body) {
    return fetch(q(path), { method: 'POST', headers: { 'content-type': 'application/json', 'x-courier-dashboard': '1' }, body: JSON.stringify(body) }).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; });
    });
  }

  function renderDeadLetters(view) {
    var body = $('dead-letters').querySelector('tbody');
    var reasons = $('dl-reasons');
    body.textContent = '';
    reasons.textContent = '';
    if (!view) { $('dl-total').textContent = '(no transport to read them)'; $('dl-empty').hidden = false; return; }
    $('dl-total').textContent = view.total ? view.total + ' in ' + view.subscriptions.length + ' subscription(s)' : '';
    Object.keys(view.byReason).sort().forEach(function (r) {
      var s = make('span', r + ': ' + view.byReason[r], 'reason');
      s.setAttribute('data-reason', r);
      reasons.appendChild(s);
    });
    var any = false;
    view.subscriptions.forEach(function (sub) {
      if (sub.error) {
        var tr = make('tr');
        tr.appendChild(make('td', sub.subscription, 'name'));
        var td = make('td', 'cannot read: ' + sub.error);
        td.colSpan = 5;
        tr.appendChild(td);
        body.appendChild(tr);
      }
      sub.items.forEach(function (d) {
        any = true;
        var tr = make('tr');
        tr.setAttribute('data-dead-letter', d.id || '');
        tr.setAttribute('data-subscription', sub.subscription);
        tr.appendChild(make('td', sub.subscription, 'name'));
        tr.appendChild(make('td', d.type, 'name'));
        tr.appendChild(make('td', (d.reason || '-') + (d.replayedBefore ? ' (replayed before)' : '')));
        if (d.replayedBefore) tr.setAttribute('data-replayed-before', 'yes');
        tr.appendChild(make('td', ((d.errorName || '') + (d.errorMessage ? ': ' + d.errorMessage : '')).slice(0, 120)));
        tr.appendChild(make('td', d.deadAt || '-'));
        var actions = make('td');
        var open = make('button', 'Open');
        open.setAttribute('data-action', 'open');
        open.onclick = function () {
          fetch(q('api/dead-letters/show', { subscription: sub.subscription, id: d.id })).then(function (r) { return r.json(); }).then(function (j) {
            var pre = $('dl-detail');
            pre.hidden = false;
            pre.textContent = JSON.stringify(j, null, 2);
          });
        };
        var replay = make('button', 'Replay');
        replay.setAttribute('data-action', 'replay');
        replay.onclick = function () {
          replay.disabled = true;
          post('api/dead-letters/replay', { subscription: sub.subscription, id: d.id }).then(function (r) {
            replay.textContent = r.status === 200 ? 'Replayed' : 'Failed: ' + (r.body.error || r.status);
            tr.setAttribute('data-replayed', r.status === 200 ? 'yes' : 'no');
          });
        };
        actions.appendChild(open);
        actions.appendChild(replay);
        tr.appendChild(actions);
        body.appendChild(tr);
      });
    });
    $('dl-empty').hidden = any;
  }

  var lastDeadLetters = '';
  function render(frame, deadLetters) {
    renderServices(frame);
    renderGraph(frame);
    renderTable('handlers', 'h:', Object.keys(frame.handlers).sort().map(function (k) { return [k, frame.handlers[k]]; }), true);
    renderTable('types', 't:', Object.keys(frame.types).sort().map(function (k) { return [k, frame.types[k]]; }), false);
    // Redrawn only when they changed: a button being clicked stays where it is.
    var dl = JSON.stringify(deadLetters);
    if (dl !== lastDeadLetters) {
      lastDeadLetters = dl;
      renderDeadLetters(deadLetters);
    }
    $('updated').textContent = 'updated ' + new Date(frame.at).toLocaleTimeString();
    document.body.setAttribute('data-frame-at', String(frame.at));
  }

  fetch(q('api/state')).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.json();
  }).then(function (state) {
    $('title').textContent = state.title;
    document.title = state.title + ' · Courier dashboard';
    capacity = Math.max(10, Math.round(300000 / state.tickMs));
    Array.prototype.forEach.call(document.querySelectorAll('.minutes'), function (e) { e.textContent = String(Math.round((capacity * state.tickMs) / 60000)); });
    state.history.forEach(addPoint);
    if (state.frame) render(state.frame, state.deadLetters);
    var es = new EventSource(q('events'));
    es.addEventListener('open', function () { $('status').textContent = 'live'; $('status').className = 'status'; });
    es.addEventListener('error', function () { $('status').textContent = 'reconnecting'; $('status').className = 'status off'; });
    es.addEventListener('frame', function (ev) {
      var m = JSON.parse(ev.data);
      addPoint(m.point);
      render(m.frame, m.deadLetters);
    });
  }).catch(function (err) {
    $('status').textContent = 'cannot load: ' + err.message;
  });
})();
