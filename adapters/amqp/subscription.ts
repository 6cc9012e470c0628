// One consumer of one source queue: its own channel with manual acks and
// prefetch, re-created after a lost channel or connection. Each channel is a
// "generation"; a message is always settled on the channel it came from (a
// delivery tag means nothing on another channel), and a generation that is
// being replaced stays open until its in-flight messages are settled.

import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../lib/log.ts';
import { isBrokerError, type Disposition, type Handler, type Message, type Received, type Subscription } from '../broker.ts';
import { invoke, logFailure, type FailureReport } from '../handler.ts';
import { sleep } from '../../lib/backoff.ts';
import { fromDelivery } from './codec.ts';
import { delayQueueName, stripOwnDeath } from './delay.ts';
import { classify } from './errors.ts';
import { RefusedDeferrals } from '../refused-deferrals.ts';

interface Generation {
  channel: Channel;
  tag: string | undefined;
  active: number;
  /** Replaced or stopped: takes no new message, closes once `active` is 0. */
  retired: boolean;
  /** The channel is closed (by us, the broker, or with the connection). */
  dead: boolean;
}

export interface SubscriptionDeps {
  logger: Logger;
  /** Publishes the deferred copy to the source's delay queue; resolves on confirm. */
  defer(source: string, message: Message, delayMs: number): Promise<void>;
  /** The channel died while the subscription should still be consuming. */
  lost(sub: AmqpSubscription): void;
  /**
   * A channel close under way: the connection's close waits for it. amqplib
   * writes the frames of its channels round-robin, so a connection close
   * could overtake acks still queued on a channel, and RabbitMQ discards
   * what follows a connection close: those messages would come again. A
   * channel's own close goes after its acks, and its close-ok says
   * RabbitMQ took them.
   */
  closing(done: Promise<unknown>): void;
}

/** How long a message whose deferral could not be published is held before it is released (no hot loop). */
const DEFER_FAILURE_HOLD_MS = 5_000;

export class AmqpSubscription implements Subscription {
  readonly source: string;
  private readonly handler: Handler;
  private readonly prefetch: number;
  private readonly deps: SubscriptionDeps;
  private readonly delayQueue: string;
  private current: Generation | undefined;
  private readonly generations = new Set<Generation>();
  private starting: Promise<void> | undefined;
  private stopped = false;
  /** Consecutive failed starts, for the restart backoff. */
  private failures = 0;
  private readonly report: FailureReport;
  private readonly deferRefused = new RefusedDeferrals();

