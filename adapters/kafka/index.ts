// The Kafka adapter (kafkajs).
//
// One producer (acks from all in-sync replicas, idempotent unless turned off,
// never creates topics) for publishes and deferred copies; one admin client
// for lag and the deferral topic; one consumer per consumed source, in the
// source's consumer group, subscribed to the source and to the deferral topic
// turnout owns for it (subscription.ts). Kafka has no dead-letter mechanism
// of its own (capabilities.ts), so TURNOUT_DLQ is required (config/load.ts).

import { Kafka, Partitioners, type Admin, type Producer } from 'kafkajs';
import './idle-loop.ts';
import { expandTarget } from '../../lib/targets.ts';
import type { Logger } from '../../lib/log.ts';
import { PUBLISH_FINISH_WAIT_MS, UnderWay } from '../../lib/settle.ts';
import {
  BrokerError,
  type AdapterContext,
  type BrokerAdapter,
  type BufferedBytes,
  type ConsumeOptions,
  type Handler,
  type Message,
  type Backlog,
  type QueueDepth,
  type Subscription,
  type Sweep,
  type SweepOptions,
  unconfirmed,
} from '../broker.ts';
import { capabilities } from './capabilities.ts';
import { kafkaSettings, RETRY, type KafkaSettings } from './options.ts';
import { classify, codeOf } from './errors.ts';
import { toRecord } from './records.ts';
import { KafkaSubscription } from './subscription.ts';
import { KafkaSweep } from './sweep.ts';

/** How often reachability is checked while nothing else talks to the broker (drives isUp). */
const PROBE_MS = 10_000;

export function create(ctx: AdapterContext): KafkaBroker {
  const logger = ctx.logger.child({ broker: 'kafka' });
  return new KafkaBroker(kafkaSettings(ctx.config, logger), logger);
}

export class KafkaBroker implements BrokerAdapter {
  readonly kind = 'kafka';
  readonly capabilities = capabilities;
  private readonly settings: KafkaSettings;
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private connected = false;
  private closed = false;
  private reachable = true;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Topics seen to exist: the probe asks for one of them (never for all topics). */
  private readonly known = new Set<string>();
  /** Latest subscription per source: its group is the one whose lag depth() reports. */
  private readonly subs = new Map<string, KafkaSubscription>();
  private readonly allSubs = new Set<KafkaSubscription>();
  /** Sends awaiting the brokers' acks: close() lets them finish before the producer disconnects. */
  private readonly publishes = new UnderWay();

  constructor(settings: KafkaSettings, logger: Logger) {
    this.settings = settings;
    this.log = logger;
    this.kafka = new Kafka(settings.client);
  }

  async connect(): Promise<void> {
    if (this.closed) throw new BrokerError('unavailable', 'kafka adapter is closed');
    const producer = this.kafka.producer({
      idempotent: this.settings.idempotent,
      allowAutoTopicCreation: false,
      // Java-compatible key hashing: a key lands on the partition a Java producer would pick.
      createPartitioner: Partitioners.DefaultPartitioner,
      // The idempotent default is to retry forever; turnout needs publish() to answer.
      retry: RETRY,
    });
    const admin = this.kafka.admin();
    try {
      await producer.connect();
      await admin.connect();
    } catch (err) {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      throw classify(err, `connect to kafka ${this.settings.client.brokers.toString()}`);
    }
    this.producer = producer;
    this.admin = admin;
    this.connected = true;
    this.reachable = true;
    this.probeTimer = setInterval(() => void this.probe(), PROBE_MS);
    this.probeTimer.unref();
    this.log.info({ brokers: this.settings.client.brokers, idempotent: this.settings.idempotent }, 'connected to kafka');
  }

  isUp(): boolean {
    if (!this.connected || this.closed || !this.reachable) return false;
    for (const subscription of this.allSubs) if (!subscription.isHealthy()) return false;
    return true;
  }

