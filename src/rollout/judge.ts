// The judging arithmetic, pure: counter increases over an interval (with
// counter resets, as PromQL's increase() treats them), histogram quantiles
// from bucket increases (as PromQL's histogram_quantile), the built-in
// checks, and a check's verdict against its bounds. No I/O here.

import { seriesKey, type Sample } from './exposition.ts';
import type { Builtin, Check } from './plan.ts';

/** A check's value over an interval, or why there is none. */
export type Measurement = { value: number } | { noData: string };
export type Verdict = 'pass' | 'fail' | 'no-data';

/** One scraped target at the start (undefined: it had no baseline) and at the end of an interval. */
export interface TargetWindow {
  target: string;
  before: Sample[] | undefined;
  after: Sample[];
}

type Keep = (labels: Record<string, string>) => boolean;

/**
 * Increase of each series of `name` between two scrapes. A series missing
 * at the start counts from 0 (prom-client creates a labelled series at its
 * first increment); one that went down was reset (a restart), so its whole
 * current value is the increase.
 */
export function seriesIncrease(before: Sample[] | undefined, after: Sample[], name: string, keep: Keep = () => true): Map<string, { labels: Record<string, string>; increase: number }> {
  const start = new Map<string, number>();
  for (const s of before ?? []) if (s.name === name) start.set(seriesKey(s), s.value);
  const out = new Map<string, { labels: Record<string, string>; increase: number }>();
  for (const s of after) {
    if (s.name !== name || !keep(s.labels)) continue;
    const key = seriesKey(s);
    const b = start.get(key);
    const increase = b === undefined || s.value < b ? s.value : s.value - b;
    out.set(key, { labels: s.labels, increase });
  }
  return out;
}

export function counterIncrease(before: Sample[] | undefined, after: Sample[], name: string, keep: Keep = () => true): number {
  let n = 0;
  for (const { increase } of seriesIncrease(before, after, name, keep).values()) n += increase;
  return n;
}

export interface Bucket {
  le: number;
  count: number;
}

/** Bucket increases summed by `le` over every kept series (sum by (le) (increase(x_bucket[…]))). */
export function bucketIncrease(windows: { before: Sample[] | undefined; after: Sample[] }[], histogram: string): Bucket[] {
  const byLe = new Map<number, number>();
  for (const w of windows) {
    for (const { labels, increase } of seriesIncrease(w.before, w.after, `${histogram}_bucket`).values()) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      if (Number.isNaN(le)) continue;
      byLe.set(le, (byLe.get(le) ?? 0) + increase);
    }
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile of cumulative buckets, as Prometheus' histogram_quantile
 * computes it: linear interpolation inside the bucket holding the rank; the
 * +Inf bucket answers the highest finite bound; NaN without observations.
 */
export function histogramQuantile(q: number, buckets: Bucket[]): number {
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (b.length < 2 || b[b.length - 1]?.le !== Infinity) return NaN;
  // Counts must not fall with le (they can, slightly, when scrapes race); Prometheus evens them out likewise.
  for (let i = 1; i < b.length; i++) if ((b[i] as Bucket).count < (b[i - 1] as Bucket).count) (b[i] as Bucket).count = (b[i - 1] as Bucket).count;
  const total = (b[b.length - 1] as Bucket).count;
  if (total === 0) return NaN;
  let rank = q * total;
  const i = b.findIndex((x) => x.count >= rank);
  if (i === b.length - 1) return (b[b.length - 2] as Bucket).le;
  const here = b[i] as Bucket;
  if (i === 0 && here.le <= 0) return here.le;
  let start = 0;
  let count = here.count;
  if (i > 0) {
    const prev = b[i - 1] as Bucket;
    start = prev.le;
    count -= prev.count;
    rank -= prev.count;
  }
  return start + (here.le - start) * (rank / count);
}

const sourceFilter = (sources: string[] | undefined): Keep => (labels) => sources === undefined || sources.includes(labels.source ?? '');

/** A built-in check over one interval of every scraped target. */
export function builtin(metric: Builtin, sources: string[] | undefined, windows: TargetWindow[]): Measurement {
  const keep = sourceFilter(sources);
  const what = sources === undefined ? 'any source' : sources.join(', ');
  const sum = (name: string): number => windows.reduce((n, w) => n + counterIncrease(w.before, w.after, name, keep), 0);
  if (metric === 'delivery-p99') {
    // The histogram has no source label: take the targets that consume one of the sources.
    const chosen = windows.filter((w) => sources === undefined || w.after.some((s) => s.name === 'turnout_messages_received_total' && keep(s.labels)));
    const p99 = histogramQuantile(0.99, bucketIncrease(chosen, 'turnout_delivery_duration_seconds'));
    return Number.isNaN(p99) ? { noData: `no delivery to the app from ${what} in the interval` } : { value: p99 };
  }
  const received = sum('turnout_messages_received_total');
  if (received === 0) return { noData: `nothing received from ${what} in the interval` };
  const part = sum(metric === 'dead-letter-ratio' ? 'turnout_messages_dead_lettered_total' : 'turnout_messages_deferred_total');
  return { value: part / received };
}

export function verdict(check: Pick<Check, 'min' | 'max'>, m: Measurement): Verdict {
  if (!('value' in m) || Number.isNaN(m.value)) return 'no-data';
  if (check.min !== undefined && m.value < check.min) return 'fail';
  if (check.max !== undefined && m.value > check.max) return 'fail';
  return 'pass';
}

/** "0.2 > max 0.01": what a failed check's log line and status say. */
export function describeBound(check: Pick<Check, 'min' | 'max'>, value: number): string {
  if (check.max !== undefined && value > check.max) return `${round(value)} > max ${check.max}`;
  if (check.min !== undefined && value < check.min) return `${round(value)} < min ${check.min}`;
  return `${round(value)} within ${check.min ?? '-∞'}..${check.max ?? '∞'}`;
}

export const round = (v: number): number => Math.round(v * 1e6) / 1e6;
