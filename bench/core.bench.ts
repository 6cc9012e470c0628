// The core benchmark (issue 2, performance): turnout against plain baselines,
// side by side in one run.
//
//   (a) gate decision + translation of a 1 KiB JSON message, bytes → bytes,
//       in-process, on the compiled path turnout runs (translate/fast.ts:
//       parse, compiled step, serialise), against jsonata(expr).evaluate()
//       on the already-parsed object; target ≥ 200 %. An info row shows the
//       reference evaluator doing the same bytes → bytes (what the workers run).
//   (b) embedded broker → turnout → HTTP app on loopback, against undici
//       POSTing the same messages straight to the same app with the same
//       concurrency: throughput, and latency at a paced 1 000 msg/s. The
//       translated case (1→2, through the compiled step: it checks that no
//       message went to the worker pool) against pass-through: ≥ 70 %. An
//       info row runs the identity step `$` the same way: parsing and
//       serialising alone, the ceiling of that ratio on this path. The
//       baseline uses request(), the API an app would; a reference row uses
//       dispatch(), the lower-level API turnout's AppClient uses, to show
//       turnout's cost over the cheapest undici client too; an info row
//       feeds dispatch() from the embedded broker without turnout's
//       pipeline, splitting that cost into broker and pipeline.
//
// The parent process hosts the app and runs every case in a child process
// (`node core.bench.js --case NAME --app URL`) so each case's peak RSS is its
// own. The (b) cases run in alternating passes (baseline, turnout, baseline,
// turnout…) and their figures are pooled, so a load change on a shared
// machine hits both sides alike. Targets live here, never in unit tests.
//
// The children run what the image runs: the esbuild bundle
// (scripts/bundle.ts, built into .cache/ first, with this benchmark as one
// more entry point beside the image's cli.js and worker.js), not the .ts
// sources — Node's type stripping alone adds ~18 MiB RSS. --build=tsc runs
// tsc's one-file-per-module output instead, as the image did before. And V8 sizes its heap from the memory it sees: on a 24 GiB
// host it lets the young generation grow to 64 MiB and garbage pile up to
// ~300 MiB RSS even in the bare undici baseline, while in the sidecar's
// container (k8s manifests: 256 Mi limit) Node sizes it from the cgroup
// limit. --heap=container (the default) gives every child, baseline and
// turnout alike, the heap V8 derives for 256 MiB plus the image's node flags
// and malloc settings (IMAGE_NODE_ARGS, IMAGE_ENV); --heap=host
// leaves V8's and glibc's defaults for this machine.
//
//   node bench/core.bench.ts [--only a|b|CASE,…] [--heap=container|host] [--from-source] [--build=bundle|tsc]
//                            [--child-node-args="--cpu-prof --cpu-prof-dir=DIR"]
//
// Exit status: 0 every target met, 1 a target missed or a message went astray.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import jsonata from 'jsonata';
import { Pool } from 'undici';
import type { Message } from '../adapters/broker.ts';
import { MemoryBroker } from '../adapters/memory/index.ts';
import { loadConfig } from '../config/load.ts';
import { decide } from '../src/gate.ts';
import { createLogger } from '../lib/log.ts';
import { FastTranslator } from '../src/translate/fast.ts';
import { parseTranslators, translate, type Chain } from '../src/translators.ts';
import { Turnout } from '../src/turnout.ts';
import { BenchAppControl, ID_HEADER, SENT_HEADER, startBenchApp, type WaitAnswer } from './lib/app.ts';
import { emitResult, runChild, type CaseResult } from './lib/child.ts';
import { startCli } from './lib/cli-process.ts';
import { LatencyRecorder } from './lib/latency.ts';
import { describeMachine } from './lib/machine.ts';
import { monoNs, paced } from './lib/pace.ts';
import { benchPayload, STEP_1_TO_2, TRANSLATORS_YAML, VERSION_HEADER } from './lib/payload.ts';
import { RssSampler, type RssReport } from './lib/rss.ts';
import { compileTree, IMAGE_ENV, IMAGE_NODE_ARGS } from './lib/runtime.ts';
import { fmt, markdownTable, type Cell } from './lib/table.ts';

// ---- fixed parameters --------------------------------------------------------

const TARGETS = {
  /** (a) the compiled gate + translate, bytes → bytes, as a share of jsonata evaluate() on the parsed object. */
  minCompiledTranslateRatio: 2,
  /** (b) turnout's throughput as a share of the direct-POST baseline's. */
  minThroughputRatio: 0.7,
  /** (b) turnout's pass-through throughput as a share of the undici dispatch() reference's (issue 14). */
  minReferenceRatio: 0.9,
  /** (b) turnout's throughput translating 1→2 (compiled) as a share of its pass-through throughput. */
  minTranslatedVsPassRatio: 0.7,
  /** (b) p99 end-to-end latency turnout adds at 1 000 msg/s, in every pass (issue 14). */
  maxAddedP99Ms: 1,
  /** Peak RSS of the turnout process under full load (issue 14). */
  maxRssMiB: 100,
} as const;

