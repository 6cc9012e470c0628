// The RabbitMQ adapter (AMQP 0-9-1 with amqplib).
//
// Two connections: one consumes (a channel per consumed source, manual acks,
// prefetch; queue checks and declarations), one publishes (one confirm
// channel for every publish). RabbitMQ stops reading a connection that
// publishes during a memory or disk alarm, acks included: on one connection
// a single dead-letter copy or POST /v1/publish would stop the sidecar's
// consuming until the alarm clears, when draining queues is what ends it.
// Sources are only checked, never declared: turnout declares only what it
// owns, the per-source delay queue used for deferrals. The two are opened and
// lost together: either one lost, both are re-opened with backoff and every
// subscription resumes; what was unacked meanwhile is redelivered by RabbitMQ.

import { hostname } from 'node:os';
import * as amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { backoffCeiling } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import { PUBLISH_FINISH_WAIT_MS, settledWithin, UnderWay } from '../../lib/settle.ts';
import {
  BrokerError,
  type AdapterContext,
  type BrokerAdapter,
  type ConsumeOptions,
  type Handler,
  type Message,
  type PublishOptions,
  type Backlog,
  type QueueDepth,
  type Subscription,
  type Sweep,
  type SweepOptions,
} from '../broker.ts';
import { capabilities } from './capabilities.ts';
import { delayQueueArguments, delayQueueName } from './delay.ts';
import { classify, redact } from './errors.ts';
import { ManagementClient, managementTarget } from './management.ts';
import { Publisher, type BrokerLimits } from './publisher.ts';
import { amqpOptions, type AmqpOptions } from './options.ts';
import { AmqpSubscription } from './subscription.ts';
import { AmqpSweep } from './sweep.ts';

/** Heartbeat when the URL sets none: a dead peer is noticed within ~2 intervals, so /readyz does not lie for minutes. */
const DEFAULT_HEARTBEAT_S = 15;

export type { AmqpOptions } from './options.ts';

export function create(ctx: AdapterContext): AmqpBroker {
  return new AmqpBroker(amqpOptions(ctx));
}

export class AmqpBroker implements BrokerAdapter {
  readonly kind = 'amqp';
  readonly capabilities = capabilities;
  private readonly options: AmqpOptions;
  private readonly url: string;
  private readonly log: Logger;
  private readonly management: ManagementClient;
  private readonly limits: BrokerLimits = {};
  /** The consuming connection: subscriptions, their acks, queue checks and declarations. */
  private conn: ChannelModel | undefined;
  /** The publishing connection, under the publisher. */
  private pubConn: ChannelModel | undefined;
  private publisher: Publisher | undefined;
  private closed = false;
  /** RabbitMQ's reason while it blocks the publishing connection (connection.blocked), until connection.unblocked. */
  private blocked: string | undefined;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly subs = new Set<AmqpSubscription>();
  /** Consumer channels closing (after the acks written on them): close() waits for them before the connection's end. */
  private readonly channelCloses = new UnderWay();
  /** Publishes awaiting their confirm: close() lets them finish before the connection ends. */
  private readonly publishes = new UnderWay();
  /** Delay queues declared (or being declared) on the broker, by name. */
  private readonly delayQueues = new Map<string, Promise<void>>();

  constructor(options: AmqpOptions) {
    this.options = options;
    const { amqpUrl, target } = managementTarget(options.url);
    const u = new URL(amqpUrl);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
    this.url = u.toString();
    this.log = options.logger;
    this.management = new ManagementClient(target);
  }

  async connect(): Promise<void> {
    if (this.closed) throw new BrokerError('unavailable', 'the RabbitMQ adapter is closed');
    if (this.conn) return;
    await this.open();
  }

  isUp(): boolean {
    return this.conn !== undefined && !this.closed && this.blocked === undefined;
  }

  downReason(): string | undefined {
    if (this.conn === undefined || this.closed || this.blocked === undefined) return undefined;
    return `RabbitMQ is blocking publishes (resource alarm: ${this.blocked})`;
  }

