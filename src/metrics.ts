// The metrics turnout exports (docs/reference.md, "Metrics"), on a Registry the
// caller gives: Turnout makes one per sidecar unless handed one (the demo
// gives one per pipeline, tests their own). No global registry.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { BufferedBytes } from '../adapters/broker.ts';
import { TalliedHistogram } from './histogram.ts';
import { collectProcessMetrics, type ProcessMetrics } from './process-metrics.ts';

/** Every metric turnout itself exports (besides the default process metrics). */
export const METRIC_NAMES = [
  'turnout_messages_received_total',
  'turnout_messages_delivered_total',
  'turnout_messages_translated_total',
  'turnout_messages_deferred_total',
  'turnout_messages_dead_lettered_total',
  'turnout_messages_routed_total',
  'turnout_delivery_duration_seconds',
  'turnout_inflight_messages',
  'turnout_green_weight',
  'turnout_broker_up',
  'turnout_draining',
  'turnout_translators_reload_failures_total',
  'turnout_kafka_buffered_bytes',
] as const;

export interface Probes {
  brokerUp: () => boolean;
  /** Messages being processed now; read at scrape time rather than counted per message. */
  inflight: () => number;
  /** What the broker adapter holds fetched ahead (Kafka); absent or empty: no series. */
  buffered?: () => BufferedBytes[];
}

export class Metrics {
  readonly received: Counter<'source' | 'version'>;
  readonly delivered: Counter<'source'>;
  readonly translated: Counter<'from' | 'to'>;
  readonly deferred: Counter<'source' | 'version'>;
  readonly deadLettered: Counter<'source' | 'reason'>;
  readonly routed: Counter<'color'>;
  /** Observed on every attempt: see histogram.ts. */
  readonly deliveryDuration: TalliedHistogram;
  readonly inflight: Gauge;
  readonly greenWeight: Gauge;
  readonly brokerUp: Gauge;
  readonly draining: Gauge;
  readonly reloadFailures: Counter;
  readonly kafkaBuffered: Gauge<'source' | 'topic'>;
  readonly registry: Registry;
  /** prom-client's default process and Node.js metrics, GC counted by process-metrics.ts; undefined when left out. */
  private readonly process: ProcessMetrics | undefined;
  /**
   * The per-message counters, counted here and added to prom-client's when
   * they are read (a scrape, or get()): prom-client's inc() hashes and
   * validates the labels on every call, its labels() children too. A tally
   * per label set, so this holds as much as the series themselves.
   */
  private readonly receivedTally = new Map<string, Map<string, { n: number }>>();
  private readonly deliveredTally = new Map<string, { n: number }>();
  /** By original, then resulting version (numbers: no label string built per message). */
  private readonly translatedTally = new Map<number, Map<number, { n: number }>>();

  constructor(registry: Registry, probes: Probes, options: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    const registers = [registry];
    const receivedTally = this.receivedTally;
    const deliveredTally = this.deliveredTally;
    const translatedTally = this.translatedTally;
    this.received = new Counter({
      name: 'turnout_messages_received_total', help: 'Messages consumed, by source and schema version ("invalid" when the header is not a version).', labelNames: ['source', 'version'], registers,
      collect() {
        for (const [source, versions] of receivedTally) for (const [version, t] of versions) if (t.n > 0) (this.inc({ source, version }, t.n), (t.n = 0));
      },
    });
    this.delivered = new Counter({
      name: 'turnout_messages_delivered_total', help: 'Messages the app acknowledged with 2xx.', labelNames: ['source'], registers,
      collect() {
        for (const [source, t] of deliveredTally) if (t.n > 0) (this.inc({ source }, t.n), (t.n = 0));
      },
    });
    this.translated = new Counter({
      name: 'turnout_messages_translated_total', help: 'Messages translated, by original and resulting version.', labelNames: ['from', 'to'], registers,
      collect() {
        for (const [from, tos] of translatedTally) for (const [to, t] of tos) if (t.n > 0) (this.inc({ from: String(from), to: String(to) }, t.n), (t.n = 0));
      },
    });
    this.deferred = new Counter({ name: 'turnout_messages_deferred_total', help: 'Messages returned to their source to be seen again later.', labelNames: ['source', 'version'], registers });
    this.deadLettered = new Counter({ name: 'turnout_messages_dead_lettered_total', help: 'Messages dead-lettered, by reason.', labelNames: ['source', 'reason'], registers });
    this.routed = new Counter({ name: 'turnout_messages_routed_total', help: 'Messages published to the blue or green target.', labelNames: ['color'], registers });
    this.deliveryDuration = new TalliedHistogram({
      name: 'turnout_delivery_duration_seconds',
      help: 'Time of one delivery attempt to the app.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.inflight = new Gauge({
      name: 'turnout_inflight_messages',
      help: 'Messages being processed now.',
      registers,
      collect() {
        this.set(probes.inflight());
      },
    });
    this.greenWeight = new Gauge({ name: 'turnout_green_weight', help: 'Percent of route keys sent to green.', registers });
    this.brokerUp = new Gauge({
      name: 'turnout_broker_up',
      help: '1 while connected to the broker.',
      registers,
      collect() {
        this.set(probes.brokerUp() ? 1 : 0);
      },
    });
    this.draining = new Gauge({ name: 'turnout_draining', help: '1 while shutting down (no new messages taken).', registers });
    this.reloadFailures = new Counter({ name: 'turnout_translators_reload_failures_total', help: 'Translator file reloads that failed (the previous set stays active).', registers });
    this.kafkaBuffered = new Gauge({
      name: 'turnout_kafka_buffered_bytes',
      help: 'Payload bytes of Kafka records fetched and not yet finished, by source and topic (the source topic or its deferral topic). A source topic\'s partitions pause fetching together at 16 MiB.',
      labelNames: ['source', 'topic'],
      registers,
      collect() {
        // Read whole at each scrape: a subscription's topics come and go with it.
        this.reset();
        for (const b of probes.buffered?.() ?? []) this.set({ source: b.source, topic: b.topic }, b.bytes);
      },
    });
    this.process = options.defaultMetrics ?? true ? collectProcessMetrics(registry) : undefined;
  }

  /** Stops what runs without being read (the GC observer); the registry still answers. */
  stop(): void {
    this.process?.stop();
  }

  /** The hot-path counters: a tally read into prom-client's counter when it is collected. */
  countReceived(source: string, version: string): void {
    bump(inner(this.receivedTally, source), version);
  }

  countTranslated(from: number, to: number): void {
    bump(inner(this.translatedTally, from), to);
  }

  countDelivered(source: string): void {
    bump(this.deliveredTally, source);
  }
}

/** The tally of one label set, counted up. */
function bump<K>(tally: Map<K, { n: number }>, key: K): void {
  const t = tally.get(key);
  if (t === undefined) tally.set(key, { n: 1 });
  else t.n++;
}

/** The tallies under the first label's value, made on first use. */
function inner<K, V>(tally: Map<K, Map<V, { n: number }>>, key: K): Map<V, { n: number }> {
  let m = tally.get(key);
  if (m === undefined) tally.set(key, (m = new Map()));
  return m;
}