  constructor(source: string, handler: Handler, prefetch: number, deps: SubscriptionDeps) {
    this.source = source;
    this.handler = handler;
    this.prefetch = Math.max(1, prefetch);
    this.deps = deps;
    this.delayQueue = delayQueueName(source);
    this.report = logFailure(deps.logger);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Counts a failed start (or a lost channel) and returns how many in a row, for the restart backoff. */
  failedStart(): number {
    return ++this.failures;
  }

  /** Messages handed to the handler and not yet settled, over all generations. */
  get inflight(): number {
    let n = 0;
    for (const g of this.generations) n += g.active;
    return n;
  }

  /** Consumes on a new channel unless a live one exists. Throws a BrokerError (e.g. unknown-queue). */
  start(conn: ChannelModel): Promise<void> {
    if (this.stopped || (this.current && !this.current.dead && !this.current.retired)) return Promise.resolve();
    this.starting ??= this.open(conn).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async open(conn: ChannelModel): Promise<void> {
    let channel: Channel;
    try {
      channel = await conn.createChannel();
    } catch (err) {
      throw classify(err, `opening a channel to consume ${this.source}`);
    }
    const g: Generation = { channel, tag: undefined, active: 0, retired: false, dead: false };
    channel.on('error', (err: Error) => {
      // e.g. the consumer timeout (PRECONDITION_FAILED, delivery acknowledgement timed out): RabbitMQ requeued what was unacked.
      if (!g.retired) this.deps.logger.warn({ err, source: this.source }, 'consumer channel closed by RabbitMQ');
    });
    channel.on('close', () => {
      g.dead = true;
      this.generations.delete(g);
      if (this.current === g) this.current = undefined;
      if (!g.retired && !this.stopped) this.deps.lost(this);
    });
    try {
      await channel.prefetch(this.prefetch);
      const ok = await channel.consume(this.source, (msg) => this.onDelivery(g, msg), { noAck: false });
      g.tag = ok.consumerTag;
    } catch (err) {
      g.retired = true;
      channel.close().catch(() => {});
      const e = classify(err, `consuming ${this.source}`);
      if (e.code === 'unknown-queue') {
        e.message = `source queue "${this.source}" does not exist on RabbitMQ; turnout does not declare sources: create it (classic or quorum, with its dead-letter settings) first`;
      }
      throw e;
    }
    if (this.stopped) {
      // stop() was called while this channel was opening
      g.retired = true;
      this.closeWhenIdle(g);
      return;
    }
    this.generations.add(g);
    this.current = g;
    this.failures = 0;
  }

  /** Stops taking messages; running handlers still settle on their channel. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.starting?.catch(() => {});
    const g = this.current;
    this.current = undefined;
    if (!g) return;
    g.retired = true;
    if (!g.dead && g.tag !== undefined) {
      try {
        await g.channel.cancel(g.tag);
      } catch (err) {
        this.deps.logger.debug({ err, source: this.source }, 'cancelling the consumer failed; the channel is closed instead');
      }
    }
    this.closeWhenIdle(g);
  }

  /**
   * The adapter closes: nothing more is taken; each open channel is closed
   * after the acks written on it (deps.closing), and what is still unsettled
   * goes back to RabbitMQ.
   */
  close(): void {
    this.stopped = true;
    for (const g of this.generations) {
      if (g.dead) continue;
      g.dead = true;
      this.deps.closing(g.channel.close().catch(() => {}));
    }
    this.detach();
  }

  /** The connection is gone: every channel of it is dead; unsettled messages are back on the broker. */
  detach(): void {
    for (const g of this.generations) g.dead = true;
    this.current = undefined;
  }

  private onDelivery(g: Generation, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted, or a replica took over.
      this.deps.logger.warn({ source: this.source }, 'RabbitMQ cancelled the consumer; consuming again on a new channel');
      g.retired = true;
      if (this.current === g) this.current = undefined;
      this.closeWhenIdle(g);
      if (!this.stopped) this.deps.lost(this);
      return;
    }
    if (this.stopped || g.retired) {
      // Arrived between stop() and the broker's cancel-ok: hand it back untouched.
      this.settle(g, msg, { kind: 'release' }, undefined);
      return;
    }
    g.active++;
    let applied: Promise<void>;
    try {
      const received = fromDelivery(msg, this.source);
      stripOwnDeath(received.headers, this.delayQueue);
      const refused = this.deferRefused.take(received.id);
      if (refused !== undefined) received.deferRefused = refused;
      applied = invoke(this.handler, received, this.report, (disposition) => this.apply(g, msg, disposition, received));
    } catch (err) {
      // Not even readable: keep the message, as for a failed handler.
      this.deps.logger.error({ err, source: this.source }, 'a delivery could not be read; the message is released');
      applied = this.apply(g, msg, { kind: 'release' }, undefined);
    }
    applied
      .catch((err: unknown) => this.deps.logger.error({ err, source: this.source }, 'settling a message failed'))
      .finally(() => {
        g.active--;
        if (g.retired) this.closeWhenIdle(g);
      });
  }

  private async apply(g: Generation, msg: ConsumeMessage, disposition: Disposition, received: Received | undefined): Promise<void> {
    if (disposition.kind === 'defer' && received) {
      try {
        await this.deps.defer(this.source, { ...received, headers: disposition.headers }, disposition.delayMs);
      } catch (err) {
        // Refused for its shape: it will be refused again. Marked, so that its next delivery is dead-lettered instead.
        if (isBrokerError(err) && err.code === 'invalid') this.deferRefused.set(received.id, err.message);
        const hold = Math.min(Math.max(disposition.delayMs, 0), DEFER_FAILURE_HOLD_MS);
        this.deps.logger.warn({ err, source: this.source, id: received.id }, `deferring failed; the message is released in ${hold} ms`);
        await sleep(hold);
        this.settle(g, msg, { kind: 'release' }, received.id);
        return;
      }
      this.settle(g, msg, { kind: 'ack' }, received.id);
      return;
    }
    this.settle(g, msg, disposition.kind === 'defer' ? { kind: 'release' } : disposition, received?.id);
  }

  /** Sends the decision on the message's own channel. */
  private settle(g: Generation, msg: ConsumeMessage, disposition: Disposition, id: string | undefined): void {
    if (g.dead) {
      this.deps.logger.debug({ source: this.source, id, disposition: disposition.kind }, 'channel is gone; RabbitMQ redelivers the message');
      return;
    }
    try {
      switch (disposition.kind) {
        case 'ack':
        case 'defer':
          g.channel.ack(msg);
          break;
        case 'release':
          g.channel.nack(msg, false, true);
          break;
        case 'reject':
          // Without requeue: the queue's own dead-letter exchange (argument or policy) takes it.
          g.channel.nack(msg, false, false);
          break;
      }
    } catch (err) {
      this.deps.logger.debug({ err, source: this.source, id, disposition: disposition.kind }, 'could not settle: channel closed; RabbitMQ redelivers the message');
    }
  }

  private closeWhenIdle(g: Generation): void {
    if (g.active > 0 || g.dead) return;
    g.dead = true;
    this.generations.delete(g);
    this.deps.closing(g.channel.close().catch(() => {}));
  }
}
