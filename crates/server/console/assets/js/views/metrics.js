// Metrics: the server's own /metrics (Prometheus text) sampled every few seconds, drawn as line
// charts: WebSocket connections, HTTP requests per second by face, events delivered per second.

import { send } from '../api.js';
import { describeError, h, header, notice, s, section } from '../dom.js';

const EVERY_MS = 3000;
/** Samples kept: ten minutes at one every three seconds. */
const KEEP = 200;

/** Samples survive leaving the page, so coming back shows the recent past. */
const samples = [];

/** `name{a="b",c="d"} 12.5` lines → `[{name, labels, value}]`. Comments and blanks are skipped. */
export function parsePrometheus(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd < 0) continue;
    const name = line.slice(0, nameEnd);
    const labels = {};
    let i = nameEnd;
    if (line[i] === '{') {
      i += 1;
      while (i < line.length && line[i] !== '}') {
        const eq = line.indexOf('=', i);
        if (eq < 0) break;
        const key = line.slice(i, eq).trim().replace(/^,/, '').trim();
        i = eq + 2; // past `="`
        let value = '';
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) {
            const next = line[i + 1];
            value += next === 'n' ? '\n' : next;
            i += 2;
          } else {
            value += line[i];
            i += 1;
          }
        }
        labels[key] = value;
        i += 1; // past the closing quote
        if (line[i] === ',') i += 1;
      }
      i += 1; // past `}`
    }
    const value = Number(line.slice(i).trim().split(/\s+/)[0]);
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

function sum(series, name, filter = () => true) {
  return series.filter((m) => m.name === name && filter(m.labels)).reduce((a, m) => a + m.value, 0);
}

function byLabel(series, name, label) {
  const totals = {};
  for (const m of series) {
    if (m.name !== name) continue;
    const key = m.labels[label] ?? '(none)';
    totals[key] = (totals[key] ?? 0) + m.value;
  }
  return totals;
}

async function sample() {
  const { data } = await send('GET', '/metrics', { headers: { Accept: 'text/plain' } });
  const series = parsePrometheus(typeof data === 'string' ? data : String(data ?? ''));
  const point = {
    at: Date.now(),
    ws: sum(series, 'ferrosync_ws_connections'),
    subscriptions: sum(series, 'ferrosync_ws_subscriptions'),
    longpolls: sum(series, 'ferrosync_longpolls_waiting'),
    requests: byLabel(series, 'ferrosync_http_requests_total', 'face'),
    delivered: sum(series, 'ferrosync_events_delivered_total'),
  };
  const prev = samples[samples.length - 1];
  if (prev) {
    const dt = (point.at - prev.at) / 1000;
    // A counter that went down was reset (a restart): count from zero again.
    const rate = (now, before) => (now >= before ? (now - before) / dt : now / dt);
    point.requestRates = {};
    for (const face of new Set([...Object.keys(point.requests), ...Object.keys(prev.requests)])) {
      point.requestRates[face] = rate(point.requests[face] ?? 0, prev.requests[face] ?? 0);
    }
    point.deliveredRate = rate(point.delivered, prev.delivered);
  }
  samples.push(point);
  if (samples.length > KEEP) samples.splice(0, samples.length - KEEP);
}

function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  // Maxima whose quarters read well (0.25, 0.5, 1, 1.5, 2, …).
  for (const step of [1, 2, 4, 6, 8, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function format(v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}

/** An SVG line chart of `lines` (`[{label, points: [[t, v]]}]`) over the sampled period. */
function chart(title, lines, unit) {
  const W = 640;
  const H = 220;
  const left = 48;
  const right = 12;
  const top = 12;
  const bottom = 28;
  const all = lines.flatMap((l) => l.points);
  const t0 = all.length ? Math.min(...all.map((p) => p[0])) : Date.now() - 60000;
  const t1 = all.length ? Math.max(...all.map((p) => p[0]), t0 + 1) : Date.now();
  const vmax = niceMax(Math.max(0, ...all.map((p) => p[1])));
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  const y = (v) => top + (1 - v / vmax) * (H - top - bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = vmax * f;
    return s('g', { class: 'grid' },
      s('line', { x1: left, x2: W - right, y1: y(v), y2: y(v) }),
      s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  });
  const span = Math.round((t1 - t0) / 1000);
  const axis = [
    s('text', { class: 'axis', x: left, y: H - 8 }, span ? `${span} s ago` : ''),
    s('text', { class: 'axis', x: W - right, y: H - 8, 'text-anchor': 'end' }, 'now'),
  ];
  const paths = lines.map((l, i) => {
    if (l.points.length === 1) {
      const [[t, v]] = l.points;
      return s('circle', { class: `point series-${i % 8}`, cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3 });
    }
    return l.points.length > 1
      ? s('polyline', { class: `series series-${i % 8}`, points: l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') })
      : null;
  });
  const latest = lines.map((l) => l.points[l.points.length - 1]?.[1] ?? 0);
  const summary = lines.map((l, i) => `${l.label}: ${format(latest[i])}${unit}`).join(', ');
  const titleId = `chart-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return h('figure', { class: 'chart' },
    h('figcaption', { id: titleId }, title),
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': titleId, 'aria-description': summary || 'no data yet' },
      ...grid, ...axis, ...paths),
    h('ul', { class: 'legend' }, lines.map((l, i) => h('li', {},
      h('span', { class: `swatch series-${i % 8}`, 'aria-hidden': 'true' }),
      `${l.label} `, h('strong', {}, `${format(latest[i])}${unit}`)))));
}

export async function view(el) {
  el.append(header('Metrics', {
    description: `Sampled from this server's /metrics every ${EVERY_MS / 1000} seconds while this page is open.`,
  }));
  const problem = h('div');
  const charts = h('div', { class: 'charts', 'data-testid': 'metrics-charts' });
  const gauges = h('div', { class: 'stat-row' });
  el.append(problem, section('Now', gauges), section('Charts', charts));

  function draw() {
    const last = samples[samples.length - 1];
    if (!last) return;
    gauges.replaceChildren(
      stat('WebSocket connections', last.ws),
      stat('Subscriptions', last.subscriptions),
      stat('Long-polls waiting', last.longpolls),
      stat('Events delivered (total)', last.delivered));
    const rated = samples.filter((p) => p.requestRates);
    const faces = [...new Set(rated.flatMap((p) => Object.keys(p.requestRates)))].sort();
    charts.replaceChildren(
      chart('WebSocket connections', [{ label: 'connections', points: samples.map((p) => [p.at, p.ws]) }], ''),
      chart('HTTP requests per second, by face', faces.map((f) => ({
        label: f, points: rated.map((p) => [p.at, p.requestRates[f] ?? 0]),
      })), '/s'),
      chart('Events delivered per second', [{ label: 'events', points: rated.map((p) => [p.at, p.deliveredRate]) }], '/s'));
  }

  async function tick() {
    try {
      await sample();
      problem.replaceChildren();
    } catch (err) {
      problem.replaceChildren(notice('error', `Cannot read /metrics: ${describeError(err)}`));
    }
    draw();
  }

  await tick();
  const timer = setInterval(tick, EVERY_MS);
  return () => clearInterval(timer);
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-value' }, format(value)), h('span', { class: 'stat-label' }, label));
}
