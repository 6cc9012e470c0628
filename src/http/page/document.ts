// The status pages' shared parts: the HTML document around a page, its
// stylesheet (narrow windows, dark mode), the small script library both pages
// use (DOM building with textContent only, number formats, an SVG line chart,
// polling), and the headers a page is served with. Everything is text in
// TypeScript modules, so the pages ship in any build or bundle of turnout
// without copying files; nothing is fetched from elsewhere.
//
// The Content-Security-Policy allows exactly the page's own inline style and
// script (by their sha256) and requests to the process itself: a queue name
// or an error text shown on the page can never run as code.

import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

const CSS = String.raw`
:root { color-scheme: light dark; --bg: #f7f7f5; --fg: #1d1d1f; --muted: #6b6b70; --card: #ffffff; --line: #dcdcdf;
  --blue: #2563eb; --green: #16a34a; --bad: #dc2626; --warn: #b45309; --ok: #15803d; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111214; --fg: #e8e8ea; --muted: #9a9aa2; --card: #1b1c1f; --line: #33343a;
    --blue: #60a5fa; --green: #4ade80; --bad: #f87171; --warn: #fbbf24; --ok: #4ade80; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 12px; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: baseline; margin-bottom: 10px; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; margin: 0 0 6px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.grid { display: grid; gap: 10px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 320px), 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.wide { grid-column: 1 / -1; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(110px, 1fr)); gap: 8px; }
.figure .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure .k { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; border: 1px solid var(--line); font-size: 12px; }
.up { color: var(--ok); border-color: var(--ok); } .down { color: var(--bad); border-color: var(--bad); } .warn { color: var(--warn); border-color: var(--warn); }
.muted { color: var(--muted); } .sub { display: block; font-size: 11px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.n, th.n { text-align: right; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
svg.chart { width: 100%; height: 180px; display: block; }
svg.chart text { fill: var(--muted); font-size: 10px; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart polyline { fill: none; stroke-width: 2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
ul.errors { list-style: none; margin: 0; padding: 0; max-height: 220px; overflow-y: auto; }
ul.errors li { padding: 3px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
.steps { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0; padding: 0; }
.steps li { padding: 4px 10px; border-radius: 6px; border: 1px solid var(--line); font-variant-numeric: tabular-nums; }
.steps li.done { border-color: var(--ok); color: var(--ok); }
.steps li.current { border-color: var(--blue); color: var(--blue); font-weight: 700; box-shadow: 0 0 0 2px var(--blue) inset; }
.pass { color: var(--ok); } .fail { color: var(--bad); } .pending, .no-data { color: var(--warn); }
form.controls { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
input, button { font: inherit; padding: 4px 10px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
button { cursor: pointer; } button:disabled { opacity: .5; cursor: default; }
#stale { display: none; } #stale.on { display: inline-block; }
`;

/** Helpers both pages' scripts use; defined at the top of each page's script. */
const LIB = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
/** An element with attributes and children; text goes in as text, never as HTML. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const fill = (target, ...children) => target.replaceChildren(...children);
const fmt = (n, digits) => (n === null || n === undefined || Number.isNaN(n)) ? '–'
  : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 2 : digits });
const ms = (seconds) => seconds === null || seconds === undefined ? '–' : (seconds * 1000 < 10 ? fmt(seconds * 1000, 2) : fmt(seconds * 1000, 0)) + ' ms';
const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}
const PALETTE = ['#f59e0b', '#8b5cf6', '#ec4899', '#14b8a6', '#ef4444', '#64748b'];
/** Draws series [{name, color, points: [[ms, value]]}] over the window [from, to] into an <svg class="chart">; the y axis up to fixedMax, else the data's. */
function drawChart(target, legend, series, from, to, unit, fixedMax) {
  const w = Math.max(200, target.clientWidth || 600), h = 180, left = 44, right = 8, top = 8, bottom = 18;
  target.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  let max = 0;
  for (const s of series) for (const p of s.points) max = Math.max(max, p[1]);
  max = fixedMax || (max <= 0 ? 1 : max * 1.1);
  const x = (t) => left + (w - left - right) * ((t - from) / Math.max(1, to - from));
  const y = (v) => top + (h - top - bottom) * (1 - v / max);
  const parts = [];
  for (const f of [0, 0.5, 1]) {
    parts.push(svg('line', { class: 'grid', x1: left, x2: w - right, y1: y(max * f), y2: y(max * f) }));
    const label = svg('text', { x: left - 4, y: y(max * f) + 3, 'text-anchor': 'end' });
    label.textContent = fmt(max * f, max < 10 ? 1 : 0);
    parts.push(label);
  }
  const span = svg('text', { x: left, y: h - 4 });
  span.textContent = '−' + Math.round((to - from) / 1000) + ' s';
  const now = svg('text', { x: w - right, y: h - 4, 'text-anchor': 'end' });
  now.textContent = 'now' + (unit ? ' (' + unit + ')' : '');
  parts.push(span, now);
  for (const s of series) {
    if (s.points.length === 0) continue;
    const line = svg('polyline', { points: s.points.map((p) => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' ') });
    line.style.stroke = s.color; // through CSSOM, so CSS variables apply (the CSP allows no style attribute)
    parts.push(line);
  }
  target.replaceChildren(...parts);
  target.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
  if (legend) {
    fill(legend, ...series.map((s) => {
      const swatch = el('i');
      swatch.style.background = s.color;
      const last = s.points.length ? s.points[s.points.length - 1][1] : null;
      return el('span', {}, swatch, s.name + ' ' + fmt(last, 1));
    }));
  }
}
/** Calls load() every everyMs; marks the page stale while it fails. */
function poll(load, everyMs) {
  const stale = $('stale');
  const tick = async () => {
    try {
      await load();
      stale.classList.remove('on');
    } catch (err) {
      stale.textContent = 'not updating: ' + (err && err.message ? err.message : String(err));
      stale.classList.add('on');
    }
    setTimeout(tick, everyMs);
  };
  tick();
}
async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  if (!res.ok) throw new Error(path + ' answered ' + res.status);
  return res.json();
}
`;

export interface Page {
  html: string;
  csp: string;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** A whole page: the shared style and library around the page's body and script. */
export function pageDocument(o: { title: string; body: string; script: string }): Page {
  const script = `${LIB}\n${o.script}`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${o.title}</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
${o.body}
<script>${script}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(CSS)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

/** Sends a page: never cached (it is live), never framed, its script and style pinned by the CSP. */
export function sendPage(res: ServerResponse, page: Page): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(page.html),
    'content-security-policy': page.csp,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(page.html);
}
