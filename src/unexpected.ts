// Messages that met a bug in turnout: an error no stage classified. The
// pipeline hands such a message back to the broker after a growing pause, so
// that a bug cannot spin a consumer at full speed on one redelivered message,
// and dead-letters it (max-attempts) once it has failed TURNOUT_MAX_ATTEMPTS
// times, so that it cannot hold its queue's head for ever. Counted per
// message id, in memory: a restart counts afresh, and the oldest ids are
// forgotten first past the bound.

import { RecentMap } from '../lib/recent.ts';

export class UnexpectedFailures {
  private readonly counts: RecentMap<number>;

  constructor(bound = 4096) {
    this.counts = new RecentMap(bound);
  }

  /** Counts one more failure of `id`; returns how many it has had. */
  record(id: string): number {
    const n = (this.counts.get(id) ?? 0) + 1;
    this.counts.set(id, n);
    return n;
  }

  forget(id: string): void {
    this.counts.delete(id);
  }

  get size(): number {
    return this.counts.size;
  }
}