  private async probe(): Promise<void> {
    const topic = this.known.values().next().value;
    if (this.probing || !this.admin || topic === undefined) return;
    this.probing = true;
    try {
      await this.admin.fetchTopicMetadata({ topics: [topic] });
      if (!this.reachable) this.log.info('kafka is reachable again');
      this.reachable = true;
    } catch (err) {
      const e = classify(err, 'kafka reachability check');
      if (e.code === 'unavailable') {
        if (this.reachable) this.log.warn({ err: e }, 'kafka is not reachable');
        this.reachable = false;
      } else if (e.code === 'unknown-queue') {
        this.known.delete(topic);
      }
    } finally {
      this.probing = false;
    }
  }

  async consume(source: string, handler: Handler, options: ConsumeOptions): Promise<Subscription> {
    if (!this.connected || this.closed) throw new BrokerError('unavailable', 'kafka adapter is not connected');
    const deferTopic = expandTarget(this.settings.deferTopic, source);
    const partitions = await this.partitionCount(source);
    await this.ensureDeferTopic(deferTopic, partitions);
    const sub = new KafkaSubscription({
      kafka: this.kafka,
      source,
      deferTopic,
      group: options.group ?? expandTarget(this.settings.groupTemplate, source),
      prefetch: Math.max(1, options.prefetch),
      handler,
      defer: (topic, message, notBefore) => this.send(topic, message, notBefore),
      sessionTimeoutMs: this.settings.sessionTimeoutMs,
      fetchWaitMs: this.settings.fetchWaitMs,
      logger: this.log,
    });
    await sub.start();
    this.subs.set(source, sub);
    this.allSubs.add(sub);
    this.known.add(source);
    this.log.info({ source, deferTopic, group: sub.group, prefetch: options.prefetch }, 'consuming kafka topic');
    return sub;
  }

