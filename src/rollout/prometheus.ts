// Judging through Prometheus: each check is one PromQL instant query over
// the step's interval (GET /api/v1/query). The built-ins are the same
// arithmetic as judge.ts, written in PromQL.

import type { Measurement } from './judge.ts';
import type { Builtin, Check } from './plan.ts';

export interface Window {
  /** One measurement per check, in order, over the time since the window opened. */
  measure(checks: Check[]): Promise<Measurement[]>;
}

/** A PromQL string literal holding a regular expression that matches exactly these names. */
function exactly(names: string[]): string {
  const re = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return JSON.stringify(re);
}

/**
 * The increase of each series of `sel` over the last `r`, as judge.ts
 * computes it from two scrapes: the difference where the counter rose, its
 * whole value where it fell (a reset) or where the series is new. PromQL's
 * increase() would instead drop a series' first sample and extrapolate,
 * which hides the first dead-letters of a series born inside the step.
 */
const inc = (sel: string, r: string): string => `((${sel} - ${sel} offset ${r}) >= 0 or (${sel} < ${sel} offset ${r}) or (${sel} unless ${sel} offset ${r}))`;

export function builtinQuery(metric: Builtin, sources: string[] | undefined, rangeSeconds: number): string {
  const sel = sources === undefined ? '' : `{source=~${exactly(sources)}}`;
  const r = `${rangeSeconds}s`;
  if (metric === 'delivery-p99') {
    // The histogram has no source label: keep the targets that consume one of the sources.
    const buckets = inc('turnout_delivery_duration_seconds_bucket', r);
    const inner = sources === undefined ? buckets : `${buckets} and on (instance, job) turnout_messages_received_total${sel}`;
    return `histogram_quantile(0.99, sum by (le) (${inner}))`;
  }
  const part = metric === 'dead-letter-ratio' ? 'turnout_messages_dead_lettered_total' : 'turnout_messages_deferred_total';
  // No dead-letter series at all is a ratio of 0, not "no data": hence "or vector(0)".
  return `(sum(${inc(part + sel, r)}) or vector(0)) / sum(${inc('turnout_messages_received_total' + sel, r)})`;
}

interface QueryAnswer {
  status?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

export class PrometheusProvider {
  private readonly base: string;
  private readonly timeoutMs: number;
  constructor(base: string, timeoutMs = 5000) {
    this.base = base.replace(/\/$/, '');
    this.timeoutMs = timeoutMs;
  }

  async open(): Promise<Window> {
    const started = Date.now();
    return {
      measure: (checks) => {
        const now = Date.now();
        const range = Math.max(1, Math.round((now - started) / 1000));
        // (offset takes whole seconds here; the window is rounded to the nearest one.)
        return Promise.all(checks.map((c) => this.query(c.query ?? builtinQuery(c.metric as Builtin, c.sources, range), now)));
      },
    };
  }

  /**
   * Asks Prometheus to evaluate `expr` once, at start: a query it cannot
   * parse (400, errorType bad_data) would otherwise only show as "no data" at
   * the first judged step, after the weight was raised. 'rejected' carries
   * Prometheus's own error; 'unknown' means it could not be asked (down,
   * timeout), which the noData rules handle later.
   */
  async check(expr: string): Promise<{ kind: 'accepted' } | { kind: 'rejected'; error: string } | { kind: 'unknown'; why: string }> {
    const url = `${this.base}/api/v1/query?query=${encodeURIComponent(expr)}`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      const body = (await res.json().catch(() => ({}))) as QueryAnswer & { errorType?: string };
      if (res.status === 200 && body.status === 'success') return { kind: 'accepted' };
      if (res.status === 400 && body.errorType === 'bad_data') return { kind: 'rejected', error: body.error ?? 'bad_data' };
      return { kind: 'unknown', why: `Prometheus answered ${res.status}: ${body.error ?? 'error'}` };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { kind: 'unknown', why: `Prometheus at ${this.base} unreachable: ${e.cause?.code ?? e.message}` };
    }
  }

  /** One instant query; anything but exactly one numeric value is "no data", with the reason. */
  async query(expr: string, atMs: number): Promise<Measurement> {
    const url = `${this.base}/api/v1/query?query=${encodeURIComponent(expr)}&time=${(atMs / 1000).toFixed(3)}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { noData: `Prometheus at ${this.base} unreachable: ${e.cause?.code ?? e.message}` };
    }
    let body: QueryAnswer;
    try {
      body = (await res.json()) as QueryAnswer;
    } catch {
      return { noData: `Prometheus answered ${res.status} without JSON` };
    }
    if (res.status !== 200 || body.status !== 'success') return { noData: `Prometheus answered ${res.status}: ${body.error ?? 'error'}` };
    const result = body.data?.result;
    let raw: unknown;
    if (body.data?.resultType === 'scalar') raw = (result as unknown[])[1];
    else if (body.data?.resultType === 'vector' && Array.isArray(result)) {
      if (result.length === 0) return { noData: 'the query returned no series (no data in the interval)' };
      if (result.length > 1) return { noData: `the query returned ${result.length} series; aggregate it to one (e.g. sum(...))` };
      raw = ((result[0] as { value?: unknown[] }).value ?? [])[1];
    } else return { noData: `the query returned a ${body.data?.resultType ?? 'unknown'}, not one number` };
    const value = Number(raw);
    return Number.isNaN(value) ? { noData: 'the query gave NaN (nothing received in the interval)' } : { value };
  }
}
