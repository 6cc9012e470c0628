// A paced producer: calls send() `rate` times a second for `count` messages.
// Node timers tick at ~1 ms, so each tick sends whatever has come due since
// the last one (catching up rather than drifting). How late each send was
// against its schedule is recorded: a large lag means the event loop was
// stalled and the timestamps understate the latency (coordinated omission).

import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyRecorder } from './latency.ts';

export async function paced(rate: number, count: number, send: (i: number) => void): Promise<LatencyRecorder> {
  const lag = new LatencyRecorder();
  const interval = 1000 / rate;
  const start = performance.now();
  let i = 0;
  while (i < count) {
    const now = performance.now();
    const due = Math.min(count, Math.floor((now - start) / interval) + 1);
    for (; i < due; i++) {
      lag.record(now - (start + i * interval));
      send(i);
    }
    if (i < count) await sleep(Math.max(0, start + i * interval - performance.now()));
  }
  return lag;
}

/** CLOCK_MONOTONIC in ns: the same clock in every process of the machine, so a stamp can cross processes. */
export const monoNs = (): bigint => process.hrtime.bigint();