const CONCURRENCY = 16;
const A_WARMUP = 5_000;
const A_MESSAGES = 30_000;
/** Alternating passes of the (b) cases. */
const B_PASSES = 2;
const B_WARMUP = 3_000;
const B_MESSAGES = 20_000;
/** Timed rounds per throughput child. */
const B_ROUNDS = 2;
/** Messages the producer keeps waiting in the embedded broker, as a broker would hold the rest. */
const B_BACKLOG = 2_000;
const PACE_RATE = 1_000;
const PACE_WARMUP = 1_000;
/** Per pass; B_PASSES × this are pooled per case. */
const PACE_MESSAGES = 2_500;

const SOURCE = 'bench-in';
const DLQ = 'bench-dlq';
const PAYLOAD = benchPayload();
/** A 1->2 step that changes nothing: what parsing and serialising alone cost (compiled, like the reference's step). */
const IDENTITY_YAML = '"1->2": "$"\n';

// ---- cases (each runs in its own child process) ------------------------------

type CaseFn = (app: BenchAppControl, appUrl: string) => Promise<CaseResult>;

const CASES: Record<string, CaseFn> = {
  'translate-jsonata': async () => measureTranslate('translate-jsonata', () => {
    const expr = jsonata(STEP_1_TO_2);
    const parsed: unknown = JSON.parse(PAYLOAD.toString('utf8'));
    return async () => {
      await expr.evaluate(parsed);
    };
  }),

  // What turnout runs per translated message: the gate, then the fast path with the compiled step.
  'translate-turnout': async () => measureTranslate('translate-turnout', (problems) => {
    const set = parseTranslators(TRANSLATORS_YAML, 'bench');
    if (set.steps.some((s) => s.engine !== 'compiled')) problems.push(`a bench step is not compiled: ${set.steps.map((s) => s.fallback).join('; ')}`);
    // The reference path must not be taken: a message that reaches it is a problem.
    let handedOver = 0;
    // The pool's stand-in gets the chains it is handed (this set's Chains, or their tails: steps of the same set).
    const fast = new FastTranslator({ translate: async (chain, payload) => (handedOver++, translate(chain as Chain, payload)) }, { timeoutMs: 1000, maxBytes: 262_144 });
    const gate = { versionHeader: VERSION_HEADER, defaultVersion: 1, accept: [2] };
    const headers = { [VERSION_HEADER]: '1' };
    return {
      op: async () => {
        const d = decide(headers, gate, set);
        if (d.kind !== 'translate') throw new Error(`gate decided ${d.kind}, expected translate`);
        await fast.translate(d.chain, PAYLOAD);
      },
      done: () => void (handedOver > 0 && problems.push(`${handedOver} translations left the compiled path`)),
    };
  }),

  // The same bytes → bytes on the reference evaluator, in this thread (what a worker runs, without the IPC).
  'translate-reference': async () => measureTranslate('translate-reference', () => {
    const set = parseTranslators(TRANSLATORS_YAML, 'bench');
    const gate = { versionHeader: VERSION_HEADER, defaultVersion: 1, accept: [2] };
    const headers = { [VERSION_HEADER]: '1' };
    return async () => {
      const d = decide(headers, gate, set);
      if (d.kind !== 'translate') throw new Error(`gate decided ${d.kind}, expected translate`);
      await translate(d.chain, PAYLOAD);
    };
  }),

  'http-direct': async (app, appUrl) => clientThroughput('http-direct', app, directPoster(appUrl)),
  'http-dispatch': async (app, appUrl) => clientThroughput('http-dispatch', app, dispatchPoster(appUrl)),
  'broker-dispatch': brokerDispatch,

  'turnout-pass': async (app, appUrl) => turnoutThroughput('turnout-pass', app, appUrl, 'all'),
  'turnout-translate': async (app, appUrl) => turnoutThroughput('turnout-translate', app, appUrl, '2'),
  // The floor under any translation on this path: the identity step `$` still parses the payload and serialises the result.
  'turnout-translate-identity': async (app, appUrl) => turnoutThroughput('turnout-translate-identity', app, appUrl, '2', IDENTITY_YAML),

  'turnout-cli': async (app, appUrl) => {
    const { dir, file: translatorsFile } = translatorsFileInTemp();
    const cli = await startCli({ appUrl, source: SOURCE, dlq: DLQ, accept: 'all', concurrency: CONCURRENCY, translatorsFile, backlog: B_BACKLOG });
    const problems: string[] = [];
    const headers = { [VERSION_HEADER]: '1', 'content-type': 'application/json' };
    const run = await throughput(app, problems, (prefix, n) => cli.publish(prefix, n, PAYLOAD, headers, CONCURRENCY));
    const peakRssMiB = cli.peakRssMiB();
    const { deadLettered, exitCode } = await cli.stop();
    rmSync(dir, { recursive: true, force: true });
    if (deadLettered > 0) problems.push(`${deadLettered} messages dead-lettered`);
    if (exitCode !== 0) problems.push(`turnout exited ${exitCode} after SIGTERM`);
    // The CPU figure would be the publisher's (this process), not turnout's: left out.
    return { case: 'turnout-cli', messages: B_MESSAGES, perSecond: median(run.rates), samples: run.rates, problems, peakRssMiB, extra: {} };
  },

  'http-direct-paced': async (app, appUrl) => {
    const rss = new RssSampler().start();
    const post = directPoster(appUrl);
    const problems: string[] = [];
    const limit = limiter(CONCURRENCY);
    const result = await pacedRun('http-direct-paced', app, problems, (m) => limit(() => post(m, problems)));
    await post.close();
    return { ...result, ...memory(rss.stop(), result.extra) };
  },

  'turnout-paced': async (app, appUrl) => {
    const rss = new RssSampler().start();
    const t = await startTurnout(appUrl, 'all');
    const problems: string[] = [];
    const result = await pacedRun('turnout-paced', app, problems, (m) => {
      t.broker.publish(SOURCE, m).catch((err: unknown) => problems.push(`publish: ${String(err)}`));
    });
    await stopTurnout(t, problems);
    return { ...result, ...memory(rss.stop(), result.extra) };
  },
};

