// `turnout demo`: a complete rollout in one process on the embedded broker.
//
//   producer ──POST /v1/publish/ingress──▶ router turnout ──▶ orders.blue ─▶ blue turnout  ─▶ blue app  (v1 only)
//                                             (weight ramp)  └▶ orders.green ▶ green turnout ─▶ green app (v2 only)
//   green's dead-letter target is orders.blue; blue's is orders.dead.
//
// Timeline: the producer switches from v1 to v2 halfway; the green weight
// ramps 0 → 10 → 50 → 100; blue has no 2->1 step at first, so v2 messages
// that reach blue are deferred until the step ships (a hot reload of its
// translators file). Poison messages: not JSON, an unknown version (v9), and
// orders with a coupon, which crash the new green code.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { loadConfig, type FlagValues } from '../../config/load.ts';
import { sleep } from '../../lib/backoff.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { startRollout, type RolloutRun } from '../rollout/main.ts';
import { parsePlan } from '../rollout/plan.ts';
import { Turnout } from '../turnout.ts';
import { startBlueApp, startGreenApp, type DemoApp } from './apps.ts';

export interface DemoOptions {
  messages: number;
  rate: number;
  out: NodeJS.WritableStream;
  /** Ms to wait for the last messages after the producer stops. */
  settleTimeoutMs?: number;
  /** Let `turnout rollout` (scraping green's metrics) ramp the weight instead of the fixed ramp. */
  rollout?: boolean;
  /** With rollout: a green release that fails the orders of 20 % of customers. */
  failingGreen?: boolean;
  /** After the summary, keep every process and its status page up until this resolves (Ctrl-C). */
  hold?: Promise<void>;
}

const STEP_1_TO_2 = '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])';
const STEP_2_TO_1 = '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])';
const yamlSteps = (steps: Record<string, string>): string =>
  Object.entries(steps).map(([k, v]) => `"${k}": '${v}'`).join('\n') + '\n';

const QUEUES = { ingress: 'ingress', blue: 'orders.blue', green: 'orders.green', dead: 'orders.dead' };

type Kind = 'v1' | 'v2' | 'not-json' | 'v9' | 'coupon';

