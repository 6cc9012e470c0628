// `turnout move`: one pass over --from, each message either copied to --to
// (or to its origin, @source) and removed only once the copy is confirmed,
// or left where it is. Messages are handled one at a time, so at most one
// is ever copied but not yet removed: that is all a SIGKILL can duplicate.

import { isBrokerError, type BrokerAdapter, type Sweep, type Taken } from '../../adapters/broker.ts';
import type { Logger } from '../../lib/log.ts';
import { sleep } from '../../lib/backoff.ts';
import { copyFor, movesOf } from './copy.ts';
import { factsOf, matches, type Facts, type Filter, type VersionRule } from './filters.ts';

export const TO_SOURCE = '@source';

export interface MoveOptions extends VersionRule {
  from: string;
  /** A queue, or TO_SOURCE. */
  to: string;
  where: readonly Filter[];
  /** At most this many messages moved. */
  max?: number | undefined;
  /** At most this many moves per second. */
  rate?: number | undefined;
  dryRun: boolean;
  /** A message already moved this often is skipped. */
  maxMoves: number;
  /** Kafka: the group --from is read as. */
  group: string;
  /** Stops after the message at hand (SIGINT, SIGTERM). */
  signal?: AbortSignal | undefined;
  /** Called after each message. */
  progress?: ((summary: MoveSummary) => void) | undefined;
  logger: Pick<Logger, 'warn' | 'error' | 'info'>;
}

export interface MoveSummary {
  /** Moved (with --dry-run: would be moved). */
  moved: number;
  /** Matched but not moved on purpose: no x-turnout-source for @source, or --max-moves reached. */
  skipped: number;
  /** Still on --from after the run: not matching, skipped, failed, and not reached. */
  remaining: number;
  /** Matched but the broker refused the copy (too large, missing destination…): left on --from. */
  failed: number;
  /** Of the moved: by dead-letter reason, version and origin ("none" when a message has none). */
  byReason: Record<string, number>;
  byVersion: Record<string, number>;
  bySource: Record<string, number>;
  /** Looked at. */
  seen: number;
  /** Ended early by the signal or a broker outage (not by --max). */
  interrupted: boolean;
}

/** 0: everything that matched was moved; 1: something that matched was not. */
export function exitCodeOf(s: MoveSummary): number {
  return s.failed > 0 || s.interrupted ? 1 : 0;
}

const bump = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1;
};

export async function runMove(broker: BrokerAdapter, o: MoveOptions): Promise<MoveSummary> {
  const s: MoveSummary = { moved: 0, skipped: 0, remaining: 0, failed: 0, byReason: {}, byVersion: {}, bySource: {}, seen: 0, interrupted: false };
  let left = 0; // handed out and left on --from
  const sweep = await broker.sweep(o.from, { group: o.group, dryRun: o.dryRun });
  const started = Date.now();
  // A signal while waiting for the next message (a Kafka group join, a long poll) ends the wait: nothing is in hand then.
  let waiting = false;
  const onAbort = (): void => {
    if (waiting) void sweep.close();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    while (!o.signal?.aborted) {
      if (o.max !== undefined && s.moved >= o.max) break;
      let taken: Taken | undefined;
      waiting = true;
      try {
        taken = await sweep.next();
      } catch (err) {
        if (o.signal?.aborted) break;
        throw err;
      } finally {
        waiting = false;
      }
      if (!taken) break;
      s.seen++;
      const outcome = await handle(sweep, taken, o, s, started);
      if (outcome !== 'moved') left++;
      o.progress?.(s);
      if (outcome === 'outage') {
        s.interrupted = true;
        break;
      }
    }
    if (o.signal?.aborted) s.interrupted = true;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    s.remaining = left + sweep.unseen();
    await sweep.close();
  }
  return s;
}

type Outcome = 'moved' | 'left' | 'outage';

async function handle(sweep: Sweep, taken: Taken, o: MoveOptions, s: MoveSummary, started: number): Promise<Outcome> {
  const m = taken.message;
  const facts = factsOf(m.headers, o);
  if (!matches(o.where, m.headers, facts)) {
    await sweep.settle(taken, 'skip');
    return 'left';
  }
  const toSource = o.to === TO_SOURCE;
  const target = toSource ? facts.source : o.to;
  if ((toSource && facts.source === 'none') || movesOf(m.headers) >= o.maxMoves) {
    s.skipped++;
    await sweep.settle(taken, 'skip');
    return 'left';
  }
  if (o.dryRun) {
    count(s, facts);
    await sweep.settle(taken, 'skip');
    return 'left';
  }
  if (o.rate !== undefined) {
    // The n-th move starts no earlier than n/rate seconds after the start.
    const due = started + (s.moved / o.rate) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  }
  try {
    await sweep.forward(taken, target, copyFor(m, { toSource }));
  } catch (err) {
    s.failed++;
    await sweep.settle(taken, 'keep').catch(() => {});
    const outage = isBrokerError(err) && err.code === 'unavailable';
    o.logger.error({ err, id: m.id, to: target }, outage ? 'the broker is unavailable; the message stays and the move stops' : 'the broker refused the copy; the message stays on --from');
    return outage ? 'outage' : 'left';
  }
  // The copy is confirmed: only now is the original removed.
  await sweep.settle(taken, 'ack');
  count(s, facts);
  return 'moved';
}

function count(s: MoveSummary, facts: Facts): void {
  s.moved++;
  bump(s.byReason, facts.reason);
  bump(s.byVersion, facts.version);
  bump(s.bySource, facts.source);
}