  async consume(source: string, handler: Handler, options: ConsumeOptions): Promise<Subscription> {
    const conn = this.conn;
    if (!conn || this.closed) throw new BrokerError('unavailable', `not connected to RabbitMQ; cannot consume ${source}`);
    const sub = new AmqpSubscription(source, handler, options.prefetch, {
      logger: this.log,
      defer: (src, message, delayMs) => this.publishDeferred(src, message, delayMs),
      lost: (lostSub) => this.restartLater(lostSub),
      closing: (done) => void this.channelCloses.track(done),
    });
    await sub.start(conn);
    this.forgetFinished();
    this.subs.add(sub);
    this.log.info({ source, prefetch: options.prefetch }, `consuming ${source} with manual acks, prefetch ${options.prefetch}`);
    return sub;
  }

  async publish(queue: string, message: Message, options?: PublishOptions): Promise<void> {
    const p = this.publisher;
    if (!p || this.closed) throw new BrokerError('unavailable', `not connected to RabbitMQ; message ${message.id} to ${queue} not published`);
    // RabbitMQ stops reading a blocked connection: a publish written now waits
    // for the alarm to clear, or ends unconfirmed at the confirm timeout.
    // (Only the publishing one: consuming and acking go on meanwhile.)
    if (options?.failFast === true && this.blocked !== undefined) {
      throw new BrokerError('unavailable', `RabbitMQ is blocking publishes on this connection (resource alarm: ${this.blocked}); message ${message.id} to ${queue} not sent`);
    }
    await this.publishes.run(() => p.publish(queue, message));
  }

  async depth(queue: string): Promise<QueueDepth> {
    // Deferred messages of this queue are waiting too, in turnout's delay queue.
    const { depth, deferred, inflight } = await this.backlog(queue);
    return { queue, depth: depth + deferred, inflight };
  }

  async backlog(queue: string): Promise<Backlog> {
    const ch = await this.throwawayChannel('a queue check');
    try {
      let depth: number;
      try {
        depth = (await ch.checkQueue(queue)).messageCount;
      } catch (err) {
        throw classify(err, `checking queue ${queue}`);
      }
      let deferred = 0;
      const check = await this.throwawayChannel('a delay queue check');
      try {
        deferred = (await check.checkQueue(delayQueueName(queue))).messageCount;
      } catch {
        // no delay queue: nothing deferred
      } finally {
        check.close().catch(() => {});
      }
      this.forgetFinished();
      let local = 0;
      for (const sub of this.subs) if (sub.source === queue) local += sub.inflight;
      const broker = await this.management.unacked(queue);
      return { queue, depth, inflight: broker ?? local, deferred };
    } finally {
      ch.close().catch(() => {});
    }
  }

  async sweep(queue: string, _options: SweepOptions): Promise<Sweep> {
    const ch = await this.throwawayChannel('a move');
    return AmqpSweep.open(ch, queue, (to, message) => this.publish(to, message));
  }

  /** A plain channel whose errors are answered by the call that caused them (a passive check of a missing queue closes it). */
  private async throwawayChannel(purpose: string): Promise<amqp.Channel> {
    const conn = this.conn;
    if (!conn || this.closed) throw new BrokerError('unavailable', 'not connected to RabbitMQ');
    let ch: amqp.Channel;
    try {
      ch = await conn.createChannel();
    } catch (err) {
      throw classify(err, `opening a channel for ${purpose}`);
    }
    ch.on('error', () => {});
    return ch;
  }

