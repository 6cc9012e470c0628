// Soak benchmark (issue 11, item 6): one turnout consumer on RabbitMQ for a
// long time at a steady 1 000 msg/s, with a mix of what it does: pass
// (v2, the app accepts), translate (v1 → v2 with the README's example step), defer
// (v3, which no chain reaches: deferred once, then dead-lettered
// `unsupported-version`) and dead-letter (the app answers 400: `rejected`).
// Every 10 s it samples turnout's RSS (/proc/<pid>/status VmRSS), V8 heap
// and event-loop delay (turnout's own /metrics: nodejs_heap_size_used_bytes,
// nodejs_eventloop_lag_p99_seconds, which prom-client resets at every scrape,
// so each row is that 10 s window; the figure includes the monitor's 10 ms
// sampling interval). At the end the producer stops and every message must
// reach its end: the app once, or the DLQ once with the expected reason.
//
// Targets (exit 1 when one is missed):
//   - RSS growth ≤ 5 MiB from the reference point to the end. The reference
//     is minute 10 of a 60-minute run, i.e. the first sixth of the run, the
//     same share for shorter runs (minute 10 of 60; 20 s of a 2-minute run);
//   - event-loop delay p99 ≤ 20 ms in every window after the first minute
//     (start-up and JIT warm-up are not the steady state; for runs shorter
//     than 6 minutes, after the first sixth);
//   - nothing lost, nothing doubled, nothing misplaced.
//
// Not part of `npm test`. Runs compiled, with the image's node flags and
// malloc settings (bench/lib/runtime.ts), like the other broker benchmarks.
//
//   npm run bench -- soak [--minutes 60] [--rate 1000] [--concurrency 16]
//   (TURNOUT_BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { delayQueueName } from '../adapters/amqp/delay.ts';
import { CLI } from '../test/support/process.ts';
import { freePort } from '../test/support/ports.ts';
import { metricValue } from '../test/support/metrics.ts';
import { Ledger, type End } from './lib/ledger.ts';
import { SoakRabbit } from './lib/soak-rabbit.ts';
import { describeMachine } from './lib/machine.ts';
import { benchPayload, TRANSLATORS_YAML, VERSION_HEADER } from './lib/payload.ts';
import { childNodeArgs, runCompiled } from './lib/runtime.ts';
import { skipUnlessReachable } from './lib/skip.ts';
import { fmt, markdownTable } from './lib/table.ts';

const AMQP_URL = process.env.TURNOUT_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MiB = 1024 * 1024;
const SAMPLE_MS = 10_000;
const RSS_GROWTH_MIB = 5;
const LOOP_P99_MS = 20;
const DEFER_DELAY_MS = 2000;

/** The mix, by message number: 70 % pass, 20 % translate, 5 % defer, 5 % dead-letter. */
type Kind = 'pass' | 'translate' | 'defer' | 'reject';
const kindOf = (n: number): Kind => {
  const r = n % 20;
  return r < 14 ? 'pass' : r < 18 ? 'translate' : r === 18 ? 'defer' : 'reject';
};
const endOf = (n: number): End => {
  const k = kindOf(n);
  return k === 'defer' ? { at: 'dlq', reason: 'unsupported-version' } : k === 'reject' ? { at: 'dlq', reason: 'rejected' } : { at: 'app' };
};
const VERSION: Record<Kind, string> = { pass: '2', translate: '1', defer: '3', reject: '2' };

