// Which provider judges which check: built-ins by scraping when the plan
// lists sidecars to scrape (it needs nothing else), else through Prometheus;
// PromQL queries always through Prometheus.

import type { Measurement } from './judge.ts';
import type { Check, Plan } from './plan.ts';
import { PrometheusProvider, type Window } from './prometheus.ts';
import { ScrapeProvider } from './scrape.ts';
import type { Analysis } from './controller.ts';

export function analysisFor(plan: Plan): Analysis {
  const { prometheus, scrape } = plan.analysis;
  const prom = prometheus !== undefined ? new PrometheusProvider(prometheus) : undefined;
  const scraper = scrape !== undefined ? new ScrapeProvider(scrape) : undefined;
  const builtinsVia = scraper ?? prom;
  return {
    open: async (): Promise<Window> => {
      const [b, q] = await Promise.all([builtinsVia?.open(), prom?.open()]);
      return {
        measure: async (checks: Check[]): Promise<Measurement[]> => {
          const builtins = checks.filter((c) => c.query === undefined);
          const queries = checks.filter((c) => c.query !== undefined);
          const [mb, mq] = await Promise.all([
            builtins.length > 0 && b ? b.measure(builtins) : Promise.resolve([] as Measurement[]),
            queries.length > 0 && q ? q.measure(queries) : Promise.resolve([] as Measurement[]),
          ]);
          return checks.map((c) => (c.query === undefined ? mb[builtins.indexOf(c)] : mq[queries.indexOf(c)]) ?? { noData: 'no provider for this check' });
        },
      };
    },
  };
}
