// The rollout controller's status page (GET / of `turnout rollout`): reads
// GET /v1/rollout every second. The steps as a timeline with the current one
// marked, the weight over time (from the status' own history, so a page
// opened late still sees the whole ramp), the checks against their bounds
// (the current judgement, and per step what this page saw judged), the phase
// and the four commands. The admin token is typed into the page and kept in
// this tab's memory only: never in storage, a cookie or the URL; the page
// itself is read-only, the commands are the token-protected endpoints.

import { pageDocument, type Page } from './document.ts';

const BODY = String.raw`
<header>
  <h1>turnout rollout</h1>
  <span id="phase" class="badge" data-figure="phase"></span>
  <span id="where" class="muted"></span>
  <span id="stale" class="badge down"></span>
</header>
<div class="grid">
  <section class="card wide">
    <h2>Steps</h2>
    <ol class="steps" id="steps"></ol>
    <p class="muted" id="reason"></p>
  </section>
  <section class="card">
    <h2>Now</h2>
    <div class="figures">
      <div class="figure"><div class="v" data-figure="weight" id="weight">–</div><div class="k">green weight</div></div>
      <div class="figure"><div class="v" data-figure="step" id="step">–</div><div class="k">step</div></div>
      <div class="figure"><div class="v" data-figure="failures" id="failures">–</div><div class="k">failures tolerated</div></div>
      <div class="figure"><div class="v" id="judge">–</div><div class="k">next judgement</div></div>
    </div>
  </section>
  <section class="card">
    <h2>Weight over time</h2>
    <svg class="chart" id="chart-weight" role="img" aria-label="green weight over time"></svg>
    <div class="legend" id="legend-weight"></div>
  </section>
  <section class="card">
    <h2>Checks</h2>
    <div class="scroll"><table><thead><tr><th>check</th><th class="n">value</th><th>bound</th><th>result</th></tr></thead><tbody id="checks"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Checks per step</h2>
    <div class="scroll"><table><thead id="per-step-head"></thead><tbody id="per-step"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Routers</h2>
    <div class="scroll"><table><thead><tr><th>router</th><th class="n">weight</th><th>state</th></tr></thead><tbody id="routers"></tbody></table></div>
  </section>
  <section class="card">
    <h2>Commands</h2>
    <form class="controls" id="controls" autocomplete="off">
      <input type="password" id="token" placeholder="admin token" aria-label="admin token" autocomplete="off" spellcheck="false">
      <button type="button" data-command="pause">pause</button>
      <button type="button" data-command="resume">resume</button>
      <button type="button" data-command="promote">promote</button>
      <button type="button" data-command="abort">abort</button>
    </form>
    <p id="answer" class="muted" data-figure="answer" role="status"></p>
  </section>
  <section class="card wide">
    <h2>History</h2>
    <ul class="errors" id="history"></ul>
  </section>
</div>
`;

