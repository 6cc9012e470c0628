// Consuming one source topic (and its deferral topic) in a consumer group.
//
// kafkajs' fetch loop only moves on once every batch of a fetch has been
// handled, and it heartbeats only from that loop. So the batch callback does
// not handle messages: it buffers them per partition and returns at once.
// Handling happens here, one message at a time per partition, partitions in
// parallel up to `prefetch`. That keeps heartbeats flowing during a
// 15-minute delivery, lets a deferral partition wait (paused) for its head to
// fall due without holding up any source partition, and lets the group
// rebalance without waiting for in-flight work.
//
// Offsets: a partition's commit position is the offset after its last
// finished record (acked, or deferred after the deferred copy was confirmed),
// and is committed only then, so a crash redelivers and never skips. Work on
// a partition the group takes away is abandoned uncommitted: the new owner
// gets those messages again (at-least-once).

import type { Consumer, EachBatchPayload, IMemberAssignment, Kafka } from 'kafkajs';
import { backoffCeiling } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import { refusedForShape, type Disposition, type Handler, type Message, type Subscription } from '../broker.ts';
import { invoke, logFailure, received, type FailureReport } from '../handler.ts';
import { OffsetCommits, type CommitPosition } from './commits.ts';
import { classify, isRebalance } from './errors.ts';
import { FetchBudget, ownBytes, type FetchLimits } from './fetch-budget.ts';
import { PartitionWork, partitionKey, type Rec } from './partition.ts';
import { fromRecord, OFFSET_HEADER, PARTITION_HEADER } from './records.ts';

export interface SubscriptionOptions {
  kafka: Kafka;
  source: string;
  deferTopic: string;
  group: string;
  prefetch: number;
  handler: Handler;
  /** Publishes a deferred copy to the deferral topic; resolves once the broker confirmed it. */
  defer(topic: string, message: Message, notBefore: number): Promise<void>;
  sessionTimeoutMs: number;
  /**
   * kafkajs' maxWaitTimeInMs (TURNOUT_KAFKA_FETCH_WAIT). Besides an idle
   * fetch's wait, it is how long a partition resumed below half its buffer
   * waits for the fetch under way: when every partition with records is
   * paused, that fetch asks only for empty ones (or kafkajs sleeps), and the
   * broker holds it this long. So a backlog drains at most about
   * (half a buffer) / (this wait) per partition: bench/RESULTS-kafka.md.
   */
  fetchWaitMs: number;
  /** The buffer bounds (fetch-budget.ts); tests set smaller ones. */
  limits?: FetchLimits;
  logger: Logger;
}

