// Whirl's dashboard. Polls /metrics (Prometheus text format) and the namespace's activation list
// and draws hand-written SVG charts: no library, nothing loaded from elsewhere.
'use strict';
(function () {
  const POLL_MS = 2000;
  const KEEP = 150; // samples kept: five minutes at one per two seconds
  const STATUSES = ['success', 'application_error', 'developer_error', 'whisk_error'];
  const POOL_STATES = ['busy', 'warm', 'paused', 'prewarm'];
  const COLORS = {
    success: '#2e9d5b', application_error: '#e0a100', developer_error: '#d9622b', whisk_error: '#c8283c',
    busy: '#3867d6', warm: '#2e9d5b', paused: '#9aa3b5', prewarm: '#8e5cd9',
    'end to end p50': '#3867d6', 'end to end p99': '#c8283c', 'run p50': '#2e9d5b', 'run p99': '#e0a100',
  };
  const SVG = 'http://www.w3.org/2000/svg';
  const samples = [];
  let auth = null;
  let recent = [];

  const $ = (id) => document.getElementById(id);

  // --- the API key: from the URL fragment (never sent to a server), else local storage
  function readAuth() {
    const m = /(?:^|[#&])auth=([^&]+)/.exec(location.hash);
    if (m) {
      auth = decodeURIComponent(m[1]);
      store(auth);
      history.replaceState(null, '', location.pathname + location.search);
    } else {
      try { auth = localStorage.getItem('whirl.auth'); } catch (e) { auth = null; }
    }
  }
  function store(key) {
    try { localStorage.setItem('whirl.auth', key); } catch (e) { /* private mode: keep it in memory */ }
  }

  // --- Prometheus text exposition format
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[2]) {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let l;
        while ((l = re.exec(m[2])) !== null) {
          labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        }
      }
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }
  function matches(labels, filter) {
    for (const k in filter) if (labels[k] !== filter[k]) return false;
    return true;
  }
  function total(ms, name, filter) {
    let s = 0;
    for (const x of ms) if (x.name === name && matches(x.labels, filter || {}) && isFinite(x.value)) s += x.value;
    return s;
  }
  function groupBy(ms, name, key, filter) {
    const g = {};
    for (const x of ms) {
      if (x.name !== name || !matches(x.labels, filter || {}) || !isFinite(x.value)) continue;
      const v = x.labels[key];
      g[v] = (g[v] || 0) + x.value;
    }
    return g;
  }
  function buckets(ms, name, filter) {
    const b = {};
    for (const x of ms) {
      if (x.name !== name + '_bucket' || !matches(x.labels, filter || {})) continue;
      b[x.labels.le] = (b[x.labels.le] || 0) + x.value;
    }
    return b;
  }
  // histogram_quantile over the difference of two cumulative bucket sets
  function quantile(q, now, before) {
    const les = Object.keys(now).sort((a, b) => Number(a) - Number(b));
    if (!les.length) return null;
    const counts = les.map((le) => (now[le] || 0) - ((before && before[le]) || 0));
    const n = counts[counts.length - 1];
    if (!(n > 0)) return null;
    const rank = q * n;
    let prevLe = 0, prevCount = 0;
    for (let i = 0; i < les.length; i++) {
      const le = Number(les[i]);
      if (counts[i] >= rank) {
        if (!isFinite(le)) return prevLe;
        const inBucket = counts[i] - prevCount;
        return inBucket > 0 ? prevLe + (le - prevLe) * ((rank - prevCount) / inBucket) : le;
      }
      prevLe = le; prevCount = counts[i];
    }
    return prevLe;
  }

  function sample(ms) {
    const hasInvoker = ms.some((x) => x.name === 'whirl_invoker_activations_total');
    let statuses;
    if (hasInvoker) {
      statuses = groupBy(ms, 'whirl_invoker_activations_total', 'status');
    } else {
      statuses = groupBy(ms, 'whirl_controller_activations_total', 'outcome');
    }
    return {
      t: Date.now(),
      statuses,
      e2e: buckets(ms, 'whirl_controller_invoke_seconds'),
      run: buckets(ms, 'whirl_invoker_activation_seconds', { phase: 'run' }),
      pool: groupBy(ms, 'whirl_invoker_containers', 'state'),
      active: total(ms, 'whirl_controller_active_activations'),
      queue: total(ms, 'whirl_invoker_queue_length'),
      cold: total(ms, 'whirl_invoker_container_starts_total', { start: 'cold' }),
      throttled: total(ms, 'whirl_controller_throttled_total'),
    };
  }

  // --- formatting
  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    if (s < 0.001) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    return s.toFixed(2) + ' s';
  }
  function fmtMs(ms) {
    return ms === undefined || ms === null ? '–' : fmtSeconds(ms / 1000);
  }
  function fmtRate(r) {
    return r >= 100 ? r.toFixed(0) : r.toFixed(r >= 10 ? 1 : 2);
  }
  function clockTime(t) {
    const d = new Date(t);
    return d.toTimeString().slice(0, 8);
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }

  // --- charts
  const W = 440, H = 190, L = 56, R = 8, T = 18, B = 20;

  function frame(container, tMin, tMax, yMax, yFmt) {
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
    const x = (t) => L + ((t - tMin) / Math.max(1, tMax - tMin)) * (W - L - R);
    const y = (v) => H - B - (v / (yMax || 1)) * (H - T - B);
    for (const f of [0, 0.5, 1]) {
      const yy = y(yMax * f);
      svg.appendChild(svgEl('line', { class: 'axis', x1: L, x2: W - R, y1: yy, y2: yy }));
      const label = svgEl('text', { x: L - 4, y: yy + 3, 'text-anchor': 'end' });
      label.textContent = yFmt(yMax * f);
      svg.appendChild(label);
    }
    for (const [t, anchor] of [[tMin, 'start'], [tMax, 'end']]) {
      const label = svgEl('text', { x: x(t), y: H - 6, 'text-anchor': anchor });
      label.textContent = clockTime(t);
      svg.appendChild(label);
    }
    container.replaceChildren(svg);
    return { svg, x, y };
  }

  function legend(svg, names) {
    const g = svgEl('g', { class: 'legend' });
    let xx = L;
    for (const n of names) {
      g.appendChild(svgEl('rect', { x: xx, y: 4, width: 9, height: 9, fill: COLORS[n] || '#777' }));
      const t = svgEl('text', { x: xx + 12, y: 12 });
      t.textContent = n.replace(/_/g, ' ');
      g.appendChild(t);
      xx += 24 + n.length * 6.2;
    }
    svg.appendChild(g);
  }

  // series: [{name, points: [[t, v|null]]}]; stacked draws areas summed in order.
  function lineChart(id, series, opts) {
    const container = $(id);
    const all = series.flatMap((s) => s.points);
    const ts = all.map((p) => p[0]);
    const now = Date.now();
    const tMin = ts.length ? Math.min(...ts) : now - 60000;
    const tMax = ts.length ? Math.max(...ts, tMin + 1000) : now;
    let yMax = 0;
    if (opts.stacked) {
      const n = series.length ? series[0].points.length : 0;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (const ser of series) s += ser.points[i][1] || 0;
        yMax = Math.max(yMax, s);
      }
    } else {
      for (const p of all) if (p[1] !== null) yMax = Math.max(yMax, p[1]);
    }
    yMax = niceMax(yMax || opts.minMax || 1);
    const { svg, x, y } = frame(container, tMin, tMax, yMax, opts.yFmt);
    let drawn = 0;
    const base = series.length ? series[0].points.map(() => 0) : [];
    for (const ser of series) {
      const pts = ser.points;
      if (opts.stacked) {
        if (pts.length < 2) continue;
        const top = pts.map((p, i) => [p[0], base[i] + (p[1] || 0)]);
        const d = top.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('')
          + pts.slice().reverse().map((p, j) => {
            const i = pts.length - 1 - j;
            return `L${x(p[0]).toFixed(1)},${y(base[i]).toFixed(1)}`;
          }).join('') + 'Z';
        const visible = pts.some((p) => p[1] > 0);
        svg.appendChild(svgEl('path', { d, fill: COLORS[ser.name] || '#777', 'fill-opacity': 0.75, stroke: visible ? COLORS[ser.name] || '#777' : 'none', 'stroke-width': 1.2, 'data-series': ser.name }));
        top.forEach((p, i) => { base[i] = p[1]; });
        drawn += pts.length;
      } else {
        let d = '', pen = false, n = 0;
        for (const p of pts) {
          if (p[1] === null) { pen = false; continue; }
          d += `${pen ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`;
          pen = true; n++;
        }
        if (n === 1) {
          const p = pts.find((q) => q[1] !== null);
          svg.appendChild(svgEl('circle', { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: COLORS[ser.name] || '#777' }));
        }
        if (d) {
          svg.appendChild(svgEl('path', { d, fill: 'none', stroke: COLORS[ser.name] || '#777', 'stroke-width': 1.6, 'data-series': ser.name }));
        }
        drawn += n;
      }
    }
    legend(svg, series.map((s) => s.name));
    if (!drawn) {
      const t = svgEl('text', { x: (L + W - R) / 2, y: (T + H - B) / 2, 'text-anchor': 'middle' });
      t.textContent = opts.empty || 'no data yet';
      svg.appendChild(t);
    }
    svg.setAttribute('data-points', String(drawn));
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function scatterChart(id, acts) {
    const container = $(id);
    const now = Date.now();
    const ts = acts.map((a) => a.start);
    const tMin = ts.length ? Math.min(...ts) : now - 60000;
    const tMax = ts.length ? Math.max(...ts, tMin + 1000) : now;
    const yMax = niceMax(Math.max(1, ...acts.map((a) => a.duration || 0)));
    const { svg, x, y } = frame(container, tMin, tMax, yMax, (v) => fmtMs(v));
    for (const a of acts) {
      const status = STATUSES[a.statusCode] || 'whisk_error';
      const c = svgEl('circle', { cx: x(a.start).toFixed(1), cy: y(a.duration || 0).toFixed(1), r: 3.5, fill: COLORS[status], 'data-id': a.activationId });
      const title = svgEl('title');
      title.textContent = `${a.name} ${a.activationId} ${status} ${fmtMs(a.duration)}`;
      c.appendChild(title);
      svg.appendChild(c);
    }
    legend(svg, STATUSES);
    svg.setAttribute('data-points', String(acts.length));
  }

  // --- rendering
  function rates(key) {
    const pts = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.t - a.t) / 1000;
      pts.push([b.t, dt > 0 ? Math.max(0, ((b.statuses[key] || 0) - (a.statuses[key] || 0)) / dt) : 0]);
    }
    return pts;
  }
  function quantiles(field, q) {
    const pts = [];
    for (let i = 1; i < samples.length; i++) pts.push([samples[i].t, quantile(q, samples[i][field], samples[i - 1][field])]);
    return pts;
  }

  function render(ms) {
    const last = samples[samples.length - 1];
    const first = samples[Math.max(0, samples.length - 6)];
    const dt = (last.t - first.t) / 1000;
    const sumOf = (s) => Object.values(s.statuses).reduce((a, b) => a + b, 0);
    const errorsOf = (s) => (s.statuses.application_error || 0) + (s.statuses.developer_error || 0) + (s.statuses.whisk_error || 0) + (s.statuses.failed || 0);
    $('t-rate').textContent = dt > 0 ? fmtRate((sumOf(last) - sumOf(first)) / dt) : '–';
    $('t-errors').textContent = dt > 0 ? fmtRate((errorsOf(last) - errorsOf(first)) / dt) : '–';
    const base = samples[Math.max(0, samples.length - 31)];
    const p50 = quantile(0.5, last.e2e, base === last ? null : base.e2e);
    const p99 = quantile(0.99, last.e2e, base === last ? null : base.e2e);
    $('t-latency').textContent = `${fmtSeconds(p50)} / ${fmtSeconds(p99)}`;
    $('t-active').textContent = String(last.active);
    $('t-pool').textContent = POOL_STATES.map((s) => last.pool[s] || 0).join(' / ');
    $('t-queue').textContent = String(last.queue);
    $('t-cold').textContent = String(last.cold);
    $('t-throttled').textContent = String(last.throttled);

    const statusKeys = STATUSES.filter((s) => s in last.statuses || s === 'success');
    lineChart('c-status', statusKeys.map((s) => ({ name: s, points: rates(s) })), { stacked: true, yFmt: (v) => fmtRate(v) });
    lineChart('c-latency', [
      { name: 'end to end p50', points: quantiles('e2e', 0.5) },
      { name: 'end to end p99', points: quantiles('e2e', 0.99) },
      { name: 'run p50', points: quantiles('run', 0.5) },
      { name: 'run p99', points: quantiles('run', 0.99) },
    ], { yFmt: fmtSeconds, minMax: 0.001, empty: 'no activations completed in this window' });
    lineChart('c-pool', POOL_STATES.map((s) => ({ name: s, points: samples.map((x) => [x.t, x.pool[s] || 0]) })), { stacked: true, yFmt: (v) => v.toFixed(0) });
    renderInvokers(ms);
  }

  function renderInvokers(ms) {
    const byId = {};
    for (const x of ms) {
      if (x.name !== 'whirl_invoker_health' || x.value !== 1) continue;
      byId[x.labels.invoker] = { id: x.labels.invoker, balancer: x.labels.balancer, health: x.labels.status };
    }
    for (const x of ms) {
      if (x.name === 'whirl_invoker_containers' && x.labels.invoker) {
        const inv = byId[x.labels.invoker] || (byId[x.labels.invoker] = { id: x.labels.invoker, balancer: '–', health: 'unknown' });
        inv.pool = inv.pool || {};
        inv.pool[x.labels.state] = x.value;
      }
    }
    const rows = [];
    for (const id of Object.keys(byId).sort()) {
      const inv = byId[id];
      const f = { invoker: id };
      const used = total(ms, 'whirl_invoker_memory_mb', { invoker: id, use: 'used' });
      const cap = total(ms, 'whirl_invoker_memory_mb', { invoker: id, use: 'total' });
      const tr = el('tr', { 'data-invoker': id });
      tr.appendChild(el('td', {}, id));
      tr.appendChild(el('td', {}, inv.balancer));
      const h = el('td');
      h.appendChild(el('span', { class: 'status ' + inv.health }, inv.health));
      tr.appendChild(h);
      const pc = el('td');
      const pool = inv.pool || {};
      const n = POOL_STATES.reduce((a, s) => a + (pool[s] || 0), 0);
      const bar = el('span', { class: 'bar', title: POOL_STATES.map((s) => `${s} ${pool[s] || 0}`).join(', ') });
      for (const s of POOL_STATES) {
        const seg = el('span', { class: s });
        seg.style.width = n ? ((100 * (pool[s] || 0)) / n).toFixed(1) + '%' : '0';
        bar.appendChild(seg);
      }
      pc.appendChild(bar);
      pc.appendChild(document.createTextNode(' ' + POOL_STATES.map((s) => pool[s] || 0).join(' / ')));
      tr.appendChild(pc);
      tr.appendChild(el('td', {}, String(total(ms, 'whirl_invoker_queue_length', f))));
      tr.appendChild(el('td', {}, cap ? `${used} / ${cap} MB` : '–'));
      tr.appendChild(el('td', {}, String(total(ms, 'whirl_invoker_activations_total', f))));
      rows.push(tr);
    }
    $('invokers').tBodies[0].replaceChildren(...rows);
  }

  function renderActivations() {
    const rows = recent.map((a) => {
      const ann = {};
      for (const kv of a.annotations || []) ann[kv.key] = kv.value;
      const status = STATUSES[a.statusCode] || 'whisk_error';
      const tr = el('tr', { 'data-id': a.activationId });
      const id = el('td');
      id.appendChild(el('code', {}, a.activationId));
      tr.appendChild(id);
      tr.appendChild(el('td', {}, ann.path || a.name));
      tr.appendChild(el('td', {}, ann.kind || '–'));
      const st = el('td');
      st.appendChild(el('span', { class: 'status ' + status }, status.replace(/_/g, ' ')));
      tr.appendChild(st);
      tr.appendChild(el('td', {}, fmtMs(a.duration)));
      tr.appendChild(el('td', {}, fmtMs(ann.waitTime)));
      tr.appendChild(el('td', {}, fmtMs(ann.initTime)));
      tr.appendChild(el('td', {}, clockTime(a.start)));
      return tr;
    });
    $('activations').tBodies[0].replaceChildren(...rows);
    scatterChart('c-recent', recent.slice().reverse());
  }

  // --- polling
  async function pollMetrics() {
    const r = await fetch('/metrics', { cache: 'no-store' });
    if (!r.ok) throw new Error('GET /metrics: ' + r.status);
    const ms = parseMetrics(await r.text());
    samples.push(sample(ms));
    if (samples.length > KEEP) samples.shift();
    render(ms);
  }

  async function pollActivations() {
    if (!auth) {
      $('signin').hidden = false;
      scatterChart('c-recent', []);
      return;
    }
    const r = await fetch('/api/v1/namespaces/_/activations?limit=50', {
      headers: { Authorization: 'Basic ' + btoa(auth) },
      cache: 'no-store',
    });
    if (r.status === 401 || r.status === 403) {
      $('who').textContent = 'key refused';
      $('signin').hidden = false;
      recent = [];
      renderActivations();
      return;
    }
    if (!r.ok) throw new Error('GET activations: ' + r.status);
    recent = await r.json();
    $('signin').hidden = true;
    $('who').textContent = 'key ' + auth.split(':')[0].slice(0, 8) + '…';
    $('ns').textContent = recent.length ? '(' + recent[0].namespace + ')' : '';
    renderActivations();
  }

  async function tick() {
    const conn = $('conn');
    try {
      await Promise.all([pollMetrics(), pollActivations()]);
      conn.textContent = 'live · ' + clockTime(Date.now());
      conn.className = 'badge ok';
    } catch (e) {
      conn.textContent = 'disconnected: ' + e.message;
      conn.className = 'badge bad';
    }
    document.body.setAttribute('data-ticks', String(Number(document.body.getAttribute('data-ticks') || 0) + 1));
    setTimeout(tick, POLL_MS);
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('auth').value.trim();
    if (v) { auth = v; store(v); $('auth').value = ''; pollActivations().catch(() => {}); }
  });
  readAuth();
  tick();
})();