  /** Stopped subscriptions whose messages are all settled are no longer tracked. */
  private forgetFinished(): void {
    for (const sub of this.subs) if (sub.isStopped && sub.inflight === 0) this.subs.delete(sub);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const sub of this.subs) sub.close();
    // A publish that RabbitMQ took but whose confirm the close cut off would fail, and be sent
    // again by its caller: new publishes fail from here on (never sent), those under way finish.
    if (!(await this.publishes.finish())) {
      this.log.warn({ publishes: this.publishes.size, waitedMs: PUBLISH_FINISH_WAIT_MS }, 'closing with publishes still awaiting their confirm; they fail, and may have reached RabbitMQ');
    }
    const conn = this.conn;
    const pubConn = this.pubConn;
    this.conn = undefined;
    this.pubConn = undefined;
    this.publisher = undefined;
    // Acks go before the connection's end (see SubscriptionDeps.closing); a broker that does not answer costs at most this.
    if (conn) await this.channelCloses.finish(CHANNEL_CLOSE_WAIT_MS);
    // Closing the consuming connection hands every unacked message back to RabbitMQ.
    await Promise.all([conn, pubConn].map((c) => (c ? this.closeConnection(c) : undefined)));
  }

  private async closeConnection(conn: ChannelModel): Promise<void> {
    const closing = conn.close().catch((err: unknown) => this.log.debug({ err }, 'closing the connection failed'));
    // amqplib waits for RabbitMQ's close-ok without a deadline: a broker that does not answer would hold the shutdown.
    if (!(await settledWithin([closing], CONNECTION_CLOSE_WAIT_MS))) {
      this.log.warn({ waitedMs: CONNECTION_CLOSE_WAIT_MS }, 'RabbitMQ did not answer the connection close; dropping the connection (RabbitMQ requeues its unacked messages when it sees it gone)');
      // No public way to end it: the socket under amqplib's connection (ChannelModel.connection.stream).
      (conn as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
    }
  }

  private async open(): Promise<void> {
    const name = this.options.connectionName ?? `turnout ${hostname()}`;
    const conn = await this.connectOne(name);
    let pubConn: ChannelModel;
    try {
      pubConn = await this.connectOne(`${name} (publish)`);
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
    for (const c of [conn, pubConn]) {
      c.on('error', (err: Error) => this.log.warn({ err }, 'RabbitMQ connection error'));
      c.on('close', (err?: Error) => this.onConnectionClosed(c, err));
    }
    // The consuming connection never publishes, so RabbitMQ never blocks it.
    pubConn.on('blocked', (reason: string) => {
      if (pubConn !== this.pubConn) return;
      this.blocked = reason === '' ? 'no reason given' : reason;
      this.log.warn({ reason }, 'RabbitMQ blocked the publishing connection (resource alarm); consuming goes on, routed and dead-letter copies wait, POST /v1/publish answers 503');
    });
    pubConn.on('unblocked', () => {
      if (pubConn !== this.pubConn) return;
      this.blocked = undefined;
      this.log.info('RabbitMQ unblocked the publishing connection');
    });
    if (this.closed) {
      await Promise.all([conn.close().catch(() => {}), pubConn.close().catch(() => {})]);
      throw new BrokerError('unavailable', 'the RabbitMQ adapter is closed');
    }
    this.conn = conn;
    this.pubConn = pubConn;
    this.blocked = undefined;
    this.publisher = new Publisher(pubConn, { logger: this.log, limits: this.limits, confirmTimeoutMs: this.options.confirmTimeoutMs ?? 30_000 });
    this.log.info({ url: redact(this.url) }, 'connected to RabbitMQ (a consuming and a publishing connection)');
  }

  private async connectOne(name: string): Promise<ChannelModel> {
    try {
      return await amqp.connect(this.url, {
        timeout: 10_000,
        // A publish is three small frames and an ack one; Nagle's algorithm would hold them back waiting for the broker's TCP ack.
        noDelay: true,
        clientProperties: { connection_name: name },
      });
    } catch (err) {
      throw classify(err, `connecting to ${redact(this.url)}`);
    }
  }

  /** Either connection lost: both go, and are re-opened together. */
  private onConnectionClosed(conn: ChannelModel, err: Error | undefined): void {
    if (conn !== this.conn && conn !== this.pubConn) return;
    const other = conn === this.conn ? this.pubConn : this.conn;
    const which = conn === this.conn ? 'consuming' : 'publishing';
    this.conn = undefined;
    this.pubConn = undefined;
    this.publisher = undefined;
    for (const sub of this.subs) sub.detach();
    // Its close event then finds it no longer current.
    if (other) void this.closeConnection(other);
    if (this.closed) return;
    this.log.warn({ err, connection: which }, `lost the RabbitMQ connection (the ${which} one); closing the other; unacked messages return to their queues; reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectAttempt++;
    const delay = this.backoff(this.reconnectAttempt);
    this.log.info({ attempt: this.reconnectAttempt, delayMs: delay }, 'reconnecting to RabbitMQ');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open().then(() => {
        this.log.info({ attempts: this.reconnectAttempt }, 'reconnected to RabbitMQ; resuming consumers');
        this.reconnectAttempt = 0;
        for (const sub of this.subs) void this.resubscribe(sub);
      }, (err: unknown) => {
        this.log.warn({ err: classify(err, 'reconnecting') }, 'reconnecting to RabbitMQ failed');
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** A subscription's channel died while the connection may still be up (consumer timeout, queue deleted…). */
  private restartLater(sub: AmqpSubscription): void {
    setTimeout(() => void this.resubscribe(sub), this.backoff(sub.failedStart()));
  }

  private async resubscribe(sub: AmqpSubscription): Promise<void> {
    const conn = this.conn;
    // Without a connection the reconnect loop resubscribes everything.
    if (!conn || this.closed || sub.isStopped) return;
    try {
      await sub.start(conn);
    } catch (err) {
      this.log.error({ err, source: sub.source }, `could not consume ${sub.source} again; retrying`);
      if (this.conn === conn) this.restartLater(sub);
    }
  }

  /**
   * The reconnect and restart wait: uniform between half the first delay
   * and the exponential ceiling (lib/backoff.ts), so even the first retry is
   * spread out. Neither "full" (0 to ceiling) nor "equal" jitter (half
   * ceiling to ceiling, lib/backoff.ts backoffDelay) of the delivery retries.
   */
  private backoff(attempt: number): number {
    const min = this.options.reconnectMinMs ?? 250;
    const max = this.options.reconnectMaxMs ?? 10_000;
    const ceiling = backoffCeiling(attempt, min, max);
    return Math.round(min / 2 + Math.random() * (ceiling - min / 2));
  }

  /** Puts the deferred copy into the source's delay queue (declared on first use); resolves on confirm. */
  private async publishDeferred(source: string, message: Message, delayMs: number): Promise<void> {
    const queue = delayQueueName(source);
    for (let attempt = 1; ; attempt++) {
      await this.declareDelayQueue(source, queue);
      const p = this.publisher;
      if (!p || this.closed) throw new BrokerError('unavailable', `not connected to RabbitMQ; message ${message.id} not deferred`);
      try {
        await this.publishes.run(() => p.publish(queue, message, { expiration: delayMs }));
        return;
      } catch (err) {
        // someone deleted the delay queue: declare it again, once
        if (attempt === 1 && err instanceof BrokerError && err.code === 'unknown-queue') {
          this.delayQueues.delete(queue);
          continue;
        }
        throw err;
      }
    }
  }

  /** One declaration per delay queue, shared by the deferrals that need it meanwhile. */
  private declareDelayQueue(source: string, queue: string): Promise<void> {
    const known = this.delayQueues.get(queue);
    if (known) return known;
    const declared = this.assertDelayQueue(source, queue);
    this.delayQueues.set(queue, declared);
    // a failed declaration is tried again by the next deferral
    declared.catch(() => {
      if (this.delayQueues.get(queue) === declared) this.delayQueues.delete(queue);
    });
    return declared;
  }

  private async assertDelayQueue(source: string, queue: string): Promise<void> {
    const conn = this.conn;
    if (!conn) throw new BrokerError('unavailable', 'not connected to RabbitMQ');
    let ch: amqp.Channel;
    try {
      ch = await conn.createChannel();
    } catch (err) {
      throw classify(err, 'opening a channel to declare a delay queue');
    }
    ch.on('error', () => {}); // the declare's rejection carries the reason
    try {
      await ch.assertQueue(queue, { durable: true, arguments: delayQueueArguments(source) });
    } catch (err) {
      const e = classify(err, `declaring the delay queue ${queue}`);
      if (e.code === 'invalid') {
        e.message += ` (a queue of that name exists with other arguments; turnout owns "${queue}": delete it when it is empty and turnout declares it again)`;
      }
      this.log.error({ err: e, queue }, 'cannot declare the delay queue; deferrals wait');
      throw e;
    }
    ch.close().catch(() => {});
    this.log.info({ queue, source }, `declared delay queue ${queue}: deferred messages wait there for their TTL, then RabbitMQ dead-letters them back to ${source}`);
  }
}

/** How long close() waits for consumer channels to close before it ends the connection anyway. */
const CHANNEL_CLOSE_WAIT_MS = 5_000;
/** How long close() waits for RabbitMQ to answer the connection close before it drops the socket. */
const CONNECTION_CLOSE_WAIT_MS = 5_000;
