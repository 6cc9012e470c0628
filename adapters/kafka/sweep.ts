// A bounded pass over one Kafka topic for `turnout move`: it reads as its own
// consumer group from the group's committed offsets (the start of the log
// when it has none) up to the end offsets taken when it began, one record at
// a time, and commits past each record once its copy is confirmed (or it was
// skipped). A record that could not be moved ends its partition's pass there,
// uncommitted, so nothing after it overtakes it and the next run starts at it.
// A dry run commits nothing. Records are never removed from a topic: the
// group's position is what "moved" means on Kafka.

import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { BrokerError, type Message, type Received, type Sweep, type SweepDisposition, type Taken } from '../broker.ts';
import { received } from '../handler.ts';
import { classify } from './errors.ts';
import { fromRecord, PARTITION_HEADER } from './records.ts';

class KafkaTaken implements Taken {
  readonly message: Received;
  readonly partition: number;
  readonly offset: bigint;
  readonly settled: (d: SweepDisposition) => void;
  constructor(topic: string, partition: number, record: KafkaMessage, settled: (d: SweepDisposition) => void) {
    this.message = received(fromRecord(topic, partition, record).message, topic, false);
    this.partition = partition;
    this.offset = BigInt(record.offset);
    this.settled = settled;
  }
}

interface Range {
  /** Next offset expected. */
  at: bigint;
  /** End offset at the start: the pass stops before it. */
  end: bigint;
  stopped: boolean;
}

export interface KafkaSweepDeps {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  group: string;
  dryRun: boolean;
  sessionTimeoutMs: number;
  /** Publishes a copy, to `partition` when given; resolves once confirmed. */
  send: (topic: string, message: Message, partition: number | undefined) => Promise<void>;
  partitionsOf: (topic: string) => Promise<number>;
}

export class KafkaSweep implements Sweep {
  private readonly d: KafkaSweepDeps;
  private readonly ranges: Map<number, Range>;
  private consumer: Consumer | undefined;
  /** Records handed over by the consumer and not yet asked for by next(). */
  private waiting: { taken: KafkaTaken } | undefined;
  private wake: (() => void) | undefined;
  private failure: unknown;
  private closed = false;

  private constructor(deps: KafkaSweepDeps, ranges: Map<number, Range>) {
    this.d = deps;
    this.ranges = ranges;
  }

  static async open(deps: KafkaSweepDeps): Promise<KafkaSweep> {
    const ranges = new Map<number, Range>();
    try {
      const ends = await deps.admin.fetchTopicOffsets(deps.topic);
      const [committed] = await deps.admin.fetchOffsets({ groupId: deps.group, topics: [deps.topic] });
      for (const e of ends) {
        const low = BigInt(e.low);
        const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset;
        let at = c === undefined || BigInt(c) < 0n ? low : BigInt(c);
        if (at < low) at = low;
        const end = BigInt(e.high);
        ranges.set(e.partition, { at, end, stopped: at >= end });
      }
    } catch (err) {
      throw classify(err, `offsets of ${deps.topic} for group ${deps.group}`);
    }
    const sweep = new KafkaSweep(deps, ranges);
    if (!sweep.done()) await sweep.start();
    return sweep;
  }

  private done(): boolean {
    for (const r of this.ranges.values()) if (!r.stopped) return false;
    return true;
  }

  private async start(): Promise<void> {
    const session = this.d.sessionTimeoutMs;
    const consumer = this.d.kafka.consumer({
      groupId: this.d.group,
      sessionTimeout: session,
      heartbeatInterval: Math.min(3000, Math.max(100, Math.floor(session / 5))),
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.d.topic], fromBeginning: true });
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw classify(err, `subscribe to ${this.d.topic}`);
    }
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.failure = classify(e.payload.error, `reading ${this.d.topic}`);
      this.wake?.();
    });
    void consumer
      .run({
        autoCommit: false,
        // One record at a time, settled before the next: at most one copy is ever unconfirmed by a commit.
        eachMessage: async ({ partition, message }) => {
          const r = this.ranges.get(partition);
          const offset = BigInt(message.offset);
          if (this.closed || !r || r.stopped || offset < r.at) return;
          if (offset >= r.end) {
            this.stop(partition, r);
            return;
          }
          await new Promise<void>((resolve) => {
            const taken = new KafkaTaken(this.d.topic, partition, message, (disposition) => {
              r.at = offset + 1n;
              if (disposition === 'keep') this.stop(partition, r);
              else if (r.at >= r.end) this.stop(partition, r);
              resolve();
            });
            this.waiting = { taken };
            this.wake?.();
          });
        },
      })
      .catch((err: unknown) => {
        this.failure = classify(err, `reading ${this.d.topic}`);
        this.wake?.();
      });
  }

  private stop(partition: number, r: Range): void {
    r.stopped = true;
    this.consumer?.pause([{ topic: this.d.topic, partitions: [partition] }]);
    this.wake?.();
  }

  async next(): Promise<Taken | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      if (this.failure !== undefined) throw this.failure;
      const w = this.waiting;
      if (w) {
        this.waiting = undefined;
        return w.taken;
      }
      if (this.done()) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  async forward(taken: Taken, topic: string, message: Message): Promise<void> {
    if (!(taken instanceof KafkaTaken)) throw new BrokerError('invalid', 'forward() got a message of another sweep');
    await this.d.send(topic, message, await this.partitionFor(taken, topic, message));
  }

  /**
   * A keyed record is placed by its key (the Java-compatible partitioner: the
   * partition its producer chose, given the same partition count); one
   * without a key keeps its partition: the original's, for a dead-lettered
   * copy that names it, else the one it is read from, when the target has it.
   */
  private async partitionFor(taken: KafkaTaken, topic: string, message: Message): Promise<number | undefined> {
    if (message.key !== undefined) return undefined;
    const named = Number(message.headers[PARTITION_HEADER]);
    const wanted = topic !== this.d.topic && Number.isSafeInteger(named) && message.headers[PARTITION_HEADER] !== undefined ? named : taken.partition;
    const count = await this.d.partitionsOf(topic);
    return wanted < count ? wanted : undefined;
  }

  async settle(taken: Taken, disposition: SweepDisposition): Promise<void> {
    if (!(taken instanceof KafkaTaken)) throw new BrokerError('invalid', 'settle() got a message of another sweep');
    try {
      if (disposition !== 'keep' && !this.d.dryRun) {
        await this.consumer?.commitOffsets([{ topic: this.d.topic, partition: taken.partition, offset: String(taken.offset + 1n) }]);
      }
    } catch (err) {
      throw classify(err, `committing ${this.d.topic}/${taken.partition} for group ${this.d.group}`);
    } finally {
      taken.settled(disposition);
    }
  }

  unseen(): number {
    let n = 0n;
    for (const r of this.ranges.values()) if (r.end > r.at) n += r.end - r.at;
    return Number(n);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.consumer?.disconnect().catch(() => {});
  }
}
