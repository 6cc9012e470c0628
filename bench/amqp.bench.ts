// RabbitMQ benchmark (issue 3): turnout against plain amqplib loops, same
// broker, same app, same 1 KiB messages, same run.
//
//   consumer  baseline: amqplib consumer, prefetch C, POSTs each message to the
//             app (undici pool of C connections), acks after the 2xx.
//             turnout: `turnout run` with TURNOUT_SOURCE and TURNOUT_APP_URL,
//             TURNOUT_CONCURRENCY=C.
//   router    baseline: amqplib consumer, prefetch C, republishes each message to
//             blue or green (hash of its id) on a confirm channel, acks after the confirm.
//             turnout: TURNOUT_SOURCE=ingress, TURNOUT_BLUE/GREEN, weight 50.
//
// Per case: a backlog of N persistent messages is put on a fresh queue, then
// the system under test starts (its own process); throughput = N / time from
// first to last message arriving (at the app, or in blue+green). Then, with the
// queue empty, a paced producer sends RATE msg/s stamped with CLOCK_MONOTONIC:
// p50/p99 end-to-end latency at the app (consumer) or at a sink consuming blue
// and green (router). Peak RSS is the process's VmHWM. Every message is
// accounted for: a case with lost or duplicated messages is reported invalid.
//
// The consumer scenario has a third system, turnout-translate: turnout with
// TURNOUT_ACCEPT=2 and the reference's 1->2 step (bench/lib/payload.ts) on
// the same v1 messages; the app must see every one as version 2. Its
// throughput is shown against the baseline for information (no target).
//
// Both sides run as the image runs turnout (bench/lib/runtime.ts): the
// benchmark compiles the tree with tsc and runs the compiled copy, whose
// measured processes get the Dockerfile's node flags and malloc variables.
// BENCH_RUNTIME=host runs the sources with the host's defaults instead.
//
//   node bench/amqp.bench.ts [--messages N] [--rounds N] [--rate R] [--paced M] [--concurrency C] [--only consumer|router] [--no-translate] [--baseline-nodelay] [--out FILE]
//   (TURNOUT_BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as amqp from 'amqplib';
import { Pool } from 'undici';
import { startTurnout } from '../test/support/process.ts';
import { BenchAppControl, SENT_HEADER, startBenchApp } from './lib/app.ts';
import { LatencyRecorder } from './lib/latency.ts';
import { describeMachine } from './lib/machine.ts';
import { monoNs, paced } from './lib/pace.ts';
import { benchPayload, TRANSLATORS_YAML } from './lib/payload.ts';
import { peakRssMiB } from './lib/proc.ts';
import { childNodeArgs, runCompiled } from './lib/runtime.ts';
import { skipUnlessReachable } from './lib/skip.ts';
import { fmt, markdownTable } from './lib/table.ts';

const URL_ = process.env.TURNOUT_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PAYLOAD = benchPayload();
const HEADERS = { 'x-schema-version': '1' };

// ---- the baselines (child processes) -----------------------------------------

/** A baseline whose connection drops exits: the parent sees it and runs the case again. */
async function baselineConnection(): Promise<amqp.ChannelModel> {
  // amqplib's defaults, as a plain loop would use them, unless --baseline-nodelay (turnout sets TCP_NODELAY).
  const conn = await amqp.connect(URL_, { noDelay: process.env.TURNOUT_BENCH_BASELINE_NODELAY === '1' });
  conn.on('error', () => {});
  conn.on('close', () => process.exit(1));
  return conn;
}

async function baselineConsumer(queue: string, appUrl: string, c: number): Promise<void> {
  const conn = await baselineConnection();
  const ch = await conn.createChannel();
  await ch.prefetch(c);
  const app = new URL(appUrl);
  const pool = new Pool(app.origin, { connections: c, pipelining: 1, keepAliveTimeout: 30_000 });
  await ch.consume(queue, (m) => {
    if (!m) return;
    const headers: Record<string, string> = { 'content-type': m.properties.contentType ?? 'application/octet-stream', 'x-turnout-message-id': String(m.properties.messageId) };
    for (const [k, v] of Object.entries((m.properties.headers ?? {}) as Record<string, unknown>)) headers[k] = String(v);
    pool.request({ path: app.pathname, method: 'POST', headers, body: m.content }).then(async (res) => {
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) ch.ack(m);
      else ch.nack(m, false, true);
    }, () => ch.nack(m, false, true));
  }, { noAck: false });
  process.stdout.write('READY\n');
}