  private async partitionCount(topic: string): Promise<number> {
    const admin = this.admin as Admin;
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return topics[0]?.partitions.length ?? 1;
    } catch (err) {
      const e = classify(err, `topic ${topic}`);
      if (e.code === 'unknown-queue') throw new BrokerError('unknown-queue', `kafka topic ${topic} does not exist`, { cause: err });
      throw e;
    }
  }

  /** The deferral topic is turnout's own: created like the source (same partition count) when missing. */
  private async ensureDeferTopic(topic: string, partitions: number): Promise<void> {
    const admin = this.admin as Admin;
    try {
      await admin.fetchTopicMetadata({ topics: [topic] });
      return;
    } catch (err) {
      if (codeOf(err) !== 'unknown-queue') throw classify(err, `deferral topic ${topic}`);
    }
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
      this.log.info({ topic, partitions }, 'created the kafka deferral topic');
    } catch (err) {
      const e = classify(err, `create deferral topic ${topic}`);
      throw new BrokerError(e.code === 'forbidden' ? 'forbidden' : 'unavailable',
        `kafka deferral topic ${topic} does not exist and could not be created (${e.message}); create it with ${partitions} partitions or set TURNOUT_KAFKA_DEFER_TOPIC`,
        { cause: err });
    }
  }

  async publish(queue: string, message: Message): Promise<void> {
    await this.send(queue, message);
  }

  private async send(topic: string, message: Message, notBefore?: number, partition?: number): Promise<void> {
    const producer = this.producer;
    if (!producer || this.closed) throw new BrokerError('unavailable', 'kafka adapter is not connected');
    const record = toRecord(message, notBefore);
    if (partition !== undefined) record.partition = partition;
    try {
      await this.publishes.run(() => producer.send({ topic, acks: -1, timeout: 30_000, messages: [record] }));
    } catch (err) {
      // kafkajs had the record (it retries on its own): unless Kafka refused it, it may have been written.
      throw unconfirmed(classify(err, `publish to ${topic}`));
    }
    this.known.add(topic);
    this.reachable = true;
  }

  async depth(queue: string): Promise<QueueDepth> {
    if (!this.admin || this.closed) throw new BrokerError('unavailable', 'kafka adapter is not connected');
    const sub = this.subs.get(queue);
    const group = sub?.group ?? expandTarget(this.settings.groupTemplate, queue);
    let depth = await this.lag(queue, group);
    // Deferred messages wait too, on the deferral topic, in the same group.
    if (sub) depth += await this.lag(sub.deferTopic, group).catch(() => 0);
    let inflight = 0;
    for (const subscription of this.allSubs) if (subscription.source === queue) inflight += subscription.inflight;
    return { queue, depth, inflight };
  }

  async backlog(queue: string, options: { group: string }): Promise<Backlog> {
    if (!this.admin || this.closed) throw new BrokerError('unavailable', 'kafka adapter is not connected');
    await this.partitionCount(queue);
    const depth = await this.lag(queue, options.group);
    const deferTopic = expandTarget(this.settings.deferTopic, queue);
    let deferred = 0;
    try {
      deferred = await this.lag(deferTopic, options.group);
    } catch (err) {
      // no deferral topic: nothing was ever deferred
      if (codeOf(err) !== 'unknown-queue' && !(err instanceof BrokerError && err.code === 'unknown-queue')) throw err;
    }
    let inflight = 0;
    for (const subscription of this.allSubs) if (subscription.source === queue) inflight += subscription.inflight;
    return { queue, depth, inflight, deferred, group: options.group };
  }

  async sweep(queue: string, options: SweepOptions): Promise<Sweep> {
    if (!this.admin || this.closed) throw new BrokerError('unavailable', 'kafka adapter is not connected');
    await this.partitionCount(queue);
    const partitions = new Map<string, number>();
    return KafkaSweep.open({
      kafka: this.kafka,
      admin: this.admin,
      topic: queue,
      group: options.group,
      dryRun: options.dryRun,
      sessionTimeoutMs: this.settings.sessionTimeoutMs,
      send: (topic, message, partition) => this.send(topic, message, undefined, partition),
      partitionsOf: async (topic) => {
        let n = partitions.get(topic);
        if (n === undefined) partitions.set(topic, (n = await this.partitionCount(topic)));
        return n;
      },
    });
  }

  /** Messages after the group's committed offsets (from the start of the log when it has none). */
  private async lag(topic: string, group: string): Promise<number> {
    const admin = this.admin as Admin;
    try {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      let total = 0n;
      for (const end of ends) {
        const high = BigInt(end.high);
        const low = BigInt(end.low);
        const at = committed?.partitions.find((p) => p.partition === end.partition)?.offset;
        let from = at === undefined ? -1n : BigInt(at);
        if (from < low) from = low;
        if (high > from) total += high - from;
      }
      return Number(total);
    } catch (err) {
      throw classify(err, `lag of ${topic} for group ${group}`);
    }
  }

  buffered(): BufferedBytes[] {
    const out = new Map<string, BufferedBytes>();
    for (const sub of this.allSubs) {
      for (const [topic, bytes] of sub.bufferedByTopic()) {
        const key = `${sub.source}\u0000${topic}`;
        const had = out.get(key);
        if (had) had.bytes += bytes;
        else out.set(key, { source: sub.source, topic, bytes });
      }
    }
    return [...out.values()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    await Promise.all([...this.allSubs].map((subscription) => subscription.close().catch((err: unknown) => this.log.warn({ err }, 'closing a kafka subscription failed'))));
    // A send the brokers took but whose ack the disconnect cut off would fail, and be sent again
    // by its caller: new sends fail from the start of close(), those under way finish.
    if (!(await this.publishes.finish())) {
      this.log.warn({ publishes: this.publishes.size, waitedMs: PUBLISH_FINISH_WAIT_MS }, 'closing with sends still awaiting the brokers\' acks; they fail, and may have reached Kafka');
    }
    await this.producer?.disconnect().catch(() => {});
    await this.admin?.disconnect().catch(() => {});
    this.connected = false;
    this.log.info('disconnected from kafka');
  }
}
