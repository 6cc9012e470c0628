/**
 * Accounts for messages by id: where each one ended up and how often.
 * Tests assert on `missing`, `duplicates` and per-place counts, never only
 * that a queue is empty.
 */
export class Tally {
  private readonly seen = new Map<string, Map<string, number>>();

  record(place: string, id: string): void {
    let places = this.seen.get(id);
    if (!places) this.seen.set(id, (places = new Map()));
    places.set(place, (places.get(place) ?? 0) + 1);
  }

  count(place: string): number {
    let n = 0;
    for (const places of this.seen.values()) n += places.get(place) ?? 0;
    return n;
  }

  /** Distinct ids seen at `place`. */
  ids(place: string): Set<string> {
    const out = new Set<string>();
    for (const [id, places] of this.seen) if (places.has(place)) out.add(id);
    return out;
  }

  /** Ids of `expected` never seen anywhere. */
  missing(expected: Iterable<string>): string[] {
    return [...expected].filter((id) => !this.seen.has(id));
  }

  /** Ids seen more than once in total (any places). */
  duplicates(): string[] {
    const out: string[] = [];
    for (const [id, places] of this.seen) {
      let n = 0;
      for (const c of places.values()) n += c;
      if (n > 1) out.push(id);
    }
    return out;
  }

  /** Ids seen in more than one place. */
  inSeveralPlaces(): string[] {
    return [...this.seen].filter(([, places]) => places.size > 1).map(([id]) => id);
  }

  placesOf(id: string): Record<string, number> {
    return Object.fromEntries(this.seen.get(id) ?? []);
  }

  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const places of this.seen.values()) for (const [p, c] of places) out[p] = (out[p] ?? 0) + c;
    return out;
  }
}