async function baselineRouter(queue: string, blue: string, green: string, c: number): Promise<void> {
  const conn = await baselineConnection();
  const ch = await conn.createChannel();
  await ch.prefetch(c);
  const out = await conn.createConfirmChannel();
  await ch.consume(queue, (m) => {
    if (!m) return;
    const id = String(m.properties.messageId);
    let h = 0;
    for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
    out.sendToQueue((h & 1) === 0 ? blue : green, m.content, { ...m.properties, persistent: true, mandatory: true }, (err: unknown) => {
      if (err) ch.nack(m, false, true);
      else ch.ack(m);
    });
  }, { noAck: false });
  process.stdout.write('READY\n');
}

// ---- helpers (parent) -----------------------------------------------------------

interface Runner {
  pid: number;
  /** Throws when the process under test has exited. */
  check(): void;
  stop(): Promise<void>;
}

async function startBaseline(args: string[]): Promise<Runner> {
  const child: ChildProcess = spawn(process.execPath, [...childNodeArgs(), fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`baseline exited ${code}`)));
  });
  return {
    pid: child.pid as number,
    check: () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the baseline exited (${child.exitCode ?? child.signalCode})`);
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function startTurnoutRunner(env: Record<string, string>): Promise<Runner> {
  const t = await startTurnout({ TURNOUT_BROKER: URL_, TURNOUT_LOG_LEVEL: 'info', ...env }, { nodeArgs: childNodeArgs() });
  let ended = false;
  void t.exited.then(() => (ended = true));
  return {
    pid: t.child.pid as number,
    check: () => {
      if (ended) throw new Error('turnout exited');
      // A broker restart (another run's fault test) makes a round meaningless: redo it.
      if (t.logs().some((l) => String(l.msg).startsWith('lost the RabbitMQ connection'))) throw new Error('turnout lost its RabbitMQ connection');
    },
    stop: async () => void (await t.kill()),
  };
}

class Rabbit {
  private conn!: amqp.ChannelModel;
  private ch!: amqp.ConfirmChannel;
  private readonly made: string[];
  readonly tag = randomUUID().slice(0, 8);

  /** `inherit`: queues a broken predecessor made, deleted by this one's close(). */
  constructor(inherit: string[] = []) {
    this.made = inherit;
  }

  get queues(): string[] {
    return this.made;
  }

  broken = false;

  async open(): Promise<this> {
    this.conn = await amqp.connect(URL_);
    this.conn.on('error', () => {});
    this.conn.on('close', () => (this.broken = true));
    this.ch = await this.conn.createConfirmChannel();
    this.ch.on('error', () => {});
    return this;
  }

  async queue(label: string): Promise<string> {
    const name = `turnout-bench.${this.tag}.${label}`;
    await this.ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    this.made.push(name);
    return name;
  }

  async count(queue: string): Promise<number> {
    return (await this.ch.checkQueue(queue)).messageCount;
  }

  async purge(queue: string): Promise<void> {
    await this.ch.purgeQueue(queue);
  }

  /** Publishes n persistent messages with confirms, a window of 2 000 outstanding. */
  async fill(queue: string, n: number, prefix: string): Promise<void> {
    const window = 2000;
    for (let i = 0; i < n; i += window) {
      const pending: Promise<void>[] = [];
      for (let j = i; j < Math.min(n, i + window); j++) {
        pending.push(new Promise((resolve, reject) => {
          this.ch.sendToQueue(queue, PAYLOAD, { persistent: true, messageId: `${prefix}${j}`, contentType: 'application/json', headers: HEADERS }, (err: unknown) => (err ? reject(err) : resolve()));
        }));
      }
      await Promise.all(pending);
    }
    // Let the broker finish writing the backlog before the clock starts.
    await sleep(2000);
  }

  /** A paced producer stamping each message with CLOCK_MONOTONIC. */
  async pacedPublish(queue: string, rate: number, n: number, prefix: string): Promise<LatencyRecorder> {
    const confirms: Promise<void>[] = [];
    const lag = await paced(rate, n, (i) => {
      confirms.push(new Promise((resolve, reject) => {
        this.ch.sendToQueue(queue, PAYLOAD, {
          persistent: true,
          messageId: `${prefix}${i}`,
          contentType: 'application/json',
          headers: { ...HEADERS, [SENT_HEADER]: String(monoNs()) },
        }, (err: unknown) => (err ? reject(err) : resolve()));
      }));
    });
    await Promise.all(confirms);
    return lag;
  }

  async close(): Promise<void> {
    const left: string[] = [];
    for (const q of this.made) await this.ch.deleteQueue(q).catch(() => left.push(q));
    this.made.splice(0, this.made.length, ...left);
    await this.conn.close().catch(() => {});
  }
}

/** Waits for the app to have seen n messages, failing early when the run broke. */
async function waitApp(control: BenchAppControl, n: number, timeoutMs: number, runner: Runner, rabbit: Rabbit): Promise<Awaited<ReturnType<BenchAppControl['waitFor']>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await control.waitFor(n, 2000);
    } catch (err) {
      runner.check();
      if (rabbit.broken) throw new Error('the benchmark lost its RabbitMQ connection');
      if (Date.now() > deadline) throw err;
    }
  }
}

interface Result {
  scenario: 'consumer' | 'router';
  system: 'baseline' | 'turnout' | 'turnout-translate';
  messages: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: number;
  problems: string[];
}

interface Options {
  messages: number;
  rate: number;
  paced: number;
  concurrency: number;
  /** The translators file of turnout-translate. */
  translators: string;
}

/** The version the app must see on every message of a system. */
const DELIVERED_VERSION: Record<Result['system'], string> = { baseline: '1', turnout: '1', 'turnout-translate': '2' };

async function consumerCase(system: Result['system'], o: Options, rabbit: Rabbit, appUrl: string, control: BenchAppControl): Promise<Result> {
  const q = await rabbit.queue(`consumer-${system}`);
  const dlq = await rabbit.queue(`consumer-${system}-dlq`);
  const prefix = `${system}-${randomUUID().slice(0, 6)}-`;
  await rabbit.fill(q, o.messages, prefix);
  await control.reset(prefix);
  const runner = system === 'baseline'
    ? await startBaseline(['--baseline-consumer', q, appUrl, String(o.concurrency)])
    : await startTurnoutRunner({
      TURNOUT_SOURCE: q, TURNOUT_APP_URL: appUrl, TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: String(o.concurrency),
      ...(system === 'turnout-translate' ? { TURNOUT_ACCEPT: '2', TURNOUT_TRANSLATORS: o.translators } : {}),
    });
  const problems: string[] = [];
  try {
    const t = await waitApp(control, o.messages, 600_000, runner, rabbit);
    const perSecond = (o.messages - 1) / (Number(BigInt(t.lastNs) - BigInt(t.firstNs)) / 1e9);
    await sleep(300);
    runner.check();
    const after = await control.waitFor(o.messages);
    if (after.duplicates > 0) problems.push(`${after.duplicates} duplicates`);
    const wrong = after.count - (after.versions[DELIVERED_VERSION[system]] ?? 0);
    if (wrong > 0) problems.push(`${wrong} messages not delivered as version ${DELIVERED_VERSION[system]} (${JSON.stringify(after.versions)})`);
    // latency at a paced rate into the now empty queue
    const prefix2 = `${system}-paced-${randomUUID().slice(0, 6)}-`;
    await control.reset(prefix2);
    await rabbit.pacedPublish(q, o.rate, o.paced, prefix2);
    const l = await waitApp(control, o.paced, 60_000, runner, rabbit);
    if (l.duplicates > 0) problems.push(`${l.duplicates} duplicates (paced)`);
    const lat = new LatencyRecorder();
    lat.recordAll(await control.latencies());
    if ((await rabbit.count(q)) !== 0) problems.push('source not empty');
    if ((await rabbit.count(dlq)) !== 0) problems.push('dead-lettered messages');
    runner.check();
    return { scenario: 'consumer', system, messages: o.messages, perSecond, p50Ms: lat.percentile(50), p99Ms: lat.percentile(99), rssMiB: peakRssMiB(runner.pid), problems };
  } finally {
    await runner.stop();
  }
}

async function routerCase(system: Result['system'], o: Options, rabbit: Rabbit): Promise<Result> {
  const ingress = await rabbit.queue(`router-${system}-ingress`);
  const blue = await rabbit.queue(`router-${system}-blue`);
  const green = await rabbit.queue(`router-${system}-green`);
  const dlq = await rabbit.queue(`router-${system}-dlq`);
  const prefix = `${system}-${randomUUID().slice(0, 6)}-`;
  await rabbit.fill(ingress, o.messages, prefix);
  const runner = system === 'baseline'
    ? await startBaseline(['--baseline-router', ingress, blue, green, String(o.concurrency)])
    : await startTurnoutRunner({ TURNOUT_SOURCE: ingress, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_GREEN_WEIGHT: '50', TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: String(o.concurrency) });
  const problems: string[] = [];
  let sink: amqp.ChannelModel | undefined;
  try {
    // Throughput: poll blue + green until every message arrived.
    let first = 0n;
    let last = 0n;
    const deadline = Date.now() + 600_000;
    let routed = 0;
    let split = { blue: 0, green: 0 };
    for (;;) {
      split = { blue: await rabbit.count(blue), green: await rabbit.count(green) };
      routed = split.blue + split.green;
      const now = monoNs();
      if (routed > 0 && first === 0n) first = now;
      if (routed >= o.messages) {
        last = now;
        break;
      }
      if (Date.now() > deadline) throw new Error(`only ${routed}/${o.messages} routed`);
      runner.check();
      await sleep(25);
    }
    const perSecond = o.messages / (Number(last - first) / 1e9);
    await sleep(300);
    const total = (await rabbit.count(blue)) + (await rabbit.count(green));
    if (total !== o.messages) problems.push(`${total} routed for ${o.messages} sent`);
    if (split.blue === 0 || split.green === 0) problems.push(`one-sided split ${JSON.stringify(split)}`);
    await rabbit.purge(blue);
    await rabbit.purge(green);
    // Latency: a sink takes blue and green; a paced producer feeds ingress.
    sink = await amqp.connect(URL_);
    const sch = await sink.createChannel();
    const lat = new LatencyRecorder();
    const seen = new Set<string>();
    let dups = 0;
    const onMessage = (m: amqp.ConsumeMessage | null): void => {
      if (!m) return;
      const now = monoNs();
      const id = String(m.properties.messageId);
      if (seen.has(id)) dups++;
      seen.add(id);
      const sent = (m.properties.headers as Record<string, unknown> | undefined)?.[SENT_HEADER];
      if (sent !== undefined) lat.record(Number(now - BigInt(String(sent))) / 1e6);
    };
    await sch.consume(blue, onMessage, { noAck: true });
    await sch.consume(green, onMessage, { noAck: true });
    const prefix2 = `${system}-paced-${randomUUID().slice(0, 6)}-`;
    await rabbit.pacedPublish(ingress, o.rate, o.paced, prefix2);
    const until = Date.now() + 60_000;
    while (seen.size < o.paced && Date.now() < until) await sleep(20);
    runner.check();
    if (seen.size < o.paced) problems.push(`${o.paced - seen.size} paced messages not routed`);
    if (dups > 0) problems.push(`${dups} duplicates (paced)`);
    if ((await rabbit.count(ingress)) !== 0) problems.push('ingress not empty');
    if ((await rabbit.count(dlq)) !== 0) problems.push('dead-lettered messages');
    return { scenario: 'router', system, messages: o.messages, perSecond, p50Ms: lat.percentile(50), p99Ms: lat.percentile(99), rssMiB: peakRssMiB(runner.pid), problems };
  } finally {
    await sink?.close().catch(() => {});
    await runner.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: process.env.TURNOUT_BENCH_MESSAGES ?? '100000' },
      rounds: { type: 'string', default: process.env.TURNOUT_BENCH_ROUNDS ?? '3' },
      rate: { type: 'string', default: '1000' },
      paced: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '16' },
      only: { type: 'string' },
      'no-translate': { type: 'boolean', default: false },
      'baseline-nodelay': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const u = new URL(URL_);
  await skipUnlessReachable('RabbitMQ', u.hostname, Number(u.port || 5672));
  const dir = mkdtempSync(join(tmpdir(), 'turnout-bench-amqp-'));
  const translators = join(dir, 'translators.yaml');
  writeFileSync(translators, TRANSLATORS_YAML);
  const o: Options = { messages: Number(values.messages), rate: Number(values.rate), paced: Number(values.paced), concurrency: Number(values.concurrency), translators };
  const rounds = Number(values.rounds);
  if (values['baseline-nodelay']) process.env.TURNOUT_BENCH_BASELINE_NODELAY = '1';
  const scenarios = (values.only ?? 'consumer,router').split(',') as Result['scenario'][];
  const app = await startBenchApp();
  const control = new BenchAppControl(app.base);
  let rabbit = await new Rabbit().open();
  const results: (Result & { round: number })[] = [];
  const started = Date.now();
  try {
    for (let round = 1; round <= rounds; round++) {
      // Alternate who goes first: the machine and the broker warm up and drift.
      const order: Result['system'][] = round % 2 ? ['baseline', 'turnout'] : ['turnout', 'baseline'];
      for (const scenario of scenarios) {
        // The translated case after the pair: consumer scenario only (the router never parses a body).
        const systems = scenario === 'consumer' && !values['no-translate'] ? [...order, 'turnout-translate' as const] : order;
        for (const system of systems) {
          for (let attempt = 1; ; attempt++) {
            try {
              const r = scenario === 'consumer' ? await consumerCase(system, o, rabbit, app.url, control) : await routerCase(system, o, rabbit);
              results.push({ ...r, round });
              console.error(JSON.stringify(results.at(-1)));
              break;
            } catch (err) {
              // e.g. RabbitMQ restarted by a test run: the figures would be meaningless, so the case runs again
              console.error(`${scenario}/${system} round ${round} attempt ${attempt} broke: ${(err as Error).message}`);
              if (attempt >= 3) throw err;
              await rabbit.close().catch(() => {});
              await sleep(15_000);
              rabbit = await new Rabbit(rabbit.queues).open();
            }
          }
        }
      }
    }
  } finally {
    await rabbit.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const row = (r: Result, label: string, ratio: string): string[] =>
    [r.scenario, r.system, label, fmt(r.perSecond), ratio, fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.rssMiB, 1), r.problems.length ? `INVALID: ${r.problems.join('; ')}` : 'all accounted for'];
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const scenario of scenarios) {
    const med = (system: Result['system']): Result => {
      const of = results.filter((r) => r.scenario === scenario && r.system === system);
      return {
        scenario, system, messages: o.messages,
        perSecond: median(of.map((r) => r.perSecond)), p50Ms: median(of.map((r) => r.p50Ms)), p99Ms: median(of.map((r) => r.p99Ms)), rssMiB: median(of.map((r) => r.rssMiB)),
        problems: of.flatMap((r) => r.problems),
      };
    };
    for (const r of results.filter((x) => x.scenario === scenario)) rows.push(row(r, `round ${r.round}`, ''));
    const b = med('baseline');
    const t = med('turnout');
    const ratio = t.perSecond / b.perSecond;
    rows.push(row(b, '**median**', ''), row(t, '**median**', `${fmt(ratio * 100)} %`));
    if (results.some((r) => r.scenario === scenario && r.system === 'turnout-translate')) {
      const tr = med('turnout-translate');
      rows.push(row(tr, '**median**', `${fmt((tr.perSecond / b.perSecond) * 100)} % (info)`));
    }
    verdicts.push(`${scenario}: turnout at ${fmt(ratio * 100)} % of the baseline's throughput (target >= 80 %): ${ratio >= 0.8 ? 'met' : 'NOT met'}`);
  }
  const text = [
    `machine: ${describeMachine()}; RabbitMQ at ${u.host}`,
    `${o.messages} messages of ${PAYLOAD.length} B per throughput case (persistent, classic queues); latency: ${o.paced} messages paced at ${o.rate} msg/s; ` +
      `prefetch/concurrency ${o.concurrency}; baseline TCP_NODELAY ${values['baseline-nodelay'] ? 'on' : 'off (amqplib default)'}; ${rounds} round(s), order alternating; run took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    '',
    markdownTable(['scenario', 'system', 'round', 'msg/s', 'of baseline', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'messages'], rows),
    '',
    ...verdicts,
  ].join('\n');
  console.log(text);
  if (values.out) writeFileSync(values.out, `${text}\n`);
  // Exit status for `npm run bench`: a missed target, or a message lost, duplicated or untranslated.
  if (verdicts.some((v) => v.endsWith('NOT met')) || results.some((r) => r.problems.length > 0)) process.exitCode = 1;
}

// Under the image's runtime unless BENCH_RUNTIME=host (bench/lib/runtime.ts).
const compiled = await runCompiled(import.meta.url);
if (compiled !== undefined) process.exit(compiled);
const argv = process.argv.slice(2);
if (argv[0] === '--baseline-consumer') await baselineConsumer(argv[1] as string, argv[2] as string, Number(argv[3]));
else if (argv[0] === '--baseline-router') await baselineRouter(argv[1] as string, argv[2] as string, argv[3] as string, Number(argv[4]));
else await main();
