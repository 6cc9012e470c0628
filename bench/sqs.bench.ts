// SQS benchmark (issue 4): turnout against a plain sqs-consumer-style loop,
// same SQS client library, same app, same emulator, same run.
//
//   baseline  ReceiveMessage (10, long poll 20 s, attributes All) → POST every
//             message of the batch to the app at once (undici pool) →
//             DeleteMessageBatch → receive again. LOOPS such loops run side by
//             side, as one would scale sqs-consumer; at most LOOPS × 10 in flight.
//   turnout   `turnout run` with TURNOUT_BROKER=sqs and
//             TURNOUT_CONCURRENCY = LOOPS × 10, delivering to the same app.
//   turnout-translate  the same with TURNOUT_ACCEPT=2 and the reference's
//             1->2 step (bench/lib/payload.ts) on the same v1 messages; the
//             app must see every one as version 2 (information, no target).
//
// Messages: the 1 KiB v1 document of bench/lib/payload.ts, as the other
// broker benchmarks send (the 1->2 step needs its fields).
//
// Both sides run as the image runs turnout (bench/lib/runtime.ts): the
// benchmark compiles the tree with tsc and runs the compiled copy, whose
// measured processes get the Dockerfile's node flags and malloc variables.
// BENCH_RUNTIME=host runs the sources with the host's defaults instead.
//
// Processes: fauxqs (child), the consumer under test (child), and this
// parent, which hosts the app and the producer. Per round and system:
//   throughput  a backlog of BACKLOG messages is put on a fresh queue first;
//               msg/s = BACKLOG / (last delivery − first delivery)
//   latency     a producer sends PACED_RATE msg/s for PACED_MESSAGES messages
//               into an empty queue; end-to-end latency send → app, p50/p99
// Rounds alternate baseline/turnout, turnout-translate after them; the report
// shows every round and the median. Peak RSS: the consumer process's VmHWM,
// read before it stops (max of its two phases; the main process only). CPU:
// the consumer process with its children (turnout's translation workers).
//
//   node bench/sqs.bench.ts [--rounds N] [--backlog N] [--paced N] [--rate R] [--no-translate] [--out FILE]
//   node bench/sqs.bench.ts --baseline QUEUE_URL APP_URL   (the baseline child)

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message as SqsMessage,
} from '@aws-sdk/client-sqs';
import { Pool } from 'undici';
import { startEmulator, type Emulator } from '../test/integration/sqs/fauxqs.ts';
import { startTurnout } from '../test/support/process.ts';
import { benchPayload, TRANSLATORS_YAML, VERSION_HEADER } from './lib/payload.ts';
import { peakRssMiB, treeCpuMs } from './lib/proc.ts';
import { childNodeArgs, runCompiled } from './lib/runtime.ts';

const LOOPS = 2;
const CONCURRENCY = LOOPS * 10;
const SENT_HEADER = 'x-bench-sent';
const PAYLOAD = benchPayload().toString('utf8');
/** Wall-clock ms with sub-ms precision, comparable across processes of one machine. */
const nowMs = (): number => performance.timeOrigin + performance.now();

// ---- the baseline consumer (child process) ----------------------------------

async function baseline(queueUrl: string, appUrl: string): Promise<void> {
  // Region, credentials and endpoint from the environment, as turnout's client.
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const app = new URL(appUrl);
  const pool = new Pool(app.origin, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 10_000 });
  const deliver = async (m: SqsMessage): Promise<boolean> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-turnout-message-id': m.MessageId ?? '' };
    for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) if (v.StringValue !== undefined) headers[k] = v.StringValue;
    const res = await pool.request({ path: app.pathname, method: 'POST', headers, body: m.Body ?? '' });
    await res.body.dump();
    return res.statusCode >= 200 && res.statusCode < 300;
  };
  const loop = async (): Promise<void> => {
    for (;;) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, MessageAttributeNames: ['All'] }));
      const ms = out.Messages ?? [];
      if (ms.length === 0) continue;
      const ok = await Promise.all(ms.map((m) => deliver(m).catch(() => false)));
      const done = ms.filter((_, i) => ok[i]);
      if (done.length > 0) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
      }
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, loop));
}

