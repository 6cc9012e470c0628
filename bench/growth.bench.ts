// How turnout's cost grows (issue 14, item 4): a table to size a sidecar
// with, not a target. One dimension varies at a time from a base cell
// (1 KiB, concurrency 16, 1 source, translation chain 1: the reference's
// 1->2 step), rather than the full cross product, so the run takes minutes:
//
//   payload      1 KiB / 16 KiB / 256 KiB, translated (chain 1) and passed through
//   concurrency  1 / 16 / 256
//   sources      1 / 10 / 50 (messages spread round-robin over them)
//   chain        pass (no translation) / 1 / 3 steps (1->2->3->4)
//
// Each cell runs in its own child process (its peak RSS is its own): turnout
// assembled in-process as the CLI assembles it (Turnout.start on the embedded
// memory broker, as bench/core.bench.ts's turnout cases), fed by a producer
// in the same process that keeps a bounded backlog in the broker (at most
// BACKLOG_BYTES, and at least twice the concurrency). Figures per cell:
//
//   CPU µs/msg   CPU time (user + system) over the measured messages of the
//                child and of its own children, turnout's translation worker
//                processes (src/translate/pool.ts), / their count. It includes
//                the producer's publish() into the embedded broker (a few µs,
//                the same in every cell). Unlike msg/s it barely moves when
//                other load shares the machine (10 ms /proc tick resolution).
//   peak RSS     the child's kernel high-water mark (start-up included); the
//                translation workers' apart (the sum of their high-water
//                marks), since a container limit holds both.
//   msg/s        for information only (the producer's backlog pacing and a
//                shared machine move it).
//
// Every message is accounted for: delivered once, as the version the cell
// must deliver, nothing dead-lettered or left behind; a cell with a problem
// fails the run (exit 1). After the table, notes say where growth is not
// linear in payload size or not flat in sources.
//
// The children run under the image's runtime (bench/lib/runtime.ts): tsc's
// JavaScript, the Dockerfile's node flags and malloc settings.
// BENCH_RUNTIME=host runs the sources with the host's defaults instead.
//
//   node bench/growth.bench.ts [--messages N] [--only payload|concurrency|sources|chain,…] [--out FILE]
//   (--messages: measured messages of a 1 KiB cell, default 20 000; larger
//   payloads get proportionally fewer, at least MIN_MESSAGES)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Message } from '../adapters/broker.ts';
import { MemoryBroker } from '../adapters/memory/index.ts';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/log.ts';
import { Turnout } from '../src/turnout.ts';
import { BenchAppControl, startBenchApp, type WaitAnswer } from './lib/app.ts';
import { emitResult, runChild, type CaseResult } from './lib/child.ts';
import { describeMachine } from './lib/machine.ts';
import { benchPayload, CHAIN_3_YAML, TRANSLATORS_YAML, VERSION_HEADER } from './lib/payload.ts';
import { childrenPeakRssMiB, treeCpuMs } from './lib/proc.ts';
import { RssSampler } from './lib/rss.ts';
import { childNodeArgs, runCompiled } from './lib/runtime.ts';
import { fmt, markdownTable } from './lib/table.ts';

const KiB = 1024;
const MIN_MESSAGES = 500;
/** Bytes the producer lets wait in the embedded broker: a real broker would hold the rest, outside the sidecar. */
const BACKLOG_BYTES = 8 * 1024 * KiB;
const DLQ = 'growth-dlq';

interface Cell {
  dimension: 'base' | 'payload' | 'concurrency' | 'sources' | 'chain';
  payloadKiB: number;
  concurrency: number;
  sources: number;
  /** Translation steps; 0 = pass-through. */
  chain: 0 | 1 | 3;
}

const BASE: Cell = { dimension: 'base', payloadKiB: 1, concurrency: 16, sources: 1, chain: 1 };

function cells(only: string[]): Cell[] {
  const want = (d: string): boolean => only.length === 0 || only.includes(d);
  const out: Cell[] = [BASE];
  if (want('payload')) {
    for (const payloadKiB of [16, 256]) out.push({ ...BASE, dimension: 'payload', payloadKiB });
    for (const payloadKiB of [1, 16, 256]) out.push({ ...BASE, dimension: 'payload', payloadKiB, chain: 0 });
  }
  if (want('concurrency')) for (const concurrency of [1, 256]) out.push({ ...BASE, dimension: 'concurrency', concurrency });
  if (want('sources')) for (const sources of [10, 50]) out.push({ ...BASE, dimension: 'sources', sources });
  if (want('chain')) out.push({ ...BASE, dimension: 'chain', chain: 3 });
  return out;
}