/** Least time between two log lines saying the shared buffer bound was reached (a backlog on many partitions reaches it again and again). */
const PRESSURE_LOG_SPACING_MS = 60_000;
/** Least time between two commit requests (commits.ts). */
const COMMIT_SPACING_MS = 50;
/** Longest setTimeout Node accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class KafkaSubscription implements Subscription {
  readonly source: string;
  readonly deferTopic: string;
  readonly group: string;
  private readonly options: SubscriptionOptions;
  private readonly report: FailureReport;
  private readonly log: Logger;
  private consumer: Consumer | undefined;
  private readonly parts = new Map<string, PartitionWork>();
  private ready: PartitionWork[] = [];
  /** Handler calls not yet settled, abandoned ones included: they still occupy the app. */
  private active = 0;
  private stopped = false;
  private closed = false;
  /** Between the group telling us to rejoin and the new assignment: nothing new starts. */
  private rebalancing = false;
  private memberId: string | undefined;
  /** Partitions of the current assignment: a batch for any other (fetched before a rebalance) is ignored. */
  private assigned = new Set<string>();
  /** Highest offset handed out per partition, across rebalances: marks refetched copies redelivered. */
  private readonly handedOut = new Map<string, bigint>();
  private readonly commits: OffsetCommits;
  private healthy = true;
  private restartTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly budget: FetchBudget;
  /** Times the shared bound was reached since it was last logged, and when that was. */
  private pressures = 0;
  private pressureLoggedAt = -Infinity;

  constructor(options: SubscriptionOptions) {
    this.options = options;
    this.source = options.source;
    this.deferTopic = options.deferTopic;
    this.group = options.group;
    this.log = options.logger.child({ source: options.source, group: options.group });
    this.report = logFailure(this.log);
    this.budget = new FetchBudget(options.limits);
    this.commits = new OffsetCommits({
      sender: () => {
        const consumer = this.consumer;
        if (!consumer) return undefined;
        return (positions: CommitPosition[]) =>
          consumer.commitOffsets(positions.map((position) => ({ topic: position.topic, partition: position.partition, offset: String(position.offset) })));
      },
      closing: () => this.closed,
      failed: (err) => {
        if (isRebalance(err)) this.log.debug({ err: classify(err, 'commit') }, 'commit waits for the rebalance to finish');
        else this.log.warn({ err: classify(err, 'commit') }, 'kafka offset commit failed; retrying');
      },
      spacingMs: COMMIT_SPACING_MS,
    });
  }

  /** Handler calls not yet settled. */
  get inflight(): number {
    return this.active;
  }

  /** Payload bytes fetched from the source and not yet finished: what the shared bound counts (tests). */
  get buffered(): number {
    return this.budget.total;
  }

  /** Payload bytes fetched and not yet finished, by topic: the source's and the deferral topic's (0 when none). */
  bufferedByTopic(): Map<string, number> {
    const out = new Map<string, number>([[this.source, 0], [this.deferTopic, 0]]);
    for (const p of this.parts.values()) out.set(p.topic, (out.get(p.topic) ?? 0) + p.bufferedBytes);
    return out;
  }

  /** False after the consumer crashed, until it has joined the group again. */
  isHealthy(): boolean {
    return this.healthy || this.stopped;
  }

  /** Connects and subscribes (rejects when a topic does not exist); joining the group continues in the background. */
  async start(): Promise<void> {
    const consumer = this.newConsumer();
    try {
      await consumer.connect();
      // A group without committed offsets starts at the beginning: nothing
      // published before turnout first joined is skipped.
      await consumer.subscribe({ topics: [this.source, this.deferTopic], fromBeginning: true });
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw classify(err, `subscribe to ${this.source}`);
    }
    this.consumer = consumer;
    this.run(consumer);
  }

  private newConsumer(): Consumer {
    const session = this.options.sessionTimeoutMs;
    const consumer = this.options.kafka.consumer({
      groupId: this.group,
      sessionTimeout: session,
      // Heartbeats come from kafkajs' fetch loop, which never waits for a
      // delivery here; a few per session timeout keep the member alive.
      heartbeatInterval: Math.min(3000, Math.max(100, Math.floor(session / 5))),
      rebalanceTimeout: Math.max(60_000, session),
      maxWaitTimeInMs: this.options.fetchWaitMs,
      allowAutoTopicCreation: false,
    });
    consumer.on(consumer.events.REBALANCING, () => {
      this.rebalancing = true;
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssigned(e.payload.memberId, e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => this.onCrash(consumer, e.payload.error, e.payload.restart));
    return consumer;
  }

  private run(consumer: Consumer): void {
    consumer
      .run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (payload) => this.take(payload),
      })
      .catch((err: unknown) => {
        this.healthy = false;
        this.log.error({ err: classify(err, 'kafka consumer') }, 'kafka consumer failed to start');
        this.scheduleRestart();
      });
  }

  // --- fetching ------------------------------------------------------------

  /** The batch callback: buffer, resolve (so kafkajs fetches on), return. */
  private async take({ batch, resolveOffset, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const key = partitionKey(batch.topic, batch.partition);
    if (this.stopped || !isRunning() || isStale() || !this.assigned.has(key)) return;
    let p = this.parts.get(key);
    if (!p) {
      p = new PartitionWork(batch.topic, batch.partition, batch.topic === this.deferTopic);
      this.parts.set(key, p);
    }
    const seenUpTo = this.handedOut.get(key);
    for (const record of batch.messages) {
      const offset = BigInt(record.offset);
      if (p.fetchNext !== undefined && offset < p.fetchNext) continue; // already buffered
      const decoded = fromRecord(batch.topic, batch.partition, record);
      decoded.message.payload = ownBytes(decoded.message.payload);
      if (!p.deferral) {
        decoded.message.headers[PARTITION_HEADER] = String(batch.partition);
        decoded.message.headers[OFFSET_HEADER] = record.offset;
      }
      const rec: Rec = {
        offset,
        message: decoded.message,
        redelivered: seenUpTo !== undefined && offset <= seenUpTo,
        size: decoded.message.payload.length,
      };
      if (p.deferral && decoded.notBefore !== undefined) rec.notBefore = decoded.notBefore;
      p.push(rec);
      if (this.budget.added(p, rec.size)) this.onPressure();
      p.fetchNext = offset + 1n;
    }
    if (p.fetchNext !== undefined) resolveOffset(String(p.fetchNext - 1n));
    if (this.budget.shouldPause(p)) this.pause(p);
    this.markReady(p);
    this.pump();
  }

  private pause(p: PartitionWork): void {
    if (p.paused) return;
    p.paused = true;
    try {
      this.consumer?.pause([{ topic: p.topic, partitions: [p.partition] }]);
    } catch {
      // consumer between runs (crash restart): it starts unpaused and the state is rebuilt on join
    }
  }

  private resume(p: PartitionWork): void {
    if (!p.paused) return;
    p.paused = false;
    try {
      this.consumer?.resume([{ topic: p.topic, partitions: [p.partition] }]);
    } catch {
      // see pause()
    }
  }

  private maybeResume(p: PartitionWork): void {
    if (!p.paused || p.gone || this.stopped) return;
    const head = p.peek();
    if (p.deferral && head?.notBefore !== undefined && head.notBefore > Date.now()) return;
    if (this.budget.mayResume(p)) this.resume(p);
  }

  // --- handing out ---------------------------------------------------------

  private markReady(p: PartitionWork): void {
    if (p.inReady || p.running || p.timer || p.gone || p.length === 0) return;
    p.inReady = true;
    this.ready.push(p);
  }

  private pump(): void {
    while (!this.stopped && !this.rebalancing && this.active < this.options.prefetch && this.ready.length > 0) {
      const p = this.ready.shift() as PartitionWork;
      p.inReady = false;
      if (p.gone || p.running || p.timer || p.length === 0) continue;
      const rec = p.peek() as Rec;
      if (p.deferral && rec.notBefore !== undefined && rec.notBefore > Date.now()) {
        this.waitUntilDue(p, rec.notBefore);
        continue;
      }
      this.hand(p, rec);
    }
  }

  /** A deferral partition whose head is not due: stop fetching it and come back when it is. */
  private waitUntilDue(p: PartitionWork, at: number): void {
    this.pause(p);
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.markReady(p);
      this.pump();
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())));
  }

  private hand(p: PartitionWork, rec: Rec): void {
    this.active++;
    p.running = true;
    const seen = this.handedOut.get(p.key);
    if (seen === undefined || rec.offset > seen) this.handedOut.set(p.key, rec.offset);
    this.maybeResume(p);
    const message = received(rec.message, this.source, rec.redelivered);
    if (rec.deferRefused !== undefined) message.deferRefused = rec.deferRefused;
    invoke(this.options.handler, message, this.report, (disposition) => this.settle(p, rec, disposition))
      .catch((err: unknown) => this.log.error({ err }, 'settling a kafka message failed'));
  }

  private async settle(p: PartitionWork, rec: Rec, disposition: Disposition): Promise<void> {
    try {
      if (p.gone) {
        this.log.debug({ id: rec.message.id, partition: p.partition, offset: String(rec.offset), outcome: disposition.kind },
          'outcome of a message on a partition no longer ours is not applied; its new owner handles it again');
        return;
      }
      switch (disposition.kind) {
        case 'ack':
          this.finish(p, rec);
          return;
        case 'defer':
          try {
            await this.options.defer(this.deferTopic, { ...rec.message, headers: disposition.headers }, Date.now() + disposition.delayMs);
          } catch (err) {
            // Refused for what it is, not for the broker being away: deferring it again cannot work.
            if (refusedForShape(err)) rec.deferRefused = err.message;
            this.log.warn({ err, id: rec.message.id }, 'could not publish the deferred copy; the message will be handed out again');
            this.retry(p, rec);
            return;
          }
          this.finish(p, rec);
          return;
        case 'reject':
          // nativeDeadLetter is false, so the pipeline never asks; keep the message rather than drop it.
          this.log.error({ id: rec.message.id, reason: disposition.reason }, 'Kafka has no dead-letter mechanism of its own; the message is kept');
          this.retry(p, rec);
          return;
        case 'release':
          this.retry(p, rec);
          return;
      }
    } finally {
      this.active--;
      p.running = false;
      this.markReady(p);
      this.pump();
      if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** The head's outcome is final: move past it and commit. */
  private finish(p: PartitionWork, rec: Rec): void {
    if (p.gone) return;
    p.shift();
    this.unbuffered(p, rec.size);
    p.releases = 0;
    this.commits.advance({ topic: p.topic, partition: p.partition, offset: rec.offset + 1n });
    this.commits.schedule();
    this.maybeResume(p);
  }

  /** The shared bound was reached: said at most once a minute, with how often since. */
  private onPressure(): void {
    this.pressures++;
    const now = Date.now();
    if (now - this.pressureLoggedAt < PRESSURE_LOG_SPACING_MS) return;
    this.pressureLoggedAt = now;
    const l = this.budget.limits;
    this.log.info(
      { bufferedBytes: this.budget.total, partitions: this.parts.size, times: this.pressures },
      `records fetched from ${this.source} reached the shared buffer bound (${l.totalBytes} bytes): partitions holding ${l.floorRecords} records or ${l.floorBytes} bytes pause until it is below half`,
    );
    this.pressures = 0;
  }

  /** Records left p's buffer: when the shared bound's pressure ends, every partition it paused may fetch again. */
  private unbuffered(p: PartitionWork, bytes: number): void {
    if (this.budget.removed(p, bytes)) for (const q of this.parts.values()) this.maybeResume(q);
  }

  /** The head comes again after a short, growing pause (no hot loop while e.g. the DLQ is down). */
  private retry(p: PartitionWork, rec: Rec): void {
    if (p.gone) return;
    rec.redelivered = true;
    p.releases++;
    if (this.stopped) return; // the broker hands it out again after close
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.markReady(p);
      this.pump();
    }, backoffCeiling(p.releases, 100, 5000));
  }

  // --- committing ----------------------------------------------------------

  /** Until every finished offset is committed (or the deadline passes). */
  private async flush(deadline: number): Promise<void> {
    if (!(await this.commits.flush(deadline))) {
      this.log.warn({ partitions: this.commits.size }, 'some finished kafka messages could not be committed; they will be handed out again');
    }
  }

  // --- group membership ----------------------------------------------------

  private onAssigned(memberId: string, assignment: IMemberAssignment): void {
    const keep = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const partition of partitions) keep.add(partitionKey(topic, partition));
    // A new member id means the group forgot us (session expired): nothing we hold is ours any more.
    const fresh = memberId !== this.memberId;
    this.memberId = memberId;
    this.assigned = keep;
    for (const p of [...this.parts.values()]) {
      if (fresh || !keep.has(p.key)) this.revoke(p);
      else if (p.fetchNext !== undefined) {
        // Kept: continue fetching after what is buffered, not from the committed offset.
        this.consumer?.seek({ topic: p.topic, partition: p.partition, offset: String(p.fetchNext) });
      }
    }
    this.rebalancing = false;
    this.healthy = true;
    this.log.info({ assignment }, 'kafka partitions assigned');
    if (this.stopped) this.consumer?.pause([{ topic: this.source }, { topic: this.deferTopic }]);
    this.commits.schedule();
    this.pump();
  }

  /** Taken away: drop the buffer, abandon what is running, commit nothing more for it. */
  private revoke(p: PartitionWork, keepCommit = false): void {
    p.gone = true;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    const held = p.bufferedBytes;
    p.clear();
    this.parts.delete(p.key);
    this.unbuffered(p, held);
    if (!keepCommit) this.commits.forget(p.key);
    if (p.paused) {
      try {
        this.consumer?.resume([{ topic: p.topic, partitions: [p.partition] }]);
      } catch {
        // consumer between runs
      }
    }
  }

  private onCrash(consumer: Consumer, error: Error, restart: boolean): void {
    if (consumer !== this.consumer) return;
    this.healthy = false;
    this.rebalancing = true;
    this.memberId = undefined;
    this.assigned = new Set();
    for (const p of [...this.parts.values()]) this.revoke(p);
    this.log.error({ err: classify(error, 'kafka consumer'), restart }, 'kafka consumer crashed; its partitions are given up');
    // kafkajs restarts by itself on retriable errors; otherwise start a new consumer.
    if (!restart) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      const old = this.consumer;
      void (async () => {
        await old?.disconnect().catch(() => {});
        this.consumer = undefined;
        try {
          await this.start();
        } catch (err) {
          this.log.error({ err }, 'restarting the kafka consumer failed; trying again');
          this.scheduleRestart();
        }
      })();
    }, 5000);
  }

  // --- ending --------------------------------------------------------------

  private whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * No new handler call starts after this resolves. Running ones finish and
   * are committed; then the consumer leaves the group so that the rest of its
   * partitions go to the other members.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ready = [];
    for (const p of this.parts.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
    }
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    try {
      this.consumer?.pause([{ topic: this.source }, { topic: this.deferTopic }]);
    } catch {
      // not running yet
    }
    // Leaves the group in the background once idle; close() does not wait for it (it flushes and disconnects itself).
    void (async () => {
      await this.whenIdle();
      await this.flush(Date.now() + 2 * this.options.sessionTimeoutMs);
      if (!this.closed) await this.disconnect();
    })().catch((err: unknown) => this.log.warn({ err }, 'leaving the kafka group failed'));
  }

  /** Abandons what is still running (the broker hands it out again), commits what finished, leaves the group. */
  async close(): Promise<void> {
    await this.stop();
    this.closed = true;
    for (const p of [...this.parts.values()]) this.revoke(p, true);
    for (const wake of this.idleWaiters.splice(0)) wake();
    await this.flush(Date.now() + 5000);
    await this.disconnect();
  }

  private async disconnect(): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    await consumer.disconnect().catch((err: unknown) => this.log.debug({ err }, 'kafka consumer disconnect failed'));
  }
}