// ---- the app (parent) ---------------------------------------------------------

interface App {
  url: string;
  reset(): void;
  seen(): number;
  duplicates(): number;
  /** First deliveries by version header value. */
  versions(): Record<string, number>;
  firstAt(): number;
  lastAt(): number;
  latencies(): number[];
  close(): Promise<void>;
}

async function startApp(): Promise<App> {
  let seen = new Set<string>();
  let dups = 0;
  let first = 0;
  let last = 0;
  let lat: number[] = [];
  let versions: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      const at = nowMs();
      const id = String(req.headers['x-turnout-message-id'] ?? '');
      if (seen.has(id)) dups++;
      else {
        seen.add(id);
        const v = String(req.headers[VERSION_HEADER] ?? '');
        versions[v] = (versions[v] ?? 0) + 1;
        if (first === 0) first = at;
        last = at;
        const sent = Number(req.headers[SENT_HEADER]);
        if (sent > 0) lat.push(at - sent);
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/messages`,
    reset() {
      seen = new Set();
      dups = 0;
      first = 0;
      last = 0;
      lat = [];
      versions = {};
    },
    seen: () => seen.size,
    duplicates: () => dups,
    versions: () => versions,
    firstAt: () => first,
    lastAt: () => last,
    latencies: () => lat,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- phases ---------------------------------------------------------------------

interface Consumer {
  pid: number | undefined;
  stop(): Promise<void>;
}

type System = 'baseline' | 'turnout' | 'turnout-translate';
/** The version the app must see on every message of a system. */
const DELIVERED_VERSION: Record<System, string> = { baseline: '1', turnout: '1', 'turnout-translate': '2' };

async function startConsumer(system: System, emu: Emulator, queue: string, queueUrl: string, dlq: string, appUrl: string, translators: string): Promise<Consumer> {
  if (system !== 'baseline') {
    const t = await startTurnout({
      ...emu.env,
      TURNOUT_BROKER: 'sqs',
      TURNOUT_SOURCE: queue,
      TURNOUT_DLQ: dlq,
      TURNOUT_APP_URL: appUrl,
      TURNOUT_CONCURRENCY: String(CONCURRENCY),
      TURNOUT_LOG_LEVEL: 'info', // startTurnout reads the port from the 'HTTP listening' line
      ...(system === 'turnout-translate' ? { TURNOUT_ACCEPT: '2', TURNOUT_TRANSLATORS: translators } : {}),
    }, { nodeArgs: childNodeArgs() });
    return { pid: t.child.pid, stop: async () => void (await t.kill()) };
  }
  const child: ChildProcess = spawn(process.execPath, [...childNodeArgs(), fileURLToPath(import.meta.url), '--baseline', queueUrl, appUrl], {
    env: { ...process.env, ...emu.env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return {
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const attrs = (sent?: number): Record<string, { DataType: string; StringValue: string }> => ({
  [VERSION_HEADER]: { DataType: 'String', StringValue: '1' },
  ...(sent !== undefined ? { [SENT_HEADER]: { DataType: 'String', StringValue: sent.toFixed(3) } } : {}),
});

async function fill(client: SQSClient, queueUrl: string, n: number): Promise<void> {
  const batches = Math.ceil(n / 10);
  for (let b = 0; b < batches; b += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, batches - b) }, () =>
        client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: String(i), MessageBody: PAYLOAD, MessageAttributes: attrs() })) })),
      ),
    );
  }
}

async function waitSeen(app: App, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (app.seen() < n) {
    if (Date.now() > deadline) throw new Error(`only ${app.seen()}/${n} messages reached the app in ${timeoutMs} ms`);
    await sleep(20);
  }
}

interface Round {
  system: System;
  round: number;
  msgPerSec: number;
  /** CPU ms per 1 000 messages while draining the backlog: the consumer process, the emulator. */
  consumerCpu: number;
  emulatorCpu: number;
  throughputDuplicates: number;
  p50: number;
  p99: number;
  max: number;
  latencyDuplicates: number;
  /** The consumer process's VmHWM, MiB, max of the two phases. */
  peakRssMiB: number;
  /** Messages the app saw as another version than the system must deliver. */
  wrongVersion: number;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

async function runRound(system: System, round: number, emu: Emulator, app: App, opts: { backlog: number; rate: number; paced: number; translators: string }): Promise<Round> {
  // Throughput: drain a backlog (skipped with --backlog 0).
  const dlq = emu.name('bench-dlq');
  await emu.createQueue(dlq);
  let msgPerSec = NaN;
  let consumerCpu = NaN;
  let emulatorCpu = NaN;
  let throughputDuplicates = 0;
  let peak = Number.NaN;
  let wrongVersion = 0;
  const versionCheck = (): void => void (wrongVersion += app.seen() - (app.versions()[DELIVERED_VERSION[system]] ?? 0));
  if (opts.backlog > 0) {
    const q1 = emu.name(`bench-${system}`);
    const q1Url = await emu.createQueue(q1);
    await fill(emu.client, q1Url, opts.backlog);
    app.reset();
    const c1 = await startConsumer(system, emu, q1, q1Url, dlq, app.url, opts.translators);
    // CPU from the first delivery on, so start-up (module loading) is not counted.
    await waitSeen(app, 1, 60_000);
    const cpu0 = { consumer: treeCpuMs(c1.pid), emulator: treeCpuMs(emu.pid), seen: app.seen() };
    await waitSeen(app, opts.backlog, 300_000);
    msgPerSec = (opts.backlog - 1) / ((app.lastAt() - app.firstAt()) / 1000);
    const perK = 1000 / (opts.backlog - cpu0.seen);
    consumerCpu = (treeCpuMs(c1.pid) - cpu0.consumer) * perK;
    emulatorCpu = (treeCpuMs(emu.pid) - cpu0.emulator) * perK;
    await sleep(500);
    throughputDuplicates = app.duplicates();
    versionCheck();
    peak = peakRssMiB(c1.pid);
    await c1.stop();
  }

  // Latency: a paced producer into an empty queue.
  const q2 = emu.name(`bench-${system}-paced`);
  const q2Url = await emu.createQueue(q2);
  app.reset();
  const c2 = await startConsumer(system, emu, q2, q2Url, dlq, app.url, opts.translators);
  await sleep(1_000); // its long polls are waiting
  const start = nowMs();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < opts.paced; i++) {
    const due = start + (i * 1000) / opts.rate;
    const wait = due - nowMs();
    if (wait > 1) await sleep(wait);
    sends.push(emu.client.send(new SendMessageCommand({ QueueUrl: q2Url, MessageBody: PAYLOAD, MessageAttributes: attrs(nowMs()) })));
  }
  await Promise.all(sends);
  await waitSeen(app, opts.paced, 60_000);
  await sleep(500);
  const lat = [...app.latencies()].sort((a, b) => a - b);
  const latencyDuplicates = app.duplicates();
  versionCheck();
  peak = Math.max(Number.isNaN(peak) ? 0 : peak, peakRssMiB(c2.pid));
  await c2.stop();
  return { system, round, msgPerSec, consumerCpu, emulatorCpu, throughputDuplicates, p50: pct(lat, 50), p99: pct(lat, 99), max: lat[lat.length - 1] ?? NaN, latencyDuplicates, peakRssMiB: peak, wrongVersion };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, backlog: { type: 'string', default: '5000' }, rate: { type: 'string', default: '200' }, paced: { type: 'string', default: '2000' }, 'no-translate': { type: 'boolean', default: false }, out: { type: 'string' } } });
  const dir = mkdtempSync(join(tmpdir(), 'turnout-bench-sqs-'));
  const translators = join(dir, 'translators.yaml');
  writeFileSync(translators, TRANSLATORS_YAML);
  const opts = { backlog: Number(values.backlog), rate: Number(values.rate), paced: Number(values.paced), translators };
  const rounds = Number(values.rounds);
  const emu = await startEmulator({ mode: 'child' });
  const app = await startApp();
  const results: Round[] = [];
  try {
    for (let r = 1; r <= rounds; r++) {
      const pair: System[] = r % 2 ? ['baseline', 'turnout'] : ['turnout', 'baseline'];
      for (const system of values['no-translate'] ? pair : [...pair, 'turnout-translate' as const]) {
        const res = await runRound(system, r, emu, app, opts);
        results.push(res);
        console.error(JSON.stringify(res));
      }
    }
  } finally {
    await app.close();
    await emu.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (s: System): Round[] => results.filter((x) => x.system === s);
  const summary = (s: System) => ({
    msgPerSec: median(of(s).map((x) => x.msgPerSec)),
    consumerCpu: median(of(s).map((x) => x.consumerCpu)),
    emulatorCpu: median(of(s).map((x) => x.emulatorCpu)),
    p50: median(of(s).map((x) => x.p50)),
    p99: median(of(s).map((x) => x.p99)),
    peakRssMiB: Math.max(...of(s).map((x) => x.peakRssMiB)),
    duplicates: of(s).reduce((n, x) => n + x.throughputDuplicates + x.latencyDuplicates, 0),
    wrongVersion: of(s).reduce((n, x) => n + x.wrongVersion, 0),
  });
  const b = summary('baseline');
  const t = summary('turnout');
  const tr = of('turnout-translate').length > 0 ? summary('turnout-translate') : undefined;
  const ratio = t.msgPerSec / b.msgPerSec;
  const verdict = Number.isFinite(ratio) ? `turnout / baseline throughput: ${(ratio * 100).toFixed(0)} % (target ≥ 80 %): ${ratio >= 0.8 ? 'met' : 'NOT met'}` : 'throughput not measured (--backlog 0)';
  const f = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}; emulator fauxqs (child process)`,
    `backlog ${opts.backlog} messages; paced ${opts.paced} messages at ${opts.rate} msg/s; in flight at most ${CONCURRENCY} (baseline ${LOOPS} loops × 10, TURNOUT_CONCURRENCY=${CONCURRENCY}); ${rounds} rounds`,
    '',
    '| system | round | throughput msg/s | consumer CPU ms / 1k msg | emulator CPU ms / 1k msg | p50 ms | p99 ms | max ms | peak RSS MiB | duplicates | wrong version |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((x) => `| ${x.system} | ${x.round} | ${f(x.msgPerSec, 0)} | ${f(x.consumerCpu, 0)} | ${f(x.emulatorCpu, 0)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.max)} | ${f(x.peakRssMiB)} | ${x.throughputDuplicates + x.latencyDuplicates} | ${x.wrongVersion} |`),
    ...(['baseline', 'turnout', 'turnout-translate'] as System[]).flatMap((s) => {
      const m = s === 'baseline' ? b : s === 'turnout' ? t : tr;
      return m ? [`| **${s} (median)** | | **${f(m.msgPerSec, 0)}** | ${f(m.consumerCpu, 0)} | ${f(m.emulatorCpu, 0)} | ${f(m.p50)} | **${f(m.p99)}** | | ${f(m.peakRssMiB)} | ${m.duplicates} | ${m.wrongVersion} |`] : [];
    }),
    '',
    verdict,
    ...(tr ? [`turnout-translate / baseline throughput: ${(((tr.msgPerSec / b.msgPerSec) * 100) || 0).toFixed(0)} % (information, no target)`] : []),
  ];
  const wrong = results.reduce((n, x) => n + x.wrongVersion, 0);
  if (wrong > 0) lines.push(`problem: ${wrong} messages reached the app as another version than their system delivers`);
  const text = lines.join('\n');
  console.log(text);
  if (values.out) writeFileSync(values.out, `${text}\n`);
  // Exit status for `npm run bench`: a missed target, or a message delivered twice or untranslated.
  const duplicates = results.reduce((n, x) => n + x.throughputDuplicates + x.latencyDuplicates, 0);
  if ((Number.isFinite(ratio) && ratio < 0.8) || duplicates > 0 || wrong > 0) process.exitCode = 1;
}

// Under the image's runtime unless BENCH_RUNTIME=host (bench/lib/runtime.ts).
const compiled = await runCompiled(import.meta.url);
if (compiled !== undefined) process.exit(compiled);
const argv = process.argv.slice(2);
if (argv[0] === '--baseline') {
  await baseline(argv[1] as string, argv[2] as string);
} else {
  await main();
}