export async function runDemo(options: DemoOptions): Promise<number> {
  const { out, messages: total, rate } = options;
  const say = (line = ''): void => void out.write(`${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'turnout-demo-'));
  const blueSteps = join(dir, 'blue-translators.yaml');
  const greenSteps = join(dir, 'green-translators.yaml');
  await writeFile(blueSteps, '# the 2->1 step ships later\n');
  await writeFile(greenSteps, yamlSteps({ '1->2': STEP_1_TO_2 }));

  const logger = createLogger(process.env.TURNOUT_LOG_LEVEL ?? 'silent');
  const broker = new MemoryBroker({ queues: Object.values(QUEUES), onError: (err) => logger.error({ err }) });
  await broker.connect();
  const blueApp = await startBlueApp();
  const greenApp = await startGreenApp({ failingKeys: options.rollout === true && options.failingGreen === true });

  const common: FlagValues = { port: '0', host: '127.0.0.1', deferDelay: '400', maxDeferrals: '4', maxAttempts: '3', retryBackoff: '20', concurrency: '8' };
  const start = async (flags: FlagValues): Promise<{ turnout: Turnout; registry: Registry }> => {
    const registry = new Registry();
    const { config } = loadConfig({ ...common, ...flags }, {});
    return { turnout: await Turnout.start({ config, logger, broker, registry, defaultMetrics: false }), registry };
  };
  const router = await start({ source: QUEUES.ingress, blue: QUEUES.blue, green: QUEUES.green, dlq: QUEUES.dead, greenWeight: '0', ...(options.rollout ? { adminToken: DEMO_TOKEN } : {}) });
  const blue = await start({ source: QUEUES.blue, appUrl: blueApp.url, accept: '1', translators: blueSteps, dlq: QUEUES.dead });
  const green = await start({ source: QUEUES.green, appUrl: greenApp.url, accept: '2', translators: greenSteps, dlq: QUEUES.blue });

  // Workers start on the first translation otherwise: on a busy machine green's first
  // translated messages would wait past the rollout's first judged interval.
  await Promise.all([blue.turnout.warmTranslation(), green.turnout.warmTranslation()]);
  const rollout = options.rollout ? await startDemoRollout(router.turnout.port, green.turnout.port, logger) : undefined;
  say(`turnout demo: a blue/green rollout on the embedded broker${rollout ? ', run by turnout rollout' : ''}`);
  if (rollout) {
    say(`  producer → router (turnout rollout ramps ${ROLLOUT_STEPS.join('→')}, judging green's dead-letter ratio ≤ ${ROLLOUT_MAX} every ${ROLLOUT_INTERVAL}) → ${QUEUES.blue} (v1 app) / ${QUEUES.green} (v2 app${options.failingGreen ? ' that fails 20 % of customers' : ''})`);
  } else say(`  producer → router (weight ramps 0→10→50→100) → ${QUEUES.blue} (v1 app) / ${QUEUES.green} (v2 app)`);
  say(`  green dead-letters to ${QUEUES.blue}; blue dead-letters to ${QUEUES.dead}; ${total} messages at ${rate}/s`);
  // Each process serves its status page; the one to watch shows the ramp (the controller's, or the router's).
  const page = (port: number): string => `http://127.0.0.1:${port}/`;
  if (rollout) say(`  watch it live: ${page(rollout.run.port)} (the rollout controller; admin token ${DEMO_TOKEN})`);
  else say(`  watch it live: ${page(router.turnout.port)} (the router)`);
  if (!options.hold) say('  (the demo takes seconds; --hold keeps the pages up afterwards, --rate 30 slows it down to watch)');
  say(`  status pages: router ${page(router.turnout.port)} · blue ${page(blue.turnout.port)} · green ${page(green.turnout.port)}`);
  say();

  const produced = new Map<string, Kind>();
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const progress = async (label: string): Promise<void> => {
    const [translated, deferred, dead] = await Promise.all([
      sum(blue.registry, green.registry)('turnout_messages_translated_total'),
      sum(blue.registry, green.registry)('turnout_messages_deferred_total'),
      sum(router.registry, blue.registry, green.registry)('turnout_messages_dead_lettered_total'),
    ]);
    say(`${elapsed().padStart(6)}  weight ${String(router.turnout.router.weight).padStart(3)}%  produced ${String(produced.size).padStart(4)}/${total}` +
      `  blue ${String(blueApp.accepted.size).padStart(4)}  green ${String(greenApp.accepted.size).padStart(4)}` +
      `  translated ${String(translated).padStart(4)}  deferred ${String(deferred).padStart(3)}  dead-lettered ${String(dead).padStart(3)}${label ? `  ← ${label}` : ''}`);
  };

  // The rollout plan, keyed by share of messages produced.
  const ramp = (at: number, weight: number): { at: number; label: string; act: () => Promise<void> }[] =>
    rollout ? [] : [{ at, label: `green weight ${weight}%`, act: async () => router.turnout.router.setWeight(weight, 'admin') }];
  const plan: { at: number; label: string; act: () => Promise<void> }[] = [
    ...ramp(0.15, 10),
    ...ramp(0.35, 50),
    { at: 0.5, label: 'producer switches to v2', act: async () => {} },
    { at: 0.65, label: 'blue ships its 2->1 step (translators reloaded)', act: () => writeFile(blueSteps, yamlSteps({ '1->2': STEP_1_TO_2, '2->1': STEP_2_TO_1 })) },
    ...ramp(0.8, 100),
  ];
  // The controller's transitions, as progress lines.
  let seen = 0;
  const rolloutNews = async (): Promise<void> => {
    if (!rollout) return;
    const h = rollout.run.controller.status.history;
    for (; seen < h.length; seen++) {
      const e = h[seen];
      if (e && ['step', 'passed', 'failed', 'paused', 'rolled-back', 'promoted', 'aborted'].includes(e.event)) await progress(`rollout: ${e.detail ?? e.event}`);
    }
  };

  const interval = 1000 / rate;
  let lastReport = Date.now();
  // Under the controller, production goes on until the rollout has ended (at most 10 × the messages).
  const producing = (i: number): boolean => (rollout ? i < total * 10 && (i < total || !rollout.run.controller.ended) : i < total);
  for (let i = 0; producing(i); i++) {
    await rolloutNews();
    const share = i / total;
    while (plan.length > 0 && share >= (plan[0]?.at ?? 2)) {
      const step = plan.shift() as (typeof plan)[number];
      await step.act();
      await progress(step.label);
      lastReport = Date.now();
    }
    const kind = kindOf(i, share);
    const id = `order-${String(i).padStart(5, '0')}`;
    await publish(router.turnout.port, id, kind, i);
    produced.set(id, kind);
    if (Date.now() - lastReport >= 1000) {
      lastReport = Date.now();
      await progress('');
    }
    const due = started + (i + 1) * interval;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await rolloutNews();
  await progress('producer done');

  // Wait until every message is accounted for and every queue is empty.
  const deadLetters = new Map<string, Record<string, string>>();
  const accounted = (): number => [...produced.keys()].filter((id) => blueApp.accepted.has(id) || greenApp.accepted.has(id) || deadLetters.has(id)).length;
  const deadline = Date.now() + (options.settleTimeoutMs ?? 30_000);
  for (;;) {
    for (const m of broker.drainQueue(QUEUES.dead)) deadLetters.set(m.id, m.headers);
    const depths = await Promise.all(Object.values(QUEUES).map((q) => broker.depth(q)));
    const busy = depths.some((d) => d.depth > 0 || d.inflight > 0);
    if ((!busy && accounted() === produced.size) || Date.now() > deadline) break;
    if (Date.now() - lastReport >= 1000) {
      lastReport = Date.now();
      await progress('settling');
    }
    await sleep(50);
  }
  await progress('done');

  const translated = await sum(blue.registry, green.registry)('turnout_messages_translated_total');
  const deferred = await sum(blue.registry, green.registry)('turnout_messages_deferred_total');
  const greenToBlue = await sum(green.registry)('turnout_messages_dead_lettered_total');
  const both = [...produced.keys()].filter((id) => blueApp.accepted.has(id) && greenApp.accepted.has(id)).length;
  const twice = [...blueApp.accepted.values(), ...greenApp.accepted.values()].filter((n) => n > 1).length;
  const lost = produced.size - accounted();
  const reasons = new Map<string, number>();
  for (const h of deadLetters.values()) reasons.set(h['x-turnout-dlq-reason'] ?? '?', (reasons.get(h['x-turnout-dlq-reason'] ?? '?') ?? 0) + 1);
  const kinds = countBy([...produced.values()]);

  say();
  const row = (label: string, n: number | string, note = ''): void => say(`  ${label.padEnd(34)}${String(n).padStart(6)}  ${note}`);
  say('  outcome                            messages');
  row('produced', produced.size, `v1 ${kinds.v1 ?? 0}, v2 ${kinds.v2 ?? 0}, poison: not-json ${kinds['not-json'] ?? 0}, v9 ${kinds.v9 ?? 0}, coupon ${kinds.coupon ?? 0}`);
  row('delivered to blue (v1 app)', blueApp.accepted.size);
  row('delivered to green (v2 app)', greenApp.accepted.size);
  row('translated (deliveries)', translated, '1->2 on green, 2->1 on blue');
  row('deferred (times)', deferred, 'returned to their queue to be seen later');
  row('green failures handed to blue', greenToBlue, "green's dead-letter target is blue's queue");
  row('dead-lettered (orders.dead)', deadLetters.size, [...reasons].map(([r, n]) => `${r} ${n}`).join(', '));
  row('delivered by both apps', both, 'must be 0: each message is processed by one side');
  row('delivered more than once', twice);
  row('lost', lost, lost === 0 ? 'every message accounted for' : 'MESSAGES UNACCOUNTED FOR');
  if (rollout) {
    const st = rollout.run.controller.status;
    say(`  rollout: ${st.phase} at weight ${st.weight}% (${st.reason ?? ''})`);
    for (const c of st.checks) say(`    check ${c.name}: ${c.value ?? 'no data'} (max ${c.max ?? '-'}) ${c.result}`);
  }
  say();
  if (options.hold) {
    say('  the status pages stay up (--hold): press Ctrl-C to end');
    await options.hold;
  }

  if (rollout) {
    rollout.run.controller.stop();
    await rollout.run.done;
    await rollout.run.close();
  }
  for (const sidecar of [router, green, blue]) await sidecar.turnout.shutdown();
  await Promise.all([blueApp.close(), greenApp.close()]);
  await rm(dir, { recursive: true, force: true });
  return lost === 0 && both === 0 ? 0 : 1;
}

const DEMO_TOKEN = 'demo-admin-token';
const ROLLOUT_STEPS = [25, 50, 100];
const ROLLOUT_INTERVAL = '1500ms';
// Green's normal share of dead-letters here is a few percent (the demo's
// poison messages); the failing release adds about 20 %.
const ROLLOUT_MAX = 0.15;

/** `turnout rollout` in this process: it ramps the router through its admin API and scrapes green's /metrics. */
async function startDemoRollout(routerPort: number, greenPort: number, logger: Logger): Promise<{ run: RolloutRun }> {
  const plan = parsePlan([
    `routers: ["http://127.0.0.1:${routerPort}"]`,
    `steps: ${JSON.stringify(ROLLOUT_STEPS)}`,
    `interval: ${ROLLOUT_INTERVAL}`,
    'analysis:',
    `  scrape: ["http://127.0.0.1:${greenPort}"]`,
    '  failureLimit: 0',
    '  noData: pause',
    '  checks:',
    '    - name: green-fallbacks',
    '      metric: dead-letter-ratio',
    `      sources: [${QUEUES.green}]`,
    `      max: ${ROLLOUT_MAX}`,
    '',
  ].join('\n'));
  const run = await startRollout({ plan, logger, adminToken: DEMO_TOKEN, port: 0, host: '127.0.0.1', defaultMetrics: false });
  return { run };
}

/** What the i-th message is: v1 then v2 from halfway, with a few poison messages sprinkled in. */
function kindOf(i: number, share: number): Kind {
  if (i % 97 === 13) return 'not-json';
  if (i % 89 === 7) return 'v9';
  if (share >= 0.5 && i % 41 === 3) return 'coupon';
  return share < 0.5 ? 'v1' : 'v2';
}

async function publish(port: number, id: string, kind: Kind, i: number): Promise<void> {
  const email = `customer${i % 50}@example.com`;
  const order = { orderId: id, amount: (i % 17) + 0.5 };
  let body: string;
  let version: string;
  switch (kind) {
    case 'v1':
      [body, version] = [JSON.stringify({ ...order, email }), '1'];
      break;
    case 'v2':
      [body, version] = [JSON.stringify({ ...order, contact: { email } }), '2'];
      break;
    case 'coupon':
      [body, version] = [JSON.stringify({ ...order, contact: { email }, coupon: 'SPRING' }), '2'];
      break;
    case 'not-json':
      [body, version] = ['{"orderId": truncated', '1'];
      break;
    case 'v9':
      [body, version] = [JSON.stringify({ ...order, email }), '9'];
      break;
  }
  const res = await fetch(`http://127.0.0.1:${port}/v1/publish/${QUEUES.ingress}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-schema-version': version, 'x-turnout-message-id': id, 'x-turnout-key': `customer-${i % 50}`, 'x-customer': `customer-${i % 50}` },
    body,
  });
  if (res.status !== 202) throw new Error(`publish of ${id} answered ${res.status}: ${await res.text()}`);
}

const sum = (...registries: Registry[]) => async (name: string): Promise<number> => {
  let n = 0;
  for (const r of registries) {
    const metric = r.getSingleMetric(name);
    if (!metric) continue;
    for (const v of (await metric.get()).values) n += v.value;
  }
  return n;
};

function countBy(items: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[i] = (out[i] ?? 0) + 1;
  return out;
}

export type { DemoApp };