interface Sample {
  t: number;
  rssMiB: number;
  heapMiB: number;
  loopP99Ms: number;
  loopMaxMs: number;
  published: number;
  atApp: number;
  atDlq: number;
  backlog: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '60' }, rate: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '16' } } });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const concurrency = Number(values.concurrency);
  if (!(minutes > 0) || !(rate > 0) || !(concurrency > 0)) throw new Error('--minutes, --rate and --concurrency must be positive numbers');
  const broker = new URL(AMQP_URL);
  await skipUnlessReachable('RabbitMQ', broker.hostname, Number(broker.port || 5672));

  const runMs = minutes * 60_000;
  const referenceMs = runMs / 6;
  const loopFromMs = Math.min(60_000, runMs / 6);
  const tag = `soak-${randomUUID().slice(0, 8)}`;
  const source = `turnout-bench.${tag}`;
  const dlq = `${source}.dlq`;
  const prefix = `${tag}-`;
  const idOf = (n: number): string => `${prefix}${n}`;
  const numberOf = (id: string | undefined): number | undefined => (id?.startsWith(prefix) ? Number(id.slice(prefix.length)) : undefined);
  const ledger = new Ledger(Math.ceil((rate * runMs) / 1000) + 1000, endOf);
  const v1 = benchPayload();
  const v2 = Buffer.from(JSON.stringify({ ...(JSON.parse(v1.toString()) as Record<string, unknown>), email: undefined, contact: { email: 'x@y.example' } }));

  // The app: 200, or 400 for the dead-letter share; counts what arrives, and checks the translated ones.
  let translatedSeen = 0;
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const n = numberOf(String(req.headers['x-turnout-message-id'] ?? ''));
      if (n !== undefined && kindOf(n) === 'reject') {
        res.writeHead(400).end('no');
        return;
      }
      if (req.headers['x-turnout-translated-from'] === '1') translatedSeen++;
      ledger.atApp(n);
      res.writeHead(200).end('ok');
    });
  });
  app.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/messages`;

  // The DLQ is read as it fills, so that an hour of dead letters does not pile up in RabbitMQ.
  const rabbit = new SoakRabbit({
    url: AMQP_URL,
    queues: [source],
    dlq,
    onDead: (m) => ledger.atDlq(numberOf(String(m.properties.messageId)), String((m.properties.headers as Record<string, unknown> | undefined)?.['x-turnout-dlq-reason'])),
  });
  await rabbit.open();

  const dir = mkdtempSync(join(tmpdir(), 'turnout-soak-'));
  const translators = join(dir, 'translators.yaml');
  writeFileSync(translators, TRANSLATORS_YAML);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let logLines = 0;
  let errorLines = 0;
  const child = spawn(process.execPath, [...childNodeArgs(), CLI, 'run'], {
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TURNOUT_'))),
      TURNOUT_BROKER: AMQP_URL,
      TURNOUT_SOURCE: source,
      TURNOUT_DLQ: dlq,
      TURNOUT_APP_URL: appUrl,
      TURNOUT_ACCEPT: '2',
      TURNOUT_TRANSLATORS: translators,
      TURNOUT_DEFER_DELAY: String(DEFER_DELAY_MS),
      TURNOUT_MAX_DEFERRALS: '1',
      TURNOUT_CONCURRENCY: String(concurrency),
      TURNOUT_PORT: String(port),
      TURNOUT_HOST: '127.0.0.1',
      TURNOUT_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = String(signal ?? code)));
  // Logs are counted, not kept: keeping an hour of them would grow this process, not turnout.
  let partial = '';
  const onLog = (d: Buffer): void => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    logLines += lines.length;
    for (const l of lines) if (l.includes('"level":"error"') || l.includes('"level":"fatal"')) {
      errorLines++;
      if (errorLines <= 5) process.stderr.write(`turnout: ${l}\n`);
    }
  };
  child.stdout.on('data', onLog);
  child.stderr.on('data', onLog);
  const pid = child.pid as number;

  const cleanup = async (): Promise<void> => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(35_000).then(() => child.kill('SIGKILL'))]);
    }
    await rabbit.deleteQueues([source, delayQueueName(source), dlq]);
    await rabbit.close();
    await new Promise<void>((r) => app.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let ready = false; !ready; ) {
      if (exited !== undefined) throw new Error(`turnout exited (${exited}) before it was ready`);
      ready = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
      if (!ready) await sleep(100);
    }
    process.stderr.write(`soak: ${minutes} min at ${rate} msg/s (70 % pass, 20 % translate, 5 % defer, 5 % dead-letter), concurrency ${concurrency}, turnout pid ${pid}, node ${childNodeArgs().join(' ') || '(host defaults)'}\n`);

    // The producer: a confirm channel, paced by the clock, catching up rather than drifting.
    let next = 0;
    let producerLagMaxMs = 0;
    const t0 = performance.now();
    // RabbitMQ is shared: a turnout that falls behind must not pile an hour of messages into it.
    const maxBacklog = rate * 30;
    let pausedMs = 0;
    let checkedAt = 0;
    const producing = (async () => {
      while (performance.now() - t0 < runMs) {
        if (performance.now() - checkedAt > 1000) {
          checkedAt = performance.now();
          if (!rabbit.up || ((await rabbit.depth(source)) ?? 0) > maxBacklog) {
            // Paused: the schedule is shifted by the pause, so no message number is skipped.
            await sleep(1000);
            pausedMs += performance.now() - checkedAt;
            continue;
          }
        }
        const now = performance.now();
        const due = Math.floor(((now - t0 - pausedMs) * rate) / 1000);
        producerLagMaxMs = Math.max(producerLagMaxMs, due > next ? ((due - next) * 1000) / rate : 0);
        for (; next < due; next++) {
          const n = next;
          const k = kindOf(n);
          // Counted when sent: the app may see a message before its publisher sees the confirm.
          ledger.published(n);
          rabbit.publish(source, k === 'pass' || k === 'reject' ? v2 : v1, {
            persistent: true,
            messageId: idOf(n),
            contentType: 'application/json',
            headers: { [VERSION_HEADER]: VERSION[k] },
          }, () => {});
        }
        await sleep(5);
      }
      for (const until = Date.now() + 120_000; rabbit.pending > 0 && Date.now() < until; ) await sleep(100);
    })();

    const samples: Sample[] = [];
    const sample = async (): Promise<void> => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
      const r = ledger.report();
      const backlog = (await rabbit.depth(source)) ?? NaN;
      const s: Sample = {
        t: performance.now() - t0,
        rssMiB: rss,
        heapMiB: metricValue(text, 'nodejs_heap_size_used_bytes') / MiB,
        loopP99Ms: metricValue(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
        loopMaxMs: metricValue(text, 'nodejs_eventloop_lag_max_seconds') * 1000,
        published: r.published,
        atApp: r.atApp,
        atDlq: r.atDlq,
        backlog,
      };
      samples.push(s);
      const clock = `${Math.floor(s.t / 60_000)}:${String(Math.round((s.t % 60_000) / 1000)).padStart(2, '0')}`;
      process.stderr.write(`soak ${clock}  RSS ${fmt(s.rssMiB, 1)} MiB  heap ${fmt(s.heapMiB, 1)} MiB  loop p99 ${fmt(s.loopP99Ms, 1)} ms (max ${fmt(s.loopMaxMs, 1)})  published ${s.published}  app ${s.atApp}  dlq ${s.atDlq}  backlog ${s.backlog}\n`);
    };
    // The first scrape only resets the event-loop histogram: rows start one window in.
    await fetch(`${base}/metrics`).then((r) => r.text());
    while (performance.now() - t0 < runMs) {
      await sleep(Math.max(0, SAMPLE_MS * (samples.length + 1) - (performance.now() - t0)));
      if (exited !== undefined) throw new Error(`turnout exited (${exited}) during the run`);
      await sample();
    }
    await producing;
    if (rabbit.pending !== 0) throw new Error(`${rabbit.pending} publishes never confirmed`);

    // Everything reaches its end: the deferred ones come back after the defer delay, then go to the DLQ.
    // Whether turnout kept pace: what waited in the source queue when the producer stopped.
    const backlogAtEnd = (await rabbit.depth(source)) ?? NaN;
    // A backlog left by a slow machine drains first: give up after a minute without progress, or after 5 minutes.
    let open = ledger.outstanding();
    const settleBy = Date.now() + 5 * 60_000;
    for (let still = Date.now(); open > 0 && Date.now() - still < DEFER_DELAY_MS + 60_000 && Date.now() < settleBy; ) {
      await sleep(1000);
      const now = ledger.outstanding();
      if (now < open) still = Date.now();
      open = now;
    }
    await sleep(1000);
    const final = ledger.report();
    const translatedAtApp = ledger.arrivedAtApp((n) => kindOf(n) === 'translate');
    // Each loss can give back what turnout held unacked (its prefetch) and what the producer had unconfirmed (resent).
    const allowedDuplicates = rabbit.losses * concurrency + rabbit.resent;
    const backlog = (await rabbit.depth(source)) ?? NaN;

    // ---- verdict ----
    const ref = samples.find((s) => s.t >= referenceMs) ?? samples[0];
    const last = samples[samples.length - 1];
    if (!ref || !last) throw new Error('no samples: the run was shorter than one sample interval');
    const growth = last.rssMiB - ref.rssMiB;
    // A row covers the 10 s before it: it counts once all of that lies past the warm-up.
    const steady = samples.filter((s) => s.t - SAMPLE_MS >= loopFromMs - 500);
    const worstLoop = Math.max(...steady.map((s) => s.loopP99Ms));
    const rows = samples.map((s) => [`${(s.t / 60_000).toFixed(2)}`, fmt(s.rssMiB, 1), fmt(s.heapMiB, 1), fmt(s.loopP99Ms, 1), fmt(s.loopMaxMs, 1), s.published, s.atApp, s.atDlq, s.backlog]);
    process.stdout.write(`\n## Soak: RabbitMQ, ${minutes} min at ${rate} msg/s\n\n${describeMachine()}; load average at the end ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);
    process.stdout.write(`${markdownTable(['minute', 'RSS MiB', 'heap MiB', 'loop p99 ms', 'loop max ms', 'published', 'at app', 'at DLQ', 'backlog'], rows)}\n\n`);
    const checks: [string, boolean, string][] = [
      [`RSS growth ≤ ${RSS_GROWTH_MIB} MiB`, growth <= RSS_GROWTH_MIB, `${fmt(ref.rssMiB, 1)} MiB at minute ${(ref.t / 60_000).toFixed(2)} → ${fmt(last.rssMiB, 1)} MiB at the end: ${growth >= 0 ? '+' : ''}${fmt(growth, 1)} MiB`],
      [`event-loop delay p99 ≤ ${LOOP_P99_MS} ms`, steady.length > 0 && worstLoop <= LOOP_P99_MS, `worst 10 s window after minute ${(loopFromMs / 60_000).toFixed(2)}: ${fmt(worstLoop, 1)} ms (median ${fmt(steady.map((s) => s.loopP99Ms).sort((a, b) => a - b)[Math.floor(steady.length / 2)], 1)} ms)`],
      [`kept pace (backlog ≤ ${rate} when the producer stopped, never over ${maxBacklog})`, backlogAtEnd <= rate && pausedMs === 0, `${backlogAtEnd} messages waiting then; producer paused ${fmt(pausedMs / 1000, 0)} s for a backlog over ${maxBacklog}`],
      ['nothing lost', final.missing === 0 && backlog === 0, `${final.published} published, ${final.missing} not at their end, ${backlog} of them still waiting in the source queue${final.missing > 0 && final.missing <= backlog ? ' (behind, not lost)' : ''}`],
      // A lost connection (another test restarting the shared RabbitMQ) may double what was unconfirmed or unacked then.
      ['nothing doubled or misplaced', final.duplicates <= allowedDuplicates && final.misplaced === 0 && final.unknown === 0,
        `${final.duplicates} duplicates (allowed ${allowedDuplicates}: ${rabbit.losses} broker connection losses, ${rabbit.resent} publishes resent), ${final.misplaced} misplaced, ${final.unknown} unknown ids`],
      ['translated copies arrived as such', translatedSeen === translatedAtApp, `${translatedSeen} with x-turnout-translated-from: 1, ${translatedAtApp} v1 messages at the app`],
      // Errors are expected while the broker is away (dead-letter publishes fail and go back); otherwise none.
      ['turnout ran clean', exited === undefined && (errorLines === 0 || rabbit.losses > 0), `${logLines} log lines, ${errorLines} at error, ${rabbit.losses} broker connection losses; producer lag max ${fmt(producerLagMaxMs, 0)} ms`],
    ];
    for (const [what, ok, detail] of checks) process.stdout.write(`- ${ok ? 'MET   ' : 'MISSED'} ${what}: ${detail}\n`);
    const missed = checks.filter(([, ok]) => !ok).length;
    process.stdout.write(`\nverdict: ${missed === 0 ? 'all targets met' : `${missed} target(s) missed`}\n`);
    process.exitCode = missed === 0 ? 0 : 1;
  } finally {
    await cleanup();
  }
}

const code = await runCompiled(import.meta.url);
if (code !== undefined) process.exit(code);
else await main();
