// Judging without Prometheus: the controller scrapes the listed sidecars'
// /metrics at the start and at the end of a step and computes the built-in
// checks itself (judge.ts), as Prometheus would over the same interval.

import { expandAll } from './addresses.ts';
import { parseExposition, type Sample } from './exposition.ts';
import { builtin, type Measurement, type TargetWindow } from './judge.ts';
import type { Window } from './prometheus.ts';

type Scraped = Map<string, Sample[] | { error: string }>;

export class ScrapeProvider {
  private readonly urls: string[];
  private readonly timeoutMs: number;
  constructor(urls: string[], timeoutMs = 3000) {
    this.urls = urls;
    this.timeoutMs = timeoutMs;
  }

  async scrape(): Promise<Scraped> {
    const out: Scraped = new Map();
    const targets = await expandAll(this.urls);
    await Promise.all(targets.map(async (t) => {
      if (t.error !== undefined) return void out.set(t.url, { error: t.error });
      try {
        const res = await fetch(`${t.url}/metrics`, { signal: AbortSignal.timeout(this.timeoutMs) });
        if (res.status !== 200) return void out.set(t.url, { error: `GET /metrics answered ${res.status}` });
        out.set(t.url, parseExposition(await res.text()));
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        out.set(t.url, { error: `unreachable: ${e.cause?.code ?? e.message}` });
      }
    }));
    return out;
  }

  async open(): Promise<Window> {
    const before = await this.scrape();
    return {
      measure: async (checks) => {
        const after = await this.scrape();
        const windows: TargetWindow[] = [];
        let problem: string | undefined;
        for (const [target, a] of after) {
          const b = before.get(target);
          if (!Array.isArray(a)) problem ??= `target ${target} ${a.error}`;
          else if (b !== undefined && !Array.isArray(b)) problem ??= `target ${target} had no baseline (${b.error} at the start of the interval)`;
          // A target absent at the start is a new replica: its counters count from 0.
          else windows.push({ target, before: b, after: a });
        }
        return checks.map((c): Measurement => {
          if (c.metric === undefined) return { noData: 'a query needs Prometheus' };
          return problem !== undefined ? { noData: problem } : builtin(c.metric, c.sources, windows);
        });
      },
    };
  }
}
