// Latency samples with nearest-rank percentiles. Samples are kept whole (a
// benchmark records thousands, not millions) so p99 is exact, not estimated.

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export class LatencyRecorder {
  private samples: number[] = [];
  private sorted = true;

  record(ms: number): void {
    this.samples.push(ms);
    this.sorted = false;
  }

  recordAll(ms: Iterable<number>): void {
    for (const v of ms) this.record(v);
  }

  get count(): number {
    return this.samples.length;
  }

  /** Nearest-rank percentile, p in (0, 100]. NaN when empty. */
  percentile(p: number): number {
    const n = this.samples.length;
    if (n === 0) return Number.NaN;
    if (!this.sorted) {
      this.samples.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
    return this.samples[rank - 1] as number;
  }

  summary(): LatencySummary {
    const n = this.samples.length;
    let sum = 0;
    for (const v of this.samples) sum += v;
    return { count: n, p50Ms: this.percentile(50), p99Ms: this.percentile(99), maxMs: this.percentile(100), meanMs: n ? sum / n : Number.NaN };
  }

  reset(): void {
    this.samples = [];
    this.sorted = true;
  }
}
