// The sidecar's status page (GET /): reads GET /v1/status every second and
// shows it. Rates and the chart's history (the last five minutes) are
// computed in the browser from the counters' differences between two reads,
// so the sidecar keeps nothing for the page and does no work while nobody
// looks. Elements carrying figures have a data-figure attribute (the browser
// tests read them).

import { pageDocument, type Page } from './document.ts';

const BODY = String.raw`
<header>
  <h1>turnout <span id="role" class="muted"></span></h1>
  <span id="broker" class="badge"></span>
  <span id="ready" class="badge"></span>
  <span id="uptime" class="muted"></span>
  <span id="stale" class="badge down"></span>
</header>
<div class="grid">
  <section class="card">
    <h2>Now</h2>
    <div class="figures">
      <div class="figure"><div class="v" data-figure="weight" id="weight">–</div><div class="k">green weight <span id="weight-source"></span></div></div>
      <div class="figure"><div class="v" data-figure="inflight" id="inflight">–</div><div class="k">in flight</div></div>
      <div class="figure"><div class="v" data-figure="deferred-waiting" id="deferred-waiting">–</div><div class="k">deferrals waiting</div></div>
      <div class="figure"><div class="v" data-figure="p50" id="p50">–</div><div class="k">delivery p50</div></div>
      <div class="figure"><div class="v" data-figure="p99" id="p99">–</div><div class="k">delivery p99</div></div>
      <div class="figure"><div class="v" data-figure="received" id="received">–</div><div class="k">received</div></div>
      <div class="figure"><div class="v" data-figure="delivered" id="delivered">–</div><div class="k">delivered</div></div>
      <div class="figure"><div class="v" data-figure="dead-lettered" id="dead-lettered">–</div><div class="k">dead-lettered</div></div>
    </div>
  </section>
  <section class="card">
    <h2>Where messages go</h2>
    <dl id="where"></dl>
  </section>
  <section class="card">
    <h2>Messages per second by color</h2>
    <svg class="chart" id="chart-color" role="img" aria-label="messages per second routed to blue and green"></svg>
    <div class="legend" id="legend-color"></div>
  </section>
  <section class="card">
    <h2>Messages per second by version</h2>
    <svg class="chart" id="chart-version" role="img" aria-label="messages per second received by schema version"></svg>
    <div class="legend" id="legend-version"></div>
  </section>
  <section class="card">
    <h2>Received by version</h2>
    <div class="scroll"><table><thead><tr><th>version</th><th class="n">total</th><th class="n">per second</th></tr></thead><tbody id="versions"></tbody></table></div>
    <h2>Routed by color</h2>
    <div class="scroll"><table><thead><tr><th>color</th><th class="n">total</th><th class="n">per second</th></tr></thead><tbody id="colors"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Dead-letters by reason</h2>
    <div class="scroll"><table><thead><tr><th>reason</th><th class="n">messages</th></tr></thead><tbody id="dead"></tbody></table></div>
    <h2>Deferrals by version</h2>
    <div class="scroll"><table><thead><tr><th>version</th><th class="n">times</th></tr></thead><tbody id="deferrals"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Queues</h2>
    <div class="scroll"><table><thead><tr><th>queue</th><th class="n">ready</th><th class="n">in flight</th><th class="n">deferred</th></tr></thead><tbody id="queues"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Translator steps</h2>
    <div class="scroll"><table><thead><tr><th>step</th><th>engine</th><th class="n">translated</th></tr></thead><tbody id="steps"></tbody></table></div>
    <div class="muted" id="digest"></div>
  </section>
  <section class="card wide">
    <h2>Recent errors</h2>
    <ul class="errors" id="errors"></ul>
  </section>
</div>
`;

