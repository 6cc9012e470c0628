// A Map that holds at most `bound` entries, forgetting the least recently set
// first: per-message memory (by message id) that a flood of ids cannot grow.

export class RecentMap<V> {
  private readonly entries = new Map<string, V>();
  private readonly bound: number;

  constructor(bound: number) {
    this.bound = bound;
  }

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** Sets it as the most recent entry; past the bound, the least recent goes. */
  set(key: string, value: V): void {
    // Re-inserted, so that the Map's order is least recently set first.
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.bound) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