type TranslateOp = () => Promise<void>;

async function measureTranslate(name: string, setup: (problems: string[]) => TranslateOp | { op: TranslateOp; done: () => void }): Promise<CaseResult> {
  const rss = new RssSampler().start();
  const problems: string[] = [];
  const made = setup(problems);
  const { op, done } = typeof made === 'function' ? { op: made, done: () => {} } : made;
  for (let i = 0; i < A_WARMUP; i++) await op();
  const lat = new LatencyRecorder();
  const started = performance.now();
  for (let i = 0; i < A_MESSAGES; i++) {
    const t0 = performance.now();
    await op();
    lat.record(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  done();
  const s = lat.summary();
  const base = { case: name, messages: A_MESSAGES, perSecond: A_MESSAGES / seconds, p50Ms: s.p50Ms, p99Ms: s.p99Ms, problems };
  return { ...base, ...memory(rss.stop(), { meanMs: s.meanMs }) };
}

/** A plain client POSTing straight to the app, CONCURRENCY at a time. */
async function clientThroughput(name: string, app: BenchAppControl, post: Poster): Promise<CaseResult> {
  const rss = new RssSampler().start();
  const problems: string[] = [];
  const send = (prefix: string, n: number): Promise<void> => runWorkers(n, CONCURRENCY, (i) => post(message(`${prefix}-${i}`), problems));
  const run = await throughput(app, problems, send);
  await post.close();
  return throughputResult(name, run, rss.stop(), problems);
}

async function turnoutThroughput(name: string, app: BenchAppControl, appUrl: string, accept: string, translatorsYaml = TRANSLATORS_YAML): Promise<CaseResult> {
  const rss = new RssSampler().start();
  const t = await startTurnout(appUrl, accept, translatorsYaml);
  const problems: string[] = [];
  const run = await throughput(app, problems, backlogPublisher(t.broker, problems));
  if (accept !== 'all') {
    // (b) measures the compiled step: every message translated in turnout's thread, no worker ever started.
    const st = t.turnout.translationStats();
    const expected = B_WARMUP + B_ROUNDS * B_MESSAGES;
    if (st.compiled !== expected || st.workers > 0) problems.push(`${st.compiled} of ${expected} messages translated compiled; ${st.handedOver} handed to the worker pool, ${st.workers} workers started`);
  }
  await stopTurnout(t, problems);
  return throughputResult(name, run, rss.stop(), problems);
}

const brokerError = (err: unknown): void => void process.stderr.write(`embedded broker error: ${String(err)}\n`);

/** Publishes into the embedded broker's source queue, keeping at most B_BACKLOG messages held there. */
function backlogPublisher(broker: MemoryBroker, problems: string[]): (prefix: string, n: number) => Promise<void> {
  return async (prefix, n) => {
    for (let i = 0; i < n; i++) {
      while (broker.held() >= B_BACKLOG) await sleep(1);
      broker.publish(SOURCE, message(`${prefix}-${i}`)).catch((err: unknown) => problems.push(`publish: ${String(err)}`));
    }
  };
}

/**
 * The embedded broker feeding dispatch() straight, without turnout's
 * pipeline (gate, delivery bookkeeping, metrics, headers): what the
 * pass-through case costs before turnout adds anything, so the gap between
 * pass and dispatch() can be split into broker and pipeline.
 */
async function brokerDispatch(app: BenchAppControl, appUrl: string): Promise<CaseResult> {
  const rss = new RssSampler().start();
  const broker = new MemoryBroker({ queues: [SOURCE], onError: brokerError });
  await broker.connect();
  const post = dispatchPoster(appUrl);
  const problems: string[] = [];
  const sub = await broker.consume(SOURCE, async (m) => {
    await post(m, problems);
    return { kind: 'ack' };
  }, { prefetch: CONCURRENCY });
  const run = await throughput(app, problems, backlogPublisher(broker, problems));
  await sub.stop();
  await post.close();
  if (broker.held() > 0) problems.push(`${broker.held()} messages left in the embedded broker`);
  await broker.close();
  return throughputResult('broker-dispatch', run, rss.stop(), problems);
}

/**
 * Warm-up, then B_ROUNDS timed rounds of B_MESSAGES. A round runs from the
 * first send to the app's receipt of the last message (one clock,
 * CLOCK_MONOTONIC, across both processes). Returns messages/s per round.
 */
async function throughput(app: BenchAppControl, problems: string[], send: (prefix: string, n: number) => Promise<void>): Promise<{ rates: number[]; cpuUsPerMsg: number }> {
  await app.reset('warm-');
  await send('warm', B_WARMUP);
  checkSeen(await app.waitFor(B_WARMUP), 'warm-up', problems);
  const rates: number[] = [];
  const cpu = process.cpuUsage();
  for (let r = 0; r < B_ROUNDS; r++) {
    await app.reset(`r${r}-`);
    const t0 = monoNs();
    const sending = send(`r${r}`, B_MESSAGES);
    const seen = await app.waitFor(B_MESSAGES);
    await sending;
    checkSeen(seen, `round ${r}`, problems);
    rates.push(B_MESSAGES / (Number(BigInt(seen.lastNs) - t0) / 1e9));
  }
  return { rates, cpuUsPerMsg: cpuPerMessage(cpu, B_ROUNDS * B_MESSAGES) };
}

/** This process's CPU time (user + system) per message since `since`: unlike rates, barely moved by other load on the machine. */
function cpuPerMessage(since: NodeJS.CpuUsage, messages: number): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / messages;
}

function throughputResult(name: string, run: { rates: number[]; cpuUsPerMsg: number }, mem: RssReport, problems: string[]): CaseResult {
  return { case: name, messages: B_MESSAGES, perSecond: median(run.rates), samples: run.rates, problems, ...memory(mem, { cpuUsPerMsg: run.cpuUsPerMsg }) };
}

/** Paced warm-up, then PACE_MESSAGES stamped with their send time; the app computes each one's latency. */
async function pacedRun(name: string, app: BenchAppControl, problems: string[], send: (m: Message) => void): Promise<Omit<CaseResult, 'peakRssMiB'>> {
  const stamped = (prefix: string) => (i: number): void => {
    const m = message(`${prefix}-${i}`);
    m.headers[SENT_HEADER] = String(monoNs());
    send(m);
  };
  await app.reset('warm-');
  await paced(PACE_RATE, PACE_WARMUP, stamped('warm'));
  checkSeen(await app.waitFor(PACE_WARMUP), 'paced warm-up', problems);
  await app.reset('paced-');
  const t0 = monoNs();
  const cpu = process.cpuUsage();
  const lag = await paced(PACE_RATE, PACE_MESSAGES, stamped('paced'));
  const seen = await app.waitFor(PACE_MESSAGES);
  const cpuUsPerMsg = cpuPerMessage(cpu, PACE_MESSAGES);
  checkSeen(seen, 'paced run', problems);
  const samples = await app.latencies();
  const lat = new LatencyRecorder();
  lat.recordAll(samples);
  const l = lag.summary();
  return {
    case: name,
    messages: PACE_MESSAGES,
    perSecond: PACE_MESSAGES / (Number(BigInt(seen.lastNs) - t0) / 1e9),
    p50Ms: lat.percentile(50),
    p99Ms: lat.percentile(99),
    samples,
    extra: { producerLagP99Ms: l.p99Ms, cpuUsPerMsg },
    problems,
  };
}

/** Every message of a phase arrived once, and nothing from an earlier phase turned up again. */
function checkSeen(seen: WaitAnswer, phase: string, problems: string[]): void {
  if (seen.duplicates > 0) problems.push(`${phase}: the app saw ${seen.duplicates} duplicate deliveries`);
  if (seen.stray > 0) problems.push(`${phase}: the app saw ${seen.stray} messages of an earlier phase again`);
}

/** Peak RSS plus where it was (V8 heap vs. outside it), for the details line. */
function memory(mem: RssReport, extra: Record<string, number>): { peakRssMiB: number; extra: Record<string, number> } {
  return { peakRssMiB: mem.peakMiB, extra: { ...extra, sampledRssPeakMiB: mem.sampledPeakMiB, heapPeakMiB: mem.heapTotalPeakMiB, externalPeakMiB: mem.externalPeakMiB, anonPeakMiB: mem.anonPeakMiB, filePeakMiB: mem.filePeakMiB } };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

// ---- the two paths under test ------------------------------------------------

function message(id: string): Message {
  return { id, payload: PAYLOAD, headers: { [VERSION_HEADER]: '1' }, contentType: 'application/json' };
}

interface Started {
  turnout: Turnout;
  broker: MemoryBroker;
  dir: string;
}

/** A translators file (default: the reference's example steps) in a fresh temporary folder (the caller removes `dir`). */
function translatorsFileInTemp(yaml = TRANSLATORS_YAML): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'turnout-bench-'));
  const file = join(dir, 'translators.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

async function startTurnout(appUrl: string, accept: string, translatorsYaml = TRANSLATORS_YAML): Promise<Started> {
  const { dir, file: translators } = translatorsFileInTemp(translatorsYaml);
  const { config } = loadConfig({
    broker: 'memory',
    source: SOURCE,
    dlq: DLQ,
    appUrl,
    accept,
    translators,
    concurrency: String(CONCURRENCY),
    port: '0',
    host: '127.0.0.1',
    logLevel: 'silent',
  }, {});
  const broker = new MemoryBroker({ onError: brokerError });
  // BENCH_LOG=warn shows turnout's own log (on stderr) when a run misbehaves.
  const turnout = await Turnout.start({ config, logger: createLogger(process.env.BENCH_LOG ?? 'silent', process.stderr), broker });
  return { turnout, broker, dir };
}

/** Shuts turnout down and accounts for every message: nothing dead-lettered, nothing left behind. */
async function stopTurnout(t: Started, problems: string[]): Promise<void> {
  const dlq = t.broker.drainQueue(DLQ);
  const result = await t.turnout.shutdown();
  rmSync(t.dir, { recursive: true, force: true });
  if (dlq.length > 0) problems.push(`${dlq.length} messages dead-lettered (first: ${dlq[0]?.headers['x-turnout-error'] ?? '?'})`);
  if (!result.clean || result.heldInMemory > 0) problems.push(`messages left behind at shutdown: ${JSON.stringify(result)}`);
}

type Poster = ((m: Message, problems: string[]) => Promise<void>) & { close: () => Promise<void> };

/** The baseline client: an undici Pool configured as turnout's AppClient is, without turnout around it. */
function directPoster(appUrl: string): Poster {
  const url = new URL(appUrl);
  const pool = new Pool(url.origin, { connections: CONCURRENCY, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 10_000 });
  const post = async (m: Message, problems: string[]): Promise<void> => {
    const res = await pool.request({
      path: url.pathname,
      method: 'POST',
      headers: { ...m.headers, 'content-type': m.contentType ?? 'application/octet-stream', [ID_HEADER]: m.id },
      body: m.payload,
    });
    await res.body.text();
    if (res.statusCode !== 200) problems.push(`app answered ${res.statusCode} for ${m.id}`);
  };
  return Object.assign(post, { close: () => pool.close() });
}

/**
 * The reference client: the same POST through undici's lowest-level API
 * (dispatch() with a handler that drops the body), as turnout's AppClient
 * sends it. It shows what turnout costs over the cheapest undici client, where
 * the baseline (request(), the API an app would use) also pays for a
 * response stream.
 */
function dispatchPoster(appUrl: string): Poster {
  const url = new URL(appUrl);
  const pool = new Pool(url.origin, { connections: CONCURRENCY, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 10_000 });
  const post = (m: Message, problems: string[]): Promise<void> => new Promise((resolve) => {
    let status = 0;
    pool.dispatch({
      path: url.pathname,
      method: 'POST',
      headers: { ...m.headers, 'content-type': m.contentType ?? 'application/octet-stream', [ID_HEADER]: m.id },
      body: m.payload,
    }, {
      onRequestStart: () => {},
      onResponseStart: (_c, code) => void (status = code),
      onResponseData: () => {},
      onResponseEnd: () => {
        if (status !== 200) problems.push(`app answered ${status} for ${m.id}`);
        resolve();
      },
      onResponseError: (_c, err) => {
        problems.push(`${m.id}: ${err.message}`);
        resolve();
      },
    });
  });
  return Object.assign(post, { close: () => pool.close() });
}

/** n jobs, `width` at a time. */
async function runWorkers(n: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await job(next++);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

/** Starts jobs as they come, at most `width` at once; the rest wait in order (as turnout's prefetch does). */
function limiter(width: number): (job: () => Promise<void>) => void {
  let active = 0;
  const waiting: (() => Promise<void>)[] = [];
  const run = (job: () => Promise<void>): void => {
    active++;
    job().catch((err: unknown) => process.stderr.write(`${String(err)}\n`)).finally(() => {
      active--;
      const nextJob = waiting.shift();
      if (nextJob) run(nextJob);
    });
  };
  return (job) => (active < width ? run(job) : void waiting.push(job));
}

// ---- the parent: run the cases, pool, tabulate, judge ------------------------

const PART: Record<string, 'a' | 'b'> = {
  'translate-jsonata': 'a', 'translate-turnout': 'a', 'translate-reference': 'a',
  'http-direct': 'b', 'http-dispatch': 'b', 'broker-dispatch': 'b', 'turnout-pass': 'b', 'turnout-cli': 'b', 'turnout-translate': 'b', 'turnout-translate-identity': 'b',
  'http-direct-paced': 'b', 'turnout-paced': 'b',
};

/** The order of child runs: (a) once, then alternating passes of the (b) pairs. */
function schedule(): string[] {
  const runs = ['translate-jsonata', 'translate-turnout', 'translate-reference'];
  for (let p = 0; p < B_PASSES; p++) runs.push('http-direct', 'http-dispatch', 'broker-dispatch', 'turnout-pass', 'turnout-translate', 'turnout-translate-identity', 'turnout-cli');
  for (let p = 0; p < B_PASSES; p++) runs.push('http-direct-paced', 'turnout-paced');
  return runs;
}

/** Pools repeated runs of one case: throughput = median of every round, latency percentiles over every sample. */
function pool(runs: CaseResult[]): CaseResult {
  const first = runs[0] as CaseResult;
  if (runs.length === 1 && first.samples === undefined) return first;
  const samples = runs.flatMap((r) => r.samples ?? []);
  const out: CaseResult = {
    case: first.case,
    messages: runs.reduce((n, r) => n + r.messages, 0),
    perSecond: first.p50Ms === undefined ? median(samples) : runs.reduce((n, r) => n + r.perSecond, 0) / runs.length,
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
    extra: {},
    problems: runs.flatMap((r) => r.problems),
  };
  // Peaks pool as the maximum; CPU per message as the mean.
  for (const r of runs) for (const [k, v] of Object.entries(r.extra)) out.extra[k] = k === 'cpuUsPerMsg' ? (out.extra[k] ?? 0) + v / runs.length : Math.max(out.extra[k] ?? -Infinity, v);
  if (first.p50Ms !== undefined) {
    const lat = new LatencyRecorder();
    lat.recordAll(samples);
    out.p50Ms = lat.percentile(50);
    out.p99Ms = lat.percentile(99);
    out.extra.maxMs = lat.percentile(100);
  } else {
    out.extra.rounds = samples.length;
    out.extra.minPerSecond = Math.min(...samples);
    out.extra.maxPerSecond = Math.max(...samples);
  }
  return out;
}

/**
 * The script the children run: this file bundled with the image's entry
 * points (--build=bundle, the default) or compiled by tsc (--build=tsc),
 * unless it already is JavaScript or --from-source asks for the .ts. The
 * turnout-cli case starts the cli.js beside it (BENCH_CLI_ENTRY).
 */
async function childScript(fromSource: boolean, build: 'bundle' | 'tsc'): Promise<{ script: string; env: Record<string, string>; cleanup: () => void }> {
  const self = fileURLToPath(import.meta.url);
  if (fromSource || self.endsWith('.js')) return { script: self, env: {}, cleanup: () => {} };
  if (build === 'tsc') {
    const { js, cleanup } = compileTree();
    return { script: js(self), env: {}, cleanup };
  }
  // Imported here: a bundled child never loads the bundler.
  const { bundle, ENTRIES } = await import('../scripts/bundle.ts');
  const out = mkdtempSync(join(dirname(self), '..', '.cache', 'bench-bundle-'));
  process.stderr.write('bench: bundling with esbuild…\n');
  await bundle(out, { ...ENTRIES, 'core.bench': relative(join(dirname(self), '..'), self) }, ['esbuild']);
  return { script: join(out, 'core.bench.js'), env: { BENCH_CLI_ENTRY: join(out, 'cli.js') }, cleanup: () => rmSync(out, { recursive: true, force: true }) };
}

async function parent(only: string[], childNodeArgs: string[], heap: string, fromSource: boolean, build: 'bundle' | 'tsc'): Promise<number> {
  const runs = schedule().filter((c) => only.length === 0 || only.includes(c) || only.includes(PART[c] ?? ''));
  if (runs.length === 0) throw new Error(`--only matches no case; cases: ${Object.keys(PART).join(', ')} (or a, b)`);
  if (heap !== 'container' && heap !== 'host') throw new Error('--heap must be container or host');
  const nodeArgs = [...(heap === 'container' ? IMAGE_NODE_ARGS : []), ...childNodeArgs];
  const { script, env: scriptEnv, cleanup } = await childScript(fromSource, build);
  const childEnv = { ...(heap === 'container' ? IMAGE_ENV : {}), ...scriptEnv };
  const load = loadavg()[0] ?? 0;
  const app = await startBenchApp();
  const byCase = new Map<string, CaseResult[]>();
  const started = Date.now();
  try {
    for (const name of runs) {
      const r = await runChild(script, ['--case', name, '--app', app.url], nodeArgs, childEnv);
      byCase.set(name, [...(byCase.get(name) ?? []), r]);
      const lat = r.p99Ms !== undefined ? `, p50 ${fmt(r.p50Ms, 3)} ms, p99 ${fmt(r.p99Ms, 3)} ms` : '';
      process.stderr.write(`bench: ${name}: ${fmt(r.perSecond)} msg/s${lat}, peak RSS ${fmt(r.peakRssMiB, 1)} MiB${r.problems.length ? `; PROBLEMS: ${r.problems.join('; ')}` : ''}\n`);
    }
  } finally {
    await app.close();
    cleanup();
  }
  const results = new Map([...byCase].map(([name, rs]) => [name, pool(rs)]));
  const { table, details, checks, failed } = report(results, byCase);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n## Core (embedded broker)\n`);
  console.log(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${describeMachine()}; load average ${load.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}; ${seconds} s.`);
  console.log(`Payload: ${PAYLOAD.length} B JSON, the reference's example step 1->2. Concurrency ${CONCURRENCY} on both sides. Throughput: median of ${B_PASSES * B_ROUNDS} rounds × ${fmt(B_MESSAGES)} messages (${B_PASSES} alternating passes, ${fmt(B_WARMUP)} warm-up each), first send → app's receipt of the last. Latency: ${fmt(B_PASSES * PACE_MESSAGES)} messages paced at ${fmt(PACE_RATE)} msg/s (${B_PASSES} alternating passes, ${fmt(PACE_WARMUP)} warm-up each), send stamp → app receipt on CLOCK_MONOTONIC. Peak RSS: each case's own child process (kernel high-water mark), max over its passes. (a) p50/p99 are per-message times.`);
  console.log(`Children: \`${Object.entries(childEnv).filter(([k]) => k !== 'BENCH_CLI_ENTRY').map(([k, v]) => `${k}=${v} `).join('')}node ${[...nodeArgs, relative(process.cwd(), script).replace(/^\.cache\/bench-js-[^/]+/, '<tsc output>').replace(/^\.cache\/bench-bundle-[^/]+/, '<bundle>')].join(' ')} --case …\` (${heap === 'container' ? "the image's node flags and malloc settings, V8 heap as Node sizes it in the sidecar's 256 Mi container" : "V8's and glibc's defaults for this host"}).\n`);
  console.log(table);
  console.log(`\n${details}\n`);
  console.log(checks);
  return failed ? 1 : 0;
}

function report(results: Map<string, CaseResult>, runs: Map<string, CaseResult[]>): { table: string; details: string; checks: string; failed: boolean } {
  const rows: Cell[][] = [];
  const checkRows: Cell[][] = [];
  let failed = false;
  const judge = (target: string, measured: string, ok: boolean): string => {
    failed ||= !ok;
    checkRows.push([target, measured, ok ? 'PASS' : 'FAIL']);
    return ok ? 'PASS' : 'FAIL';
  };
  const ratio = (r: CaseResult, base: CaseResult | undefined): number | undefined => (base ? r.perSecond / base.perSecond : undefined);
  const pct = (x: number | undefined): string => (x === undefined ? '–' : `${fmt(x * 100)} %`);
  const row = (part: string, label: string, r: CaseResult, vs: string, target: string): void => {
    rows.push([part, label, fmt(r.perSecond), fmt(r.p50Ms, 3), fmt(r.p99Ms, 3), fmt(r.peakRssMiB, 1), vs, target]);
  };
  const rssCheck = (r: CaseResult): string => `RSS ≤ ${TARGETS.maxRssMiB} MiB: ${judge(`(b) peak RSS of the turnout process (${r.case}) ≤ ${TARGETS.maxRssMiB} MiB`, `${fmt(r.peakRssMiB, 1)} MiB`, r.peakRssMiB <= TARGETS.maxRssMiB)}`;

  const aBase = results.get('translate-jsonata');
  const aTurnout = results.get('translate-turnout');
  if (aBase) row('a', 'jsonata evaluate() on the parsed object (baseline)', aBase, '100 %', '–');
  if (aTurnout) {
    const ra = ratio(aTurnout, aBase);
    const t = ra === undefined ? 'no baseline' : judge(`(a) compiled gate + translate, bytes → bytes ≥ ${pct(TARGETS.minCompiledTranslateRatio)} of jsonata evaluate()`, pct(ra), ra >= TARGETS.minCompiledTranslateRatio);
    row('a', 'gate decide() + compiled translation: bytes → bytes', aTurnout, pct(ra), `≥ ${pct(TARGETS.minCompiledTranslateRatio)}: ${t}`);
  }
  const aRef = results.get('translate-reference');
  if (aRef) row('a', 'gate decide() + reference evaluator: bytes → bytes', aRef, pct(ratio(aRef, aBase)), aTurnout ? `(info) compiled is ${pct(ratio(aTurnout, aRef))} of it` : '(info)');

  const bBase = results.get('http-direct');
  if (bBase) row('b', 'undici POST → app (baseline)', bBase, '100 %', '–');
  const pass = results.get('turnout-pass');
  const ref = results.get('http-dispatch');
  if (ref) {
    const rr = pass ? ratio(pass, ref) : undefined;
    const t = rr === undefined ? 'no turnout pass case' : judge(`(b) pass-through throughput ≥ ${pct(TARGETS.minReferenceRatio)} of the dispatch() reference`, pct(rr), rr >= TARGETS.minReferenceRatio);
    row('b', 'undici dispatch() → app (reference)', ref, pct(ratio(ref, bBase)), `turnout pass is ${pct(rr)} of it, ≥ ${pct(TARGETS.minReferenceRatio)}: ${t}`);
  }
  const bd = results.get('broker-dispatch');
  if (bd) row('b', 'broker → dispatch() → app (no pipeline)', bd, pct(ratio(bd, bBase)), `(info) ${pct(ref ? ratio(bd, ref) : undefined)} of dispatch(): the embedded broker's share; turnout pass is ${pct(pass ? ratio(pass, bd) : undefined)} of it`);
  if (pass) {
    const rt = ratio(pass, bBase);
    const t = rt === undefined ? 'no baseline' : judge(`(b) throughput ≥ ${pct(TARGETS.minThroughputRatio)} of the baseline`, pct(rt), rt >= TARGETS.minThroughputRatio);
    row('b', 'broker → turnout → app (pass)', pass, pct(rt), `≥ ${pct(TARGETS.minThroughputRatio)}: ${t}; ${rssCheck(pass)}`);
  }
  const tr = results.get('turnout-translate');
  if (tr) {
    const rp = pass ? ratio(tr, pass) : undefined;
    const t = rp === undefined ? 'no pass-through run' : judge(`(b) translated 1→2 (compiled) throughput ≥ ${pct(TARGETS.minTranslatedVsPassRatio)} of pass-through`, pct(rp), rp >= TARGETS.minTranslatedVsPassRatio);
    row('b', 'broker → turnout → app (translate 1→2, compiled)', tr, pct(ratio(tr, bBase)), `${pct(rp)} of pass ≥ ${pct(TARGETS.minTranslatedVsPassRatio)}: ${t}; ${rssCheck(tr)}`);
  }
  const id = results.get('turnout-translate-identity');
  if (id) row('b', 'broker → turnout → app (identity step `$`: parse + serialise only)', id, pct(ratio(id, bBase)), `(info) ${pct(pass ? ratio(id, pass) : undefined)} of pass: the ceiling of the translated ratio on this path`);

  const cli = results.get('turnout-cli');
  if (cli) row('b', 'turnout CLI process, fed through its POST /v1/publish', cli, '–', `(info: serves the publishes too); ${rssCheck(cli)}`);

  const lBase = results.get('http-direct-paced');
  const lTurnout = results.get('turnout-paced');
  if (lBase) row('b', `undici POST → app at ${fmt(PACE_RATE)} msg/s (baseline)`, lBase, '–', '–');
  if (lTurnout) row('b', `broker → turnout → app at ${fmt(PACE_RATE)} msg/s`, lTurnout, '–', rssCheck(lTurnout));
  if (lBase?.p50Ms !== undefined && lBase.p99Ms !== undefined && lTurnout?.p50Ms !== undefined && lTurnout.p99Ms !== undefined) {
    const addedP99 = lTurnout.p99Ms - lBase.p99Ms;
    // Judged in every pass (each pass's turnout run against the baseline run beside it), not only pooled.
    const baseRuns = runs.get('http-direct-paced') ?? [];
    const turnoutRuns = runs.get('turnout-paced') ?? [];
    const perPass = turnoutRuns.map((r, i) => (r.p99Ms ?? NaN) - (baseRuns[i]?.p99Ms ?? NaN));
    const t = judge(`(b) p99 added latency at ${fmt(PACE_RATE)} msg/s ≤ ${TARGETS.maxAddedP99Ms} ms in every pass`, `${perPass.map((x) => `${fmt(x, 3)} ms`).join(' / ')} (pooled ${fmt(addedP99, 3)} ms)`, perPass.length > 0 && perPass.every((x) => x <= TARGETS.maxAddedP99Ms));
    rows.push(['b', 'added by turnout (turnout − baseline)', '', fmt(lTurnout.p50Ms - lBase.p50Ms, 3), fmt(addedP99, 3), '', '', `p99 ≤ ${TARGETS.maxAddedP99Ms} ms in every pass: ${t}`]);
  }

  for (const r of results.values()) {
    for (const p of r.problems) judge(`(${PART[r.case]}) every message delivered exactly once (${r.case})`, p, false);
  }
  const header = ['part', 'case', 'msg/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'vs baseline', 'target'];
  const decimals = (k: string): number => (k.endsWith('Ms') ? 3 : k.endsWith('MiB') ? 1 : 0);
  const units: Record<string, string> = { cpuUsPerMsg: 'CPU µs/msg' };
  const details = [...results.values()].map((r) => `- ${r.case}: ${Object.entries(r.extra).map(([k, v]) => `${units[k] ?? k} ${fmt(v, decimals(k))}`).join(', ')}`).join('\n');
  return { table: markdownTable(header, rows), details: `Details (heap/external = peak V8 heap and memory outside it; anon/file = peak anonymous and file-backed RSS, the latter mostly the node binary's own pages):\n${details}`, checks: markdownTable(['target', 'measured', 'result'], checkRows), failed };
}

// ---- entry -------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    case: { type: 'string' },
    app: { type: 'string' },
    only: { type: 'string' },
    heap: { type: 'string', default: 'container' },
    'from-source': { type: 'boolean', default: false },
    'child-node-args': { type: 'string' },
    build: { type: 'string', default: 'bundle' },
  },
});

if (values.case !== undefined) {
  const fn = CASES[values.case];
  if (!fn || values.app === undefined) throw new Error(`--case must be one of ${Object.keys(CASES).join(', ')}, with --app URL`);
  const appUrl = values.app;
  emitResult(await fn(new BenchAppControl(new URL(appUrl).origin), appUrl));
  // Pools and timers of the case must not hold the child open.
  process.exit(0);
} else {
  const only = (values.only ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const childArgs = (values['child-node-args'] ?? '').split(/\s+/).filter((s) => s !== '');
  if (values.build !== 'bundle' && values.build !== 'tsc') throw new Error('--build must be bundle or tsc');
  process.exitCode = await parent(only, childArgs, values.heap, values['from-source'], values.build);
}
