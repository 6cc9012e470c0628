// What GET /v1/status answers: the sidecar's figures for its status page, in
// one JSON document. Read from the same prom-client counters as /metrics when
// asked, never kept per message; the page computes rates and keeps the
// history of its chart itself. Nothing secret: the broker as GET /v1/info
// names it, the app by origin and path only, error texts scrubbed.

import type { BrokerAdapter } from '../../adapters/broker.ts';
import type { Config } from '../../config/schema.ts';
import { expandTarget } from '../../lib/targets.ts';
import { describeBroker, roleOf, translatorsDigest, type Role } from '../fleet/info.ts';
import type { Metrics } from '../metrics.ts';
import type { RecentError, RecentErrors } from '../recent-errors.ts';
import { histogramQuantile, type Bucket } from '../rollout/judge.ts';
import type { Router } from '../router.ts';
import type { TranslatorSet } from '../translators.ts';

export interface QueueStatus {
  queue: string;
  /** What the queue is to this sidecar. */
  as: 'source' | 'blue' | 'green' | 'dlq';
  depth: number | null;
  inflight: number | null;
  /** Sources only: deferred copies waiting (null for targets). */
  deferred: number | null;
  /** Why the figures are missing (broker unavailable, queue missing, too slow). */
  error?: string;
}

export interface SidecarStatus {
  at: string;
  uptimeSeconds: number;
  role: Role;
  broker: string;
  brokerUp: boolean;
  ready: boolean;
  readyReason: string | null;
  sources: string[];
  targets: { app: string | null; blue: string | null; green: string | null; dlq: string | null };
  weight: number;
  weightSource: string;
  accept: number[] | 'all';
  counters: {
    received: { source: string; version: string; value: number }[];
    routed: { blue: number; green: number };
    delivered: { source: string; value: number }[];
    translated: { from: string; to: string; value: number }[];
    deferred: { source: string; version: string; value: number }[];
    deadLettered: { source: string; reason: string; value: number }[];
  };
  inflight: number;
  latency: { count: number; p50: number | null; p99: number | null; buckets: Bucket[] };
  queues: QueueStatus[];
  translators: { steps: { step: string; engine: 'compiled' | 'reference'; fallback?: string }[]; digest: string };
  errors: RecentError[];
}

export interface StatusDeps {
  config: Config;
  broker: BrokerAdapter;
  metrics: Metrics;
  router: Router;
  translators: () => TranslatorSet;
  readiness: () => { ready: boolean; reason?: string };
  inflight: () => number;
  errors: RecentErrors;
  /** Removes secrets from a broker's error text (config/secrets.ts). */
  scrub: (text: string) => string;
}

/** How long one queue's figures may take before the page gets the rest without them. */
const QUEUE_TIMEOUT_MS = 2000;
/** Answers younger than this are shared: ten open tabs do not ask the broker ten times as often. */
const REUSE_MS = 500;

type Values = { labels: Partial<Record<string, string | number>>; value: number; metricName?: string }[];
const label = (v: Values[number], name: string): string => String(v.labels[name] ?? '');