const SCRIPT = String.raw`
const WINDOW_MS = 5 * 60 * 1000;
const COLORS = { blue: 'var(--blue)', green: 'var(--green)' };
const history = { color: new Map(), version: new Map() };
let previous;
let opened;

const sumBy = (rows, key) => {
  const out = new Map();
  for (const r of rows) out.set(r[key], (out.get(r[key]) || 0) + r.value);
  return out;
};
const total = (rows) => rows.reduce((n, r) => n + r.value, 0);
/** Per-second rate of every key between the previous read and this one, appended to its series. */
function remember(series, now, counts, before, seconds) {
  for (const [key, value] of counts) {
    if (!series.has(key)) series.set(key, []);
    if (before !== undefined && seconds > 0) series.get(key).push([now, Math.max(0, (value - (before.get(key) || 0)) / seconds)]);
  }
  for (const points of series.values()) while (points.length && points[0][0] < now - WINDOW_MS) points.shift();
}
const rateOf = (series, key) => {
  const p = series.get(key);
  return p && p.length ? p[p.length - 1][1] : null;
};
const row = (cells) => el('tr', {}, ...cells.map((c) => c instanceof Node ? c : el('td', {}, c)));
const num = (v, figure) => el('td', { class: 'n', 'data-figure': figure }, fmt(v, 0));
const queueName = (q) => el('td', {}, q.queue, el('span', { class: 'muted sub' }, q.as));
const empty = (cols, text) => el('tr', {}, el('td', { colspan: cols, class: 'muted' }, text));

function render(s) {
  const now = Date.parse(s.at) || Date.now();
  if (opened === undefined) opened = now;
  const versions = sumBy(s.counters.received, 'version');
  const colors = new Map([['blue', s.counters.routed.blue], ['green', s.counters.routed.green]]);
  const seconds = previous ? (now - previous.now) / 1000 : 0;
  remember(history.color, now, colors, previous && previous.colors, seconds);
  remember(history.version, now, versions, previous && previous.versions, seconds);
  previous = { now, colors, versions };

  $('role').textContent = s.role;
  const broker = $('broker');
  broker.textContent = s.broker + (s.brokerUp ? ' · connected' : ' · not connected');
  broker.className = 'badge ' + (s.brokerUp ? 'up' : 'down');
  const ready = $('ready');
  ready.textContent = s.ready ? 'ready' : 'not ready: ' + s.readyReason;
  ready.className = 'badge ' + (s.ready ? 'up' : 'warn');
  $('uptime').textContent = 'up ' + fmt(s.uptimeSeconds, 0) + ' s';

  $('weight').textContent = fmt(s.weight) + ' %';
  $('weight-source').textContent = '(' + s.weightSource + ')';
  $('inflight').textContent = fmt(s.inflight, 0);
  const waiting = s.queues.filter((q) => q.as === 'source').reduce((n, q) => n + (q.deferred || 0), 0);
  $('deferred-waiting').textContent = fmt(waiting, 0);
  $('p50').textContent = ms(s.latency.p50);
  $('p99').textContent = ms(s.latency.p99);
  $('received').textContent = fmt(total(s.counters.received), 0);
  $('delivered').textContent = fmt(total(s.counters.delivered), 0);
  $('dead-lettered').textContent = fmt(total(s.counters.deadLettered), 0);

  const where = [['sources', s.sources.join(', ') || '(none: publish only)'], ['app', s.targets.app], ['blue', s.targets.blue], ['green', s.targets.green],
    ['dead-letters', s.targets.dlq || "the broker's own"], ['accepts', s.accept === 'all' ? 'all versions' : s.accept.map((v) => 'v' + v).join(', ')]];
  fill($('where'), ...where.filter(([, v]) => v !== null).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));

  const colorSeries = [...history.color].map(([name, points]) => ({ name, color: COLORS[name] || PALETTE[0], points }));
  // The last five minutes, or since the page opened (at least a minute): a short burst stays readable.
  const from = Math.max(now - WINDOW_MS, Math.min(opened, now - 60000));
  drawChart($('chart-color'), $('legend-color'), colorSeries, from, now, 'msg/s');
  const versionSeries = [...history.version].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([name, points], i) => ({ name: /^\d+$/.test(name) ? 'v' + name : name, color: PALETTE[i % PALETTE.length], points }));
  drawChart($('chart-version'), $('legend-version'), versionSeries, from, now, 'msg/s');

  fill($('versions'), ...(versions.size ? [...versions].map(([v, n]) => row([/^\d+$/.test(v) ? 'v' + v : v, num(n, 'received:' + v), el('td', { class: 'n' }, fmt(rateOf(history.version, v), 1))]))
    : [empty(3, 'nothing received yet')]));
  fill($('colors'), ...[...colors].map(([c, n]) => row([c, num(n, 'routed:' + c), el('td', { class: 'n' }, fmt(rateOf(history.color, c), 1))])));
  const reasons = sumBy(s.counters.deadLettered, 'reason');
  fill($('dead'), ...(reasons.size ? [...reasons].map(([r, n]) => row([r, num(n, 'dead:' + r)])) : [empty(2, 'none')]));
  const deferrals = sumBy(s.counters.deferred, 'version');
  fill($('deferrals'), ...(deferrals.size ? [...deferrals].map(([v, n]) => row(['v' + v, num(n, 'deferred:' + v)])) : [empty(2, 'none')]));
  fill($('queues'), ...(s.queues.length ? s.queues.map((q) => q.error
    ? row([queueName(q), el('td', { colspan: 3, class: 'muted' }, q.error)])
    : row([queueName(q), num(q.depth, 'depth:' + q.queue), num(q.inflight, 'queue-inflight:' + q.queue), el('td', { class: 'n', 'data-figure': 'queue-deferred:' + q.queue }, q.deferred === null ? '–' : fmt(q.deferred, 0))]))
    : [empty(4, 'no queues')]));
  const translated = new Map(s.counters.translated.map((t) => [t.from + '->' + t.to, t.value]));
  fill($('steps'), ...(s.translators.steps.length ? s.translators.steps.map((t) => row([t.step, el('td', { 'data-figure': 'engine:' + t.step }, t.engine), el('td', { class: 'n' }, fmt(translated.get(t.step) || 0, 0))]))
    : [empty(3, 'no translators file')]));
  $('digest').textContent = s.translators.steps.length ? s.translators.digest.slice(0, 19) + '…' : '';
  fill($('errors'), ...(s.errors.length ? s.errors.map((e) => el('li', {}, el('span', { class: e.level === 'warn' ? 'pending' : 'fail' }, e.level), ' ',
    el('span', { class: 'muted' }, e.at.slice(11, 19)), ' ', e.msg + (e.reason ? ' (' + e.reason + ')' : '') + (e.error ? ': ' + e.error : ''),
    e.id ? el('span', { class: 'muted' }, ' · ' + e.id + (e.source ? ' from ' + e.source : '')) : '')) : [el('li', { class: 'muted' }, 'none')]));
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

poll(async () => render(await getJson('/v1/status')), 1000);
`;

export const sidecarPage: Page = pageDocument({ title: 'turnout sidecar', body: BODY, script: SCRIPT });
