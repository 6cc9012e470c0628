// The fault schedule the broker fault-under-load tests share: while a stream
// of messages flows, the sidecar is SIGKILLed and restarted every few
// seconds, then the broker connection is delayed, cut, black-holed and
// refused through the fault proxy, then the app is slow, flaps and answers
// garbage. Each event that can leave messages finished-but-unacknowledged
// (a kill, a cut connection) is handed to the test first, so that it can read
// from the broker what was held at that moment: the bound on duplicates.

import assert from 'node:assert/strict';
import type { ChaosApp, ChaosDelivery } from './chaos-app.ts';
import type { FaultProxy } from './fault-proxy.ts';
import type { TurnoutProcess } from './process.ts';
import { sleep, waitFor } from './wait.ts';

export type Interruption = { kind: 'kill' | 'cut' | 'blackhole' | 'refuse'; gen: number; at: number };

/** The app phases a producer holds messages back for (producePaced). */
export type AppPhase = 'slow' | 'garbage';

/** Opened by runChaos as each app phase begins; all of them when it ends, however it ends. */
export class PhaseGates {
  private readonly opened = new Map<AppPhase, () => void>();
  private readonly gates = new Map<AppPhase, Promise<void>>();
  constructor() {
    for (const phase of ['slow', 'garbage'] as const) this.gates.set(phase, new Promise((resolve) => this.opened.set(phase, resolve)));
  }
  open(phase: AppPhase): void {
    this.opened.get(phase)?.();
  }
  openAll(): void {
    for (const open of this.opened.values()) open();
  }
  wait(phase: AppPhase): Promise<void> {
    return this.gates.get(phase) as Promise<void>;
  }
}

/** The share of the messages held back for each app phase. */
const HELD_BACK_PER_PHASE = 0.1;
const TICK_MS = 50;

/**
 * Sends `total` messages at a steady pace (`send(from, to)` sends that slice
 * of them), the first 80 % spread over 80 % of `ms`. The last 20 % wait for
 * the app's faults, 10 % from the start of the slow phase and 10 % from the
 * start of the garbage phase, so that each meets a flowing stream however long
 * the kills and broker faults before them took (Kafka's rebalances, a loaded
 * machine) and however fast turnout caught up with the backlog.
 */
export async function producePaced(o: { total: number; ms: number; gates: PhaseGates; send(from: number, to: number): Promise<void> }): Promise<void> {
  const perTick = Math.max(1, Math.ceil((o.total * TICK_MS) / o.ms));
  const reserve = Math.ceil((o.total * HELD_BACK_PER_PHASE) / perTick) * perTick;
  const held: { from: number; phase: AppPhase }[] = [{ from: o.total - 2 * reserve, phase: 'slow' }, { from: o.total - reserve, phase: 'garbage' }];
  let t0 = Date.now();
  let ticks = 0;
  for (let i = 0; i < o.total; i += perTick) {
    if (held[0] !== undefined && i >= held[0].from) {
      await o.gates.wait((held.shift() as { phase: AppPhase }).phase);
      t0 = Date.now();
      ticks = 0;
    }
    await o.send(i, Math.min(i + perTick, o.total));
    const ahead = t0 + ++ticks * TICK_MS - Date.now();
    if (ahead > 0) await sleep(ahead);
  }
}

export interface ChaosOptions {
  /** Starts generation `gen` of turnout (its app URL is app.urlFor(gen)) and waits until it is ready. */
  start(gen: number): Promise<TurnoutProcess>;
  proxy: FaultProxy;
  app: ChaosApp;
  kills: number;
  /** Runs while nothing else happens, right after the event: read what the broker holds. */
  onInterruption(e: Interruption): Promise<void>;
  /** Opened as the app phases begin (the producer's held-back messages). */
  gates: PhaseGates;
  log(line: string): void;
}

export interface ChaosResult {
  current: TurnoutProcess;
  gens: number;
  interruptions: Interruption[];
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  try {
    return await schedule(o);
  } finally {
    // A schedule that failed half-way leaves no producer waiting for ever (and its connection open).
    o.gates.openAll();
  }
}

