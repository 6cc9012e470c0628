// The process footprint (issue 14): how fast the real CLI process starts and
// how much memory it holds when idle, as the image runs it (the Dockerfile's
// node flags and malloc settings, V8's heap as sized under a 256 Mi limit:
// bench/lib/runtime.ts), side by side in one run:
//
//   baseline  `node -e` with a bare HTTP server answering /readyz: the floor
//             any Node process with a listening socket pays
//   tsc       tsc's JavaScript, one file per module (what the image shipped
//             before the bundle), npm's node_modules beside it
//   bundle    scripts/bundle.ts's output (what the image ships now): no
//             node_modules at all
//   consumer  the bundle in the consumer role (TURNOUT_APP_URL, which also
//             loads undici), for information: the targets are the router's
//
// Each start is the router role on the embedded broker (TURNOUT_SOURCE,
// TURNOUT_BLUE/GREEN, TURNOUT_DLQ). Measured per start: the time from spawn()
// to the first 200 on GET /readyz (polled every 2 ms), and the resident set
// IDLE seconds after that (VmRSS, split into anonymous and file-backed pages
// by /proc/PID/smaps_rollup), plus the CPU time the process had used when it
// became ready. The variants take turns, start after start, so a change of
// load on a shared machine hits them alike; medians are reported. RSS figures
// mean something on a busy machine; start times do not (they measure the
// scheduler as much as turnout), and CPU time is the better guide there
// (the target is on the start time all the same).
//
//   node bench/startup.bench.ts [--starts N] [--idle-seconds S] [--only baseline,tsc,bundle,consumer]
//
// Exit status: 0 when the bundle meets both targets, 1 otherwise.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundle } from '../scripts/bundle.ts';
import { freePort } from '../test/support/ports.ts';
import { describeMachine } from './lib/machine.ts';
import { compileTree, IMAGE_ENV, IMAGE_NODE_ARGS } from './lib/runtime.ts';
import { fmt, markdownTable } from './lib/table.ts';

