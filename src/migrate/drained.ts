// `turnout drained`: is an old queue safe to delete? For each queue: what is
// ready, what is handed out, and what turnout deferred and still holds
// elsewhere (delay queue, delayed messages, deferral topic); on Kafka these
// are the group's lag. Zero everywhere, and only then, is "drained".

import type { Backlog, BrokerAdapter } from '../../adapters/broker.ts';
import { sleep } from '../../lib/backoff.ts';

export interface DrainedOptions {
  queues: readonly string[];
  /** The Kafka group of each queue (TURNOUT_GROUP expanded). */
  groupOf: (queue: string) => string;
  /** Poll until drained for at most this long; undefined: look once. */
  waitMs?: number | undefined;
  pollMs?: number;
  json: boolean;
  out: NodeJS.WritableStream;
  signal?: AbortSignal | undefined;
}

export const isDrained = (b: Backlog): boolean => b.depth === 0 && b.inflight === 0 && b.deferred === 0;

export async function readBacklogs(broker: BrokerAdapter, queues: readonly string[], groupOf: (queue: string) => string): Promise<Backlog[]> {
  const out: Backlog[] = [];
  for (const queue of queues) out.push(await broker.backlog(queue, { group: groupOf(queue) }));
  return out;
}

/** 0 when every queue is drained (within --wait), else 1. */
export async function runDrained(broker: BrokerAdapter, o: DrainedOptions): Promise<number> {
  const deadline = Date.now() + (o.waitMs ?? 0);
  for (;;) {
    const backlogs = await readBacklogs(broker, o.queues, o.groupOf);
    const drained = backlogs.every(isDrained);
    const last = drained || o.waitMs === undefined || Date.now() >= deadline || o.signal?.aborted === true;
    if (last) {
      o.out.write(o.json ? `${JSON.stringify({ drained, queues: backlogs.map((b) => ({ ...b, drained: isDrained(b) })) })}\n` : table(backlogs, drained));
      return drained ? 0 : 1;
    }
    await sleep(Math.min(o.pollMs ?? 1000, Math.max(0, deadline - Date.now())), o.signal);
  }
}

function table(backlogs: Backlog[], drained: boolean): string {
  const rows = [['queue', 'depth', 'inflight', 'deferred', 'group lag', ''], ...backlogs.map((b) => [
    b.queue,
    String(b.depth),
    String(b.inflight),
    String(b.deferred),
    b.group !== undefined ? `${b.depth + b.deferred} (${b.group})` : '-',
    isDrained(b) ? 'drained' : 'NOT drained',
  ])];
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  lines.push(drained ? 'all drained: safe to delete' : 'not drained');
  return `${lines.join('\n')}\n`;
}