const SCRIPT = String.raw`
const JUDGED = new Set(['pass', 'fail']);
const JUDGEMENTS = new Set(['passed', 'failed', 'rolled-back']);
/** step → check name → the last judged {value, min, max, result} this page saw at that step. */
const perStep = new Map();
let last;

const bound = (c) => [c.min !== null ? '≥ ' + fmt(c.min, 4) : '', c.max !== null ? '≤ ' + fmt(c.max, 4) : ''].filter(Boolean).join(' ');
const row = (cells) => el('tr', {}, ...cells.map((c) => c instanceof Node ? c : el('td', {}, c)));

function render(s) {
  last = s;
  const phase = $('phase');
  phase.textContent = s.phase;
  phase.className = 'badge ' + (s.phase === 'promoted' ? 'up' : s.phase === 'progressing' ? '' : s.phase === 'paused' ? 'warn' : 'down');
  $('where').textContent = 'step ' + s.step + ' of ' + s.steps.length + ' · ' + fmt(s.weight) + ' % green' + (s.held ? ' · held: ' + s.held : '');
  $('weight').textContent = fmt(s.weight) + ' %';
  $('step').textContent = s.step + '/' + s.steps.length;
  $('failures').textContent = s.failures + '/' + s.failureLimit;
  const judgeIn = s.judgeAt ? Math.max(0, Math.round((Date.parse(s.judgeAt) - Date.now()) / 1000)) : null;
  $('judge').textContent = judgeIn === null || s.phase !== 'progressing' ? '–' : 'in ' + judgeIn + ' s';
  $('reason').textContent = s.reason || '';

  const ended = ['promoted', 'rolled-back', 'aborted'].includes(s.phase);
  fill($('steps'), ...s.steps.map((w, i) => {
    const n = i + 1;
    // Promoted (by its last step or by hand) means weight 100: every step is behind it.
    const state = n < s.step || s.phase === 'promoted' ? 'done' : n === s.step ? 'current' : '';
    return el('li', { class: state, 'aria-current': state === 'current' ? 'step' : undefined, 'data-step': n }, n + '. ' + fmt(w) + ' %');
  }));

  // The checks are those of the last judgement; the history says at which step it was made (the step may have moved on since).
  const judged = [...s.history].reverse().find((h) => JUDGEMENTS.has(h.event));
  if (judged) {
    for (const c of s.checks) {
      if (!JUDGED.has(c.result)) continue;
      if (!perStep.has(judged.step)) perStep.set(judged.step, new Map());
      perStep.get(judged.step).set(c.name, c);
    }
  }
  fill($('checks'), ...(s.checks.length ? s.checks.map((c) => row([c.name, el('td', { class: 'n', 'data-figure': 'check:' + c.name }, c.value === null ? '–' : fmt(c.value, 4)), bound(c),
    el('td', { class: c.result }, c.result + (c.reason ? ' (' + c.reason + ')' : ''))])) : [row(['no checks'])]));
  const names = s.checks.map((c) => c.name);
  fill($('per-step-head'), el('tr', {}, el('th', {}, 'step'), ...names.map((n) => el('th', {}, n))));
  fill($('per-step'), ...s.steps.map((w, i) => {
    const seen = perStep.get(i + 1);
    return row([(i + 1) + ' (' + fmt(w) + ' %)', ...names.map((n) => {
      const c = seen && seen.get(n);
      return c ? el('td', { class: c.result, 'data-figure': 'step-check:' + (i + 1) + ':' + n }, fmt(c.value, 4) + ' ' + bound(c) + ' ' + (c.result === 'pass' ? '✓' : '✗')) : el('td', { class: 'muted' }, '–');
    })]);
  }));

  fill($('routers'), ...s.routers.map((r) => row([r.url, el('td', { class: 'n' }, r.weight === undefined ? '–' : fmt(r.weight)), el('td', { class: r.ok ? 'pass' : 'fail' }, r.ok ? 'confirmed' : (r.error || 'not confirmed'))])));

  // The weight as a step line through the history's transitions, up to now.
  const points = [];
  for (const h of s.history) {
    const t = Date.parse(h.at);
    if (points.length) points.push([t, points[points.length - 1][1]]);
    points.push([t, h.weight]);
  }
  const now = Date.now();
  if (points.length) points.push([now, s.weight]);
  const from = points.length ? Math.min(points[0][0], now - 60000) : now - 60000;
  drawChart($('chart-weight'), $('legend-weight'), [{ name: 'green weight %', color: 'var(--green)', points }], from, now, '%', 100);

  fill($('history'), ...s.history.slice(-50).reverse().map((h) => el('li', {}, el('span', { class: 'muted' }, h.at.slice(11, 19)), ' ', el('b', {}, h.event), ' ', h.detail || '')));
  for (const b of document.querySelectorAll('button[data-command]')) {
    const cmd = b.dataset.command;
    b.disabled = ended || (cmd === 'resume' ? s.phase !== 'paused' : cmd === 'pause' ? s.phase !== 'progressing' : false);
  }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

async function send(cmd) {
  const token = $('token').value;
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  const answer = $('answer');
  answer.className = 'muted';
  answer.textContent = cmd + '…';
  try {
    const res = await fetch('/v1/rollout/' + cmd, { method: 'POST', headers, cache: 'no-store' });
    const body = await res.json().catch(() => ({}));
    answer.className = res.ok ? 'pass' : 'fail';
    answer.textContent = cmd + ': ' + res.status + ' ' + (res.ok ? (body.result || '') + ' (' + body.phase + ')'
      : (body.error || '') + (res.status === 401 ? ' — type the admin token first' : ''));
    answer.dataset.status = String(res.status);
    if (res.ok && last) render(await getJson('/v1/rollout'));
  } catch (err) {
    answer.className = 'fail';
    answer.textContent = cmd + ': ' + (err && err.message ? err.message : String(err));
  }
}
for (const b of document.querySelectorAll('button[data-command]')) b.addEventListener('click', () => send(b.dataset.command));
$('controls').addEventListener('submit', (e) => e.preventDefault());

poll(async () => render(await getJson('/v1/rollout')), 1000);
`;

export const controllerPage: Page = pageDocument({ title: 'turnout rollout', body: BODY, script: SCRIPT });