/** The app URL without credentials, query or fragment (a token may hide there). */
function appShown(url: string | undefined): string | null {
  if (url === undefined) return null;
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export class StatusReport {
  private readonly d: StatusDeps;
  private readonly startedAt = Date.now();
  private last: { at: number; answer: Promise<SidecarStatus> } | undefined;

  constructor(deps: StatusDeps) {
    this.d = deps;
  }

  snapshot(): Promise<SidecarStatus> {
    const now = Date.now();
    if (this.last === undefined || now - this.last.at >= REUSE_MS) this.last = { at: now, answer: this.build() };
    return this.last.answer;
  }

  private async build(): Promise<SidecarStatus> {
    const { config, metrics, router } = this.d;
    const readiness = this.d.readiness();
    const [received, delivered, translated, deferred, deadLettered, duration, queues] = await Promise.all([
      metrics.received.get(),
      metrics.delivered.get(),
      metrics.translated.get(),
      metrics.deferred.get(),
      metrics.deadLettered.get(),
      metrics.deliveryDuration.get(),
      this.queues(),
    ]);
    const buckets: Bucket[] = (duration.values as Values)
      .filter((v) => v.metricName?.endsWith('_bucket'))
      .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }));
    const count = (duration.values as Values).find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const quantile = (q: number): number | null => {
      const x = histogramQuantile(q, buckets);
      return Number.isFinite(x) ? x : null;
    };
    const set = this.d.translators();
    return {
      at: new Date().toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      role: roleOf(config),
      broker: describeBroker(config.broker),
      brokerUp: this.d.broker.isUp(),
      ready: readiness.ready,
      readyReason: readiness.reason ?? null,
      sources: [...(config.source ?? [])],
      targets: { app: appShown(config.appUrl), blue: config.blue ?? null, green: config.green ?? null, dlq: config.dlq ?? null },
      weight: router.weight,
      weightSource: router.weightOrigin,
      accept: config.accept ?? 'all',
      counters: {
        received: (received.values as Values).map((v) => ({ source: label(v, 'source'), version: label(v, 'version'), value: v.value })),
        routed: { ...router.counts },
        delivered: (delivered.values as Values).map((v) => ({ source: label(v, 'source'), value: v.value })),
        translated: (translated.values as Values).map((v) => ({ from: label(v, 'from'), to: label(v, 'to'), value: v.value })),
        deferred: (deferred.values as Values).map((v) => ({ source: label(v, 'source'), version: label(v, 'version'), value: v.value })),
        deadLettered: (deadLettered.values as Values).map((v) => ({ source: label(v, 'source'), reason: label(v, 'reason'), value: v.value })),
      },
      inflight: this.d.inflight(),
      // JSON has no Infinity: the +Inf bucket is the last one, its le written as null.
      latency: { count, p50: quantile(0.5), p99: quantile(0.99), buckets },
      queues,
      translators: {
        // As loaded: 'compiled' (turnout's main thread) or 'reference' (the worker pool, with why in `fallback`).
        steps: set.steps.map((s) => ({ step: `${s.from}->${s.to}`, engine: s.engine, ...(s.fallback !== undefined ? { fallback: s.fallback } : {}) })),
        digest: translatorsDigest(set),
      },
      errors: this.d.errors.list(),
    };
  }

  /** The sources' backlog (deferrals included) and the targets' depth, each within QUEUE_TIMEOUT_MS. */
  private async queues(): Promise<QueueStatus[]> {
    const { config, broker } = this.d;
    const sources = config.source ?? [];
    const wanted: { queue: string; as: QueueStatus['as'] }[] = sources.map((queue) => ({ queue, as: 'source' as const }));
    const seen = new Set(sources);
    for (const [as, template] of [['blue', config.blue], ['green', config.green], ['dlq', config.dlq]] as const) {
      if (template === undefined) continue;
      // A {source} target names one queue per source; without sources it names none yet.
      const names = template.includes('{source}') ? sources.map((s) => expandTarget(template, s)) : [template];
      for (const queue of names) if (!seen.has(queue)) (seen.add(queue), wanted.push({ queue, as }));
    }
    // Connected but not up (RabbitMQ blocking publishes): queue checks still answer, and this is when they matter.
    if (!broker.isUp() && broker.downReason?.() === undefined) return wanted.map((w) => ({ ...w, depth: null, inflight: null, deferred: null, error: 'broker not connected' }));
    return Promise.all(wanted.map(async (w): Promise<QueueStatus> => {
      try {
        if (w.as === 'source') {
          const b = await withTimeout(broker.backlog(w.queue, { group: expandTarget(config.group, w.queue) }), QUEUE_TIMEOUT_MS);
          return { ...w, depth: b.depth, inflight: b.inflight, deferred: b.deferred };
        }
        const d = await withTimeout(broker.depth(w.queue), QUEUE_TIMEOUT_MS);
        return { ...w, depth: d.depth, inflight: d.inflight, deferred: null };
      } catch (err) {
        return { ...w, depth: null, inflight: null, deferred: null, error: this.d.scrub((err as Error).message) };
      }
    }));
  }
}
