// Messages that met a bug in turnout: an error no stage classified. The
// pipeline hands such a message back to the broker after a growing pause, so
// that a bug cannot spin a consumer at full speed on one redelivered message,
// and dead-letters it (max-attempts) once it has failed TURNOUT_MAX_ATTEMPTS
// times, so that it cannot hold its queue's head for ever. Counted per
// message id, in memory: a restart counts afresh, and the oldest ids are
// forgotten first past the bound.

export class UnexpectedFailures {
  private readonly counts = new Map<string, number>();
  private readonly bound: number;

  constructor(bound = 4096) {
    this.bound = bound;
  }

  /** Counts one more failure of `id`; returns how many it has had. */
  record(id: string): number {
    const n = (this.counts.get(id) ?? 0) + 1;
    // Re-inserted, so that the Map's order is least recently failed first.
    this.counts.delete(id);
    this.counts.set(id, n);
    if (this.counts.size > this.bound) {
      const oldest = this.counts.keys().next();
      if (oldest.done !== true) this.counts.delete(oldest.value);
    }
    return n;
  }

  forget(id: string): void {
    this.counts.delete(id);
  }

  get size(): number {
    return this.counts.size;
  }
}