const label = (c: Cell): string => `${c.payloadKiB} KiB, c${c.concurrency}, ${c.sources} src, ${c.chain === 0 ? 'pass' : `chain ${c.chain}`}`;
const key = (c: Cell): string => `${c.payloadKiB}/${c.concurrency}/${c.sources}/${c.chain}`;

/** Measured messages of a cell: fewer for larger payloads (by the square root of the size: enough of them to average over, without hours of 256 KiB), never below MIN_MESSAGES. */
const messagesFor = (c: Cell, base: number): number => Math.max(MIN_MESSAGES, Math.round(base / Math.sqrt(c.payloadKiB)));
/** What the producer lets wait in the broker. */
const backlogFor = (c: Cell): number => Math.max(2 * c.concurrency, Math.min(2000, Math.floor(BACKLOG_BYTES / (c.payloadKiB * KiB))));
/** The version the app must see. */
const deliveredVersion = (c: Cell): string => (c.chain === 0 ? '1' : String(1 + c.chain));

// ---- a cell (child process) ------------------------------------------------------

async function runCell(c: Cell, messages: number, appUrl: string): Promise<CaseResult> {
  const rss = new RssSampler().start();
  const app = new BenchAppControl(new URL(appUrl).origin);
  const dir = mkdtempSync(join(tmpdir(), 'turnout-bench-growth-'));
  const translators = join(dir, 'translators.yaml');
  writeFileSync(translators, c.chain === 3 ? CHAIN_3_YAML : TRANSLATORS_YAML);
  const sources = Array.from({ length: c.sources }, (_, i) => `growth-in-${i}`);
  const { config } = loadConfig({
    broker: 'memory',
    source: sources.join(','),
    dlq: DLQ,
    appUrl,
    accept: c.chain === 0 ? 'all' : deliveredVersion(c),
    translators,
    concurrency: String(c.concurrency),
    // Room for the 256 KiB cell's translated copy (a few bytes larger) and for its translation time: this measures cost, not limits.
    maxMessageBytes: String(4 * 1024 * KiB),
    translateTimeout: '60000',
    port: '0',
    host: '127.0.0.1',
    logLevel: 'silent',
  }, {});
  const broker = new MemoryBroker({ onError: (err) => process.stderr.write(`embedded broker error: ${String(err)}\n`) });
  const turnout = await Turnout.start({ config, logger: createLogger(process.env.BENCH_LOG ?? 'silent', process.stderr), broker });
  const payload = benchPayload(undefined, c.payloadKiB * KiB);
  const backlog = backlogFor(c);
  const problems: string[] = [];
  const publish = async (prefix: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      while (broker.held() >= backlog) await sleep(1);
      const m: Message = { id: `${prefix}-${i}`, payload, headers: { [VERSION_HEADER]: '1' }, contentType: 'application/json' };
      broker.publish(sources[i % sources.length] as string, m).catch((err: unknown) => problems.push(`publish: ${String(err)}`));
    }
  };
  const check = (seen: WaitAnswer, phase: string, n: number): void => {
    if (seen.duplicates > 0) problems.push(`${phase}: ${seen.duplicates} duplicate deliveries`);
    if (seen.stray > 0) problems.push(`${phase}: ${seen.stray} messages of an earlier phase again`);
    const right = seen.versions[deliveredVersion(c)] ?? 0;
    if (right !== n) problems.push(`${phase}: ${right} of ${n} delivered as version ${deliveredVersion(c)} (${JSON.stringify(seen.versions)})`);
  };
  /** Waits for the app to see n messages; gives up at once when one was dead-lettered (it will never arrive). */
  const arrived = async (n: number): Promise<WaitAnswer> => {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const a = await app.waitFor(n, 2000).catch(() => undefined);
      if (a) return a;
      const dead = (await broker.depth(DLQ)).depth;
      if (dead > 0) throw new Error(`${label(c)}: ${dead} messages dead-lettered (first: ${broker.drainQueue(DLQ)[0]?.headers['x-turnout-error'] ?? '?'})`);
      if (Date.now() > deadline) throw new Error(`${label(c)}: the app did not see ${n} messages within 600 s`);
    }
  };
  const warm = Math.max(MIN_MESSAGES, Math.round(messages / 4));
  await app.reset('warm-');
  await publish('warm', warm);
  check(await arrived(warm), 'warm-up', warm);
  await app.reset('run-');
  const cpu0 = treeCpuMs(process.pid);
  const t0 = performance.now();
  await publish('run', messages);
  const seen = await arrived(messages);
  const seconds = (performance.now() - t0) / 1000;
  const cpuMs = treeCpuMs(process.pid) - cpu0;
  const workersRssMiB = childrenPeakRssMiB(process.pid);
  check(seen, 'run', messages);
  const dead = broker.drainQueue(DLQ);
  const result = await turnout.shutdown();
  rmSync(dir, { recursive: true, force: true });
  if (dead.length > 0) problems.push(`${dead.length} messages dead-lettered (first: ${dead[0]?.headers['x-turnout-error'] ?? '?'})`);
  if (!result.clean || result.heldInMemory > 0) problems.push(`messages left behind at shutdown: ${JSON.stringify(result)}`);
  const mem = rss.stop();
  return {
    case: key(c),
    messages,
    perSecond: messages / seconds,
    peakRssMiB: mem.peakMiB,
    extra: { cpuUsPerMsg: (cpuMs * 1000) / messages, workersRssMiB, heapPeakMiB: mem.heapTotalPeakMiB, anonPeakMiB: mem.anonPeakMiB, backlog },
    problems,
  };
}