async function schedule(o: ChaosOptions): Promise<ChaosResult> {
  const interruptions: Interruption[] = [];
  let gen = 0;
  let current = await o.start(gen);
  const interrupt = async (kind: Interruption['kind']): Promise<void> => {
    const e = { kind, gen, at: Date.now() };
    interruptions.push(e);
    await o.onInterruption(e);
  };
  const t0 = Date.now();
  const say = (s: string): void => o.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${s}`);

  for (let k = 0; k < o.kills; k++) {
    // Killed a few seconds into its work, not while it is still joining or connecting.
    await waitFor(`generation ${gen} delivering`, () => o.app.fromGen(gen) > 0, 60_000, 20);
    await sleep(2000 + Math.random() * 1500);
    await current.kill();
    say(`SIGKILL generation ${gen}`);
    await interrupt('kill');
    current = await o.start(++gen);
  }

  await sleep(1000);
  say('broker: delay 100 ms');
  await o.proxy.set({ kind: 'delay', ms: 100 });
  await sleep(2000);
  await o.proxy.set({ kind: 'pass' });
  say(`broker: cut (${o.proxy.open()} connections)`);
  o.proxy.cut();
  await interrupt('cut');
  await sleep(2000);
  say('broker: black-hole');
  await o.proxy.set({ kind: 'blackhole' });
  await interrupt('blackhole');
  await sleep(3000);
  await o.proxy.set({ kind: 'pass' });
  await sleep(2000);
  say('broker: refuse');
  await o.proxy.set({ kind: 'refuse' });
  await interrupt('refuse');
  await sleep(2000);
  await o.proxy.set({ kind: 'pass' });
  say('broker: pass');
  await sleep(1000);

  say('app: slow (150 ms)');
  await o.app.set({ kind: 'slow', ms: 150 });
  o.gates.open('slow');
  await sleep(2000);
  await o.app.set({ kind: 'ok' });
  await sleep(1000);
  say('app: flapping');
  for (let i = 0; i < 3; i++) {
    await o.app.set({ kind: 'down' });
    await sleep(600);
    await o.app.set({ kind: 'ok' });
    await sleep(600);
  }
  await sleep(1500);
  say('app: garbage');
  await o.app.set({ kind: 'garbage' });
  o.gates.open('garbage');
  await sleep(3000);
  // Until each kind of garbage was answered at least once (up to 30 s more): a consumer that was
  // rebalancing or reconnecting through those 3 s would otherwise leave the phase untested.
  await waitFor('every kind of garbage answered', () => GARBAGE_KINDS.every((k) => (o.app.answers[k] ?? 0) > 0), 30_000, 50).catch(() => {});
  await o.app.set({ kind: 'ok' });
  say('faults over');
  return { current, gens: gen + 1, interruptions };
}

export interface Accounting {
  /** Deliveries beyond the first final outcome of each id (2xx or dead-letter). */
  extra: number;
  /** Ids with more than one final outcome. */
  duplicates: string[];
  problems: string[];
}

/**
 * Every id ends in exactly one place, however often: accepted by the app
 * (2xx) unless `rejected(id)`, else dead-lettered `rejected`; nothing else
 * anywhere. `dlq` maps each dead-lettered id to the reasons of its copies.
 */
export function account(ids: string[], rejected: (id: string) => boolean, app: ChaosApp, dlq: Map<string, string[]>): Accounting {
  const problems: string[] = [];
  const known = new Set(ids);
  let extra = 0;
  const duplicates: string[] = [];
  for (const id of ids) {
    const ok = app.accepted.get(id)?.length ?? 0;
    const dl = dlq.get(id) ?? [];
    if (rejected(id)) {
      if (ok > 0) problems.push(`${id} must be rejected but the app accepted it ${ok}×`);
      if (dl.length === 0) problems.push(`${id} lost: rejected by the app but not dead-lettered`);
      for (const r of dl) if (r !== 'rejected') problems.push(`${id} dead-lettered ${r}, expected rejected`);
    } else {
      if (ok === 0) problems.push(`${id} lost: never accepted by the app${dl.length ? ` (dead-lettered ${dl.join(', ')})` : ''}`);
      else if (dl.length > 0) problems.push(`${id} accepted and dead-lettered (${dl.join(', ')})`);
    }
    const n = ok + dl.length;
    if (n > 1) {
      extra += n - 1;
      duplicates.push(id);
    }
  }
  for (const id of app.accepted.keys()) if (!known.has(id)) problems.push(`the app accepted ${id}, which was never published`);
  for (const id of dlq.keys()) if (!known.has(id)) problems.push(`dead-lettered ${id}, which was never published`);
  return { extra, duplicates, problems };
}

/** The later accepted copies of duplicated ids (for the broker's redelivered flag). */
export function laterCopies(app: ChaosApp, duplicates: string[]): ChaosDelivery[] {
  return duplicates.flatMap((id) => (app.accepted.get(id) ?? []).slice(1));
}

/** Distinct ids with a final answer (2xx, or 400 for the rejected ones) from generations ≤ gen. */
export function finalIdsUpTo(app: ChaosApp, gen: number): Set<string> {
  const out = new Set<string>();
  for (const d of app.deliveries) if (d.gen <= gen && (d.answer === 'accepted' || d.answer === 'rejected')) out.add(d.id);
  return out;
}

/**
 * Duplicates that no interruption explains: a broker hands a message out
 * again only after the process holding it lost it (killed, or its connection
 * cut), so between two final copies of an id there must be an interruption
 * of the generation that made the first. Returns the ids for which there is none.
 */
export function unexplainedDuplicates(app: ChaosApp, duplicates: string[], interruptions: Interruption[]): string[] {
  const wanted = new Set(duplicates);
  const finals = new Map<string, ChaosDelivery[]>();
  for (const d of app.deliveries) {
    if (!wanted.has(d.id) || (d.answer !== 'accepted' && d.answer !== 'rejected')) continue;
    finals.set(d.id, [...(finals.get(d.id) ?? []), d]);
  }
  return duplicates.filter((id) => {
    const copies = finals.get(id) ?? [];
    for (let i = 1; i < copies.length; i++) {
      const prev = copies[i - 1] as ChaosDelivery;
      const cur = copies[i] as ChaosDelivery;
      if (!interruptions.some((e) => e.gen === prev.gen && e.at <= cur.at)) return true;
    }
    return false;
  });
}

/** The garbage the chaos app answers in turn (chaos-app.ts). */
const GARBAGE_KINDS = ['500', '503', '429', '408', 'truncated-status', 'truncated-body', 'reset'];

/** The schedule really hit a flowing stream: every generation delivered, the proxy cut and black-holed, the app misbehaved in every way. */
export function assertFaultsHappened(app: ChaosApp, proxy: FaultProxy, gens: number): void {
  for (let g = 0; g < gens; g++) assert.ok(app.deliveries.some((d) => d.gen === g), `generation ${g} delivered`);
  assert.ok(proxy.stats.cut > 0 && proxy.stats.swallowedBytes > 0, 'connections were cut and black-holed');
  for (const kind of GARBAGE_KINDS) assert.ok((app.answers[kind] ?? 0) > 0, `the app answered ${kind}`);
}
