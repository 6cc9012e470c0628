// The status page's cost on the hot path: a router sidecar (embedded broker,
// in-process) routes messages as fast as it can for S seconds, with nobody looking, with
// one page open (GET /v1/status every second, what the page does), and with
// the equivalent of ten open tabs (every 100 ms). The page keeps nothing per
// message, so the three should route at the same rate; the reads themselves
// cost what the figures of one /metrics scrape cost.
//
// The cases run in alternating passes (none, page, ten tabs, none, …) and
// their figures are pooled (median), so a load change on a shared machine
// hits every case alike.
//
//   node bench/status.bench.ts [--seconds S] [--passes P]
//
// Exit status: 0 when every message was routed and one open page routes at
// ≥ 90 % of the rate with nobody looking; 1 otherwise.

import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { MemoryBroker } from '../adapters/memory/index.ts';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/log.ts';
import { Turnout } from '../src/turnout.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, passes: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const PASSES = Number(values.passes);
const TARGET = 0.9;

const CASES = [
  { name: 'nobody looking', everyMs: undefined },
  { name: 'one page open (1 read/s)', everyMs: 1000 },
  { name: 'ten tabs (10 reads/s)', everyMs: 100 },
] as const;

const broker = new MemoryBroker({ queues: ['in', 'b', 'g', 'dead'], onError: () => {} });
await broker.connect();
const { config } = loadConfig({ source: 'in', blue: 'b', green: 'g', greenWeight: '50', dlq: 'dead', port: '0', host: '127.0.0.1', concurrency: '64' }, {});
const turnout = await Turnout.start({ config, logger: createLogger('silent'), broker, registry: new Registry(), defaultMetrics: false });
const base = `http://127.0.0.1:${turnout.port}`;
const payload = Buffer.from(JSON.stringify({ orderId: 'o', amount: 1, email: 'someone@example.com', pad: 'x'.repeat(900) }));

const routed = (): number => turnout.router.counts.blue + turnout.router.counts.green;

async function pass(everyMs: number | undefined): Promise<{ rate: number; reads: number }> {
  let reads = 0;
  let polling = everyMs !== undefined;
  // The page is open before the clock starts: it was loaded once, then reads every everyMs.
  if (everyMs !== undefined) await fetch(`${base}/`).then((r) => r.text());
  const poller = everyMs === undefined ? Promise.resolve() : (async () => {
    while (polling) {
      await (await fetch(`${base}/v1/status`)).json();
      reads++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  const start = routed();
  const t0 = process.hrtime.bigint();
  const until = Date.now() + SECONDS * 1000;
  let n = 0;
  for (let i = 0; Date.now() < until; i++, n++) {
    await broker.publish('in', { id: `m${i}`, payload, headers: { 'x-schema-version': '1' }, key: `k${i % 500}` });
    // Keep the source short: the router, not the queue, should be what is measured.
    // and yield to I/O now and then, as a real broker connection would: the page's reads get served.
    if (i % 64 === 63) {
      await new Promise((r) => setImmediate(r));
      while (routed() - start < i - 512) await new Promise((r) => setImmediate(r));
    }
  }
  while (routed() - start < n) await new Promise((r) => setTimeout(r, 1));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  polling = false;
  await poller;
  // Every message accounted for: each is on blue or green exactly once.
  const landed = broker.drainQueue('b').length + broker.drainQueue('g').length;
  if (landed !== n) throw new Error(`published ${n}, found ${landed} on blue + green`);
  return { rate: n / seconds, reads };
}

const results = new Map<string, { rate: number[]; reads: number[] }>(CASES.map((c) => [c.name, { rate: [], reads: [] }]));
await pass(undefined); // warm-up: JIT, pools, queues
for (let p = 0; p < PASSES; p++) {
  for (const c of CASES) {
    const r = await pass(c.everyMs);
    const into = results.get(c.name) as { rate: number[]; reads: number[] };
    into.rate.push(r.rate);
    into.reads.push(r.reads);
  }
}
// What one read costs by itself: GET /v1/status on the idle sidecar.
const idle: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = process.hrtime.bigint();
  await (await fetch(`${base}/v1/status`)).json();
  idle.push(Number(process.hrtime.bigint() - t0) / 1e6);
  await new Promise((r) => setTimeout(r, 510)); // past the answer's 0.5 s reuse: every read is built afresh
}
await turnout.shutdown();
await broker.close();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number + (s[Math.ceil((s.length - 1) / 2)] as number)) / 2;
};
const baseline = median(results.get(CASES[0].name)?.rate ?? []);
console.log(`status page bench: ${SECONDS} s per pass, ${PASSES} passes, router role, embedded broker (figures from a shared machine are indicative only)\n`);
console.log('| case | routed msg/s (median) | vs nobody looking | /v1/status reads per pass |');
console.log('|---|---:|---:|---:|');
let ok = true;
for (const c of CASES) {
  const r = results.get(c.name) as { rate: number[]; reads: number[] };
  const rate = median(r.rate);
  const ratio = rate / baseline;
  if (c.everyMs === 1000 && ratio < TARGET) ok = false;
  console.log(`| ${c.name} | ${Math.round(rate)} | ${(ratio * 100).toFixed(1)} % | ${median(r.reads)} |`);
}
console.log(`\nGET /v1/status on the idle sidecar (built afresh each time): median ${median(idle).toFixed(2)} ms over ${idle.length} reads`);
console.log(`\ntarget: one open page routes at ≥ ${TARGET * 100} % of the rate with nobody looking: ${ok ? 'met' : 'MISSED'}`);
process.exitCode = ok ? 0 : 1;