// ---- the parent ----------------------------------------------------------------------

interface Row {
  cell: Cell;
  r: CaseResult;
}

/** Where growth is not what it should be: linear in payload size, flat in sources. */
function notes(rows: Row[]): string[] {
  const out: string[] = [];
  const cpu = (f: (c: Cell) => boolean): number | undefined => rows.find((x) => f(x.cell))?.r.extra.cpuUsPerMsg;
  const rss = (f: (c: Cell) => boolean): number | undefined => rows.find((x) => f(x.cell))?.r.peakRssMiB;
  for (const chain of [1, 0] as const) {
    const at = (kib: number): number | undefined => cpu((c) => c.payloadKiB === kib && c.concurrency === 16 && c.sources === 1 && c.chain === chain);
    const [a, b, d] = [at(1), at(16), at(256)];
    if (a === undefined || b === undefined || d === undefined) continue;
    // Linear means a fixed cost plus a cost per KiB: both spans then give the same µs per KiB.
    const low = (b - a) / 15;
    const high = (d - b) / 240;
    const what = chain === 0 ? 'pass-through' : 'translated (chain 1)';
    const ratio = high / low;
    const verdict = low <= 0 ? 'not measurable (the 16 KiB cell cost no more than the 1 KiB one)' : ratio > 1.5 ? `NOT linear: each KiB costs ${fmt(ratio, 1)}× more above 16 KiB (superlinear)` : ratio < 1 / 1.5 ? `NOT linear: each KiB costs ${fmt(1 / ratio, 1)}× less above 16 KiB (a fixed per-message cost dominates the small cells)` : 'linear (within ±50 %)';
    out.push(`- payload, ${what}: CPU ${fmt(low, 2)} µs per KiB from 1 to 16 KiB, ${fmt(high, 2)} µs per KiB from 16 to 256 KiB: ${verdict}; peak RSS ${fmt(rss((c) => c.payloadKiB === 1 && c.sources === 1 && c.concurrency === 16 && c.chain === chain), 1)} → ${fmt(rss((c) => c.payloadKiB === 256 && c.chain === chain), 1)} MiB.`);
  }
  const s1 = cpu((c) => c === BASE);
  for (const n of [10, 50]) {
    const s = cpu((c) => c.dimension === 'sources' && c.sources === n);
    if (s1 === undefined || s === undefined) continue;
    const ratio = s / s1;
    out.push(`- sources: ${n} sources cost ${fmt(ratio * 100)} % of 1 source's CPU per message: ${Math.abs(ratio - 1) <= 0.2 ? 'flat (within ±20 %)' : 'NOT flat'}; peak RSS ${fmt(rss((c) => c === BASE), 1)} → ${fmt(rss((c) => c.dimension === 'sources' && c.sources === n), 1)} MiB.`);
  }
  for (const n of [1, 256]) {
    const s = cpu((c) => c.dimension === 'concurrency' && c.concurrency === n);
    if (s1 === undefined || s === undefined) continue;
    out.push(`- concurrency ${n}: ${fmt((s / s1) * 100)} % of concurrency 16's CPU per message (information: at 1 every message pays its own event-loop wake-ups; at 256 more is in flight, the memory it holds shows in RSS).`);
  }
  const c3 = cpu((c) => c.dimension === 'chain' && c.chain === 3);
  const c0 = cpu((c) => c.dimension === 'payload' && c.payloadKiB === 1 && c.chain === 0);
  if (s1 !== undefined && c3 !== undefined && c0 !== undefined) out.push(`- chain: one step costs ${fmt(s1 - c0)} µs per 1 KiB message over pass-through; three steps ${fmt(c3 - c0)} µs (${fmt((c3 - c0) / (s1 - c0), 1)}× one step).`);
  return out;
}