const TARGETS = {
  /** Idle RSS of the bundled CLI, IDLE seconds after /readyz first answered 200. */
  maxIdleRssMiB: 64,
  /** Start to the first /readyz 200, bundled CLI (router role, embedded broker). */
  maxStartMs: 250,
} as const;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    starts: { type: 'string', default: '7' },
    'idle-seconds': { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const STARTS = Number(opts.starts);
const IDLE_MS = Number(opts['idle-seconds']) * 1000;
if (!(STARTS >= 1) || !(IDLE_MS >= 0)) throw new Error('--starts must be ≥ 1 and --idle-seconds ≥ 0');

/** The router role on the embedded broker: consumes one source, routes to blue/green. */
const ROUTER_ENV: Record<string, string> = {
  TURNOUT_BROKER: 'memory',
  TURNOUT_SOURCE: 'orders',
  TURNOUT_BLUE: 'orders.blue',
  TURNOUT_GREEN: 'orders.green',
  TURNOUT_DLQ: 'orders.dlq',
  TURNOUT_HOST: '127.0.0.1',
  TURNOUT_LOG_LEVEL: 'info',
};

const BASELINE = `require('node:http').createServer((q,s)=>s.end('{"status":"ready"}')).listen(Number(process.env.TURNOUT_PORT),'127.0.0.1')`;

interface Variant {
  name: string;
  what: string;
  argv: string[];
  env?: Record<string, string>;
}

interface Start {
  startMs: number;
  /** CPU time (user + system) the process had used when /readyz first answered 200. */
  cpuMs: number;
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
}

function status(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** utime + stime of a process, ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function memoryOf(pid: number): Omit<Start, 'startMs' | 'cpuMs'> {
  const kib = (text: string, field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const rss = kib(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
  const anon = kib(rollup, 'Anonymous');
  return { rssMiB: rss / 1024, anonMiB: anon / 1024, fileMiB: (kib(rollup, 'Rss') - anon) / 1024 };
}

async function startOnce(v: Variant): Promise<Start> {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [...IMAGE_NODE_ARGS, ...v.argv], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...IMAGE_ENV, ...ROUTER_ENV, ...v.env, TURNOUT_PORT: String(port) },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 30_000;
    while ((await status(port)) !== 200) {
      if (child.exitCode !== null) throw new Error(`${v.name} exited ${child.exitCode} before /readyz answered 200:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`${v.name}: /readyz not 200 within 30 s`);
      await sleep(2);
    }
    const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpuMs = cpuMsOf(child.pid!);
    await sleep(IDLE_MS);
    if (child.pid === undefined || child.exitCode !== null) throw new Error(`${v.name} ended while idle:\n${stderr}`);
    return { startMs, cpuMs, ...memoryOf(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  const bundleDir = mkdtempSync(join(ROOT, '.cache', 'bench-bundle-'));
  const cleanups: (() => void)[] = [() => rmSync(bundleDir, { recursive: true, force: true })];
  try {
    const only = opts.only?.split(',');
    const wanted = (name: string): boolean => only === undefined || only.includes(name);
    const variants: Variant[] = [];
    if (wanted('baseline')) variants.push({ name: 'baseline', what: '`node -e` bare HTTP server', argv: ['-e', BASELINE] });
    if (wanted('tsc')) {
      const tree = compileTree();
      cleanups.push(tree.cleanup);
      variants.push({ name: 'tsc', what: 'tsc output, node_modules', argv: [tree.js(join(ROOT, 'src/cli.ts')), 'run'] });
    }
    if (wanted('bundle')) {
      process.stderr.write('bench: bundling with esbuild…\n');
      await bundle(bundleDir);
      variants.push({ name: 'bundle', what: 'esbuild bundle (the image)', argv: [join(bundleDir, 'cli.js'), 'run'] });
    }
    if (wanted('consumer')) {
      // For information: the consumer role also loads undici, the app's HTTP client (the app here only accepts connections).
      const app = createServer((_, res) => res.end()).listen(0, '127.0.0.1');
      await once(app, 'listening');
      cleanups.push(() => app.close());
      const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/`;
      if (!existsSync(join(bundleDir, 'cli.js'))) await bundle(bundleDir);
      variants.push({ name: 'consumer', what: 'the bundle, consumer role (info)', argv: [join(bundleDir, 'cli.js'), 'run'], env: { TURNOUT_APP_URL: appUrl } });
    }
    if (variants.length === 0) throw new Error(`--only ${opts.only}: no such variant (baseline, tsc, bundle, consumer)`);

    process.stderr.write(`bench: ${STARTS} starts per variant, idle RSS ${IDLE_MS / 1000} s after ready\n`);
    const results = new Map<string, Start[]>(variants.map((v) => [v.name, []]));
    for (let i = 0; i < STARTS; i++) {
      for (const v of variants) {
        const s = await startOnce(v);
        results.get(v.name)!.push(s);
        process.stderr.write(`bench: ${v.name} #${i + 1}: ready in ${fmt(s.startMs)} ms (${fmt(s.cpuMs)} ms CPU), idle RSS ${fmt(s.rssMiB, 1)} MiB\n`);
      }
    }

    const rows = variants.map((v) => {
      const r = results.get(v.name)!;
      return [v.name, v.what, fmt(median(r.map((x) => x.startMs))), `${fmt(Math.min(...r.map((x) => x.startMs)))}–${fmt(Math.max(...r.map((x) => x.startMs)))}`, fmt(median(r.map((x) => x.cpuMs))), fmt(median(r.map((x) => x.rssMiB)), 1), fmt(median(r.map((x) => x.anonMiB)), 1), fmt(median(r.map((x) => x.fileMiB)), 1)];
    });
    process.stdout.write(`\n## Start-up and idle footprint (router role, embedded broker)\n\n${describeMachine()}; ${STARTS} starts each, node ${IMAGE_NODE_ARGS.join(' ')}\n\n`);
    process.stdout.write(markdownTable(['variant', 'what', 'start → /readyz 200, median ms', 'range ms', 'CPU until ready, median ms', `idle RSS +${IDLE_MS / 1000} s, median MiB`, 'anonymous MiB', 'file-backed MiB'], rows));
    process.stdout.write('\n');

    const b = results.get('bundle');
    if (b === undefined) return 0;
    const misses: string[] = [];
    const rss = median(b.map((x) => x.rssMiB));
    const start = median(b.map((x) => x.startMs));
    if (rss > TARGETS.maxIdleRssMiB) misses.push(`bundle idle RSS ${fmt(rss, 1)} MiB > ${TARGETS.maxIdleRssMiB} MiB`);
    if (start > TARGETS.maxStartMs) misses.push(`bundle start ${fmt(start)} ms > ${TARGETS.maxStartMs} ms (start times on a busy machine are not meaningful)`);
    for (const m of misses) process.stdout.write(`target missed: ${m}\n`);
    if (misses.length === 0) process.stdout.write(`targets met: idle RSS ≤ ${TARGETS.maxIdleRssMiB} MiB, start ≤ ${TARGETS.maxStartMs} ms\n`);
    return misses.length === 0 ? 0 : 1;
  } finally {
    for (const c of cleanups.reverse()) c();
  }
}

process.exitCode = await main();
