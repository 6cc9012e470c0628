// A histogram without labels whose observe() is a few array writes, exported
// on a prom-client Registry as prom-client's own Histogram would be (same
// text, same get() shape: name_bucket per le, cumulative, +Inf, _sum,
// _count). prom-client's observe() validates and hashes labels and allocates
// per call: 1-2 µs per delivery in bench/core.bench.ts's profile, for a
// histogram that has no labels. Its Histogram has no way to add pre-counted
// buckets, so this one serves its own values at scrape time.

import type { Histogram, Registry } from 'prom-client';

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

export class TalliedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** As on prom-client's metrics (none here: `le` is the bucket's, not a label name). */
  readonly labelNames: readonly string[] = [];
  private readonly bounds: readonly number[];
  /** Per bucket, not cumulative; the last one is above every bound (+Inf). */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    this.counts = new Float64Array(this.bounds.length + 1);
    // The Registry takes any object with prom-client's metric shape (name, help, type, get());
    // its type names only prom-client's own classes.
    for (const r of options.registers) r.registerMetric(this as unknown as Histogram);
  }

  /** One observation; values that are not finite numbers are ignored (prom-client throws on them). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Value[] }> {
    const bucket = `${this.name}_bucket`;
    const values: Value[] = [];
    let acc = 0;
    this.bounds.forEach((le, i) => {
      acc += this.counts[i] as number;
      values.push({ value: acc, labels: { le }, metricName: bucket });
    });
    values.push(
      { value: this.count, labels: { le: '+Inf' }, metricName: bucket },
      { value: this.sum, labels: {}, metricName: `${this.name}_sum` },
      { value: this.count, labels: {}, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics() calls it. */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