async function parent(base: number, only: string[], out: string | undefined): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  const app = await startBenchApp();
  const rows: Row[] = [];
  const started = Date.now();
  const load = loadavg()[0] ?? 0;
  try {
    for (const cell of cells(only)) {
      const n = messagesFor(cell, base);
      const r = await runChild(script, ['--cell', JSON.stringify(cell), '--messages', String(n), '--app', app.url], childNodeArgs(), {}, 900_000);
      rows.push({ cell, r });
      process.stderr.write(`growth: ${label(cell)}: CPU ${fmt(r.extra.cpuUsPerMsg)} µs/msg, peak RSS ${fmt(r.peakRssMiB, 1)} MiB, ${fmt(r.perSecond)} msg/s${r.problems.length ? `; PROBLEMS: ${r.problems.join('; ')}` : ''}\n`);
    }
  } finally {
    await app.close();
  }
  const table = markdownTable(
    ['varied', 'payload', 'concurrency', 'sources', 'chain', 'messages', 'CPU µs/msg', 'CPU µs/KiB', 'peak RSS MiB', 'workers RSS MiB', 'heap MiB', 'broker backlog', 'msg/s (info)', 'messages'],
    rows.map(({ cell: c, r }) => [
      c.dimension, `${c.payloadKiB} KiB`, c.concurrency, c.sources, c.chain === 0 ? 'pass' : c.chain, fmt(r.messages),
      fmt(r.extra.cpuUsPerMsg), fmt((r.extra.cpuUsPerMsg ?? NaN) / c.payloadKiB, 1), fmt(r.peakRssMiB, 1), r.extra.workersRssMiB ? fmt(r.extra.workersRssMiB, 1) : '–', fmt(r.extra.heapPeakMiB, 1), fmt(r.extra.backlog), fmt(r.perSecond),
      r.problems.length ? `INVALID: ${r.problems.join('; ')}` : 'all accounted for',
    ]),
  );
  const text = [
    `## How cost grows (embedded broker, in-process Turnout)`,
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${describeMachine()}; load average ${load.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}; ${((Date.now() - started) / 1000).toFixed(0)} s. ` +
      `Base cell: 1 KiB, concurrency 16, 1 source, chain 1 (the reference's 1->2 step); one dimension varied at a time. ${fmt(base)} measured messages per 1 KiB cell (fewer for larger payloads, at least ${MIN_MESSAGES}) after a quarter as many warm-up. ` +
      `CPU: the cell's process (turnout and the producer's publish into the embedded broker) and its translation worker processes / measured messages. Peak RSS: the cell's process high-water mark, including the embedded broker's backlog (its column, at most ${BACKLOG_BYTES / KiB / KiB} MiB of payload); the translation workers' apart (sum of their high-water marks).`,
    '',
    table,
    '',
    'Growth:',
    ...notes(rows),
  ].join('\n');
  console.log(text);
  if (out) writeFileSync(out, `${text}\n`);
  return rows.some((x) => x.r.problems.length > 0) ? 1 : 0;
}

// Under the image's runtime unless BENCH_RUNTIME=host (bench/lib/runtime.ts).
const compiled = await runCompiled(import.meta.url);
if (compiled !== undefined) process.exit(compiled);
const { values } = parseArgs({
  options: {
    cell: { type: 'string' },
    app: { type: 'string' },
    messages: { type: 'string', default: '20000' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});
if (values.cell !== undefined) {
  if (values.app === undefined) throw new Error('--cell needs --app URL');
  emitResult(await runCell(JSON.parse(values.cell) as Cell, Number(values.messages), values.app));
  // Pools and timers of the cell must not hold the child open.
  process.exit(0);
} else {
  const only = (values.only ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  process.exitCode = await parent(Number(values.messages), only, values.out);
}
