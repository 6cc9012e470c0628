// One subscription to one SQS queue: long-polling receivers that keep at
// most `prefetch` messages held, a visibility lease per held message, FIFO
// groups worked one message at a time, and the dispositions applied:
//
//   ack      DeleteMessage (batched)
//   defer    a new copy with the new headers (SendMessage, DelaySeconds ≤ 900),
//            then DeleteMessage. A re-send, not ChangeMessageVisibility: the
//            copy starts at ApproximateReceiveCount 0, so deferrals never use up
//            the queue's RedrivePolicy.maxReceiveCount, and it carries the
//            deferral count. Longer delays and FIFO queues (no per-message
//            delay there) carry a not-before time: a copy that arrives early is
//            sent on again (standard) or held invisible until then (FIFO).
//   reject   back to SQS at once (visibility 0) for the queue's redrive policy;
//            while remembered, a returning copy is rejected again without
//            reaching the app, so it reaches the redrive DLQ in seconds.
//   release  visibility 0: handed out again, ApproximateReceiveCount grows.

import { ReceiveMessageCommand, type Message as SqsMessage, type SQSClient } from '@aws-sdk/client-sqs';
import { backoffDelay, sleep } from '../../lib/backoff.ts';
import { settledWithin } from '../../lib/settle.ts';
import type { Logger } from '../../lib/log.ts';
import { refusedForShape, type Disposition, type Handler, type Message, type Received, type Subscription } from '../broker.ts';
import { invoke, logFailure, type FailureReport } from '../handler.ts';
import { FifoGroups, releaseOrder } from './fifo-groups.ts';
import type { Batcher } from './batcher.ts';
import { decode } from './codec.ts';
import { classify, isStaleReceipt } from './errors.ts';
import { Lease, type LeaseSettings } from './lease.ts';
import type { SqsOptions } from './options.ts';
import type { QueueInfo } from './queues.ts';
import { RefusedDeferrals } from '../refused-deferrals.ts';
import type { RejectMemory } from './reject-memory.ts';

export interface VisibilityEntry {
  receiptHandle: string;
  seconds: number;
}

/** How the adapter re-sends a copy of a consumed message into its own queue. */
export type Resend = (
  queue: QueueInfo,
  message: Message,
  how: { delaySeconds: number; notBefore: number | undefined; groupId: string | undefined },
) => Promise<void>;

export interface SqsSubscriptionDeps {
  client: SQSClient;
  queue: QueueInfo;
  source: string;
  handler: Handler;
  prefetch: number;
  options: SqsOptions;
  logger: Logger;
  deletes: Batcher<string>;
  visibility: Batcher<VisibilityEntry>;
  resend: Resend;
  rejected: RejectMemory;
  /** Reports whether SQS answered the last receive (drives isUp). */
  onHealth: (ok: boolean) => void;
}

interface Held {
  id: string;
  message: Received;
  receipt: string;
  /** FIFO MessageGroupId. */
  group: string | undefined;
  lease: Lease;
  /** The handler was called. */
  started: boolean;
  /** Its fate is sealed (disposition applied, or released on stop/close). */
  finished: boolean;
}

/** SQS delays a message at most 15 minutes. */
const MAX_DELAY_SECONDS = 900;
/** Clocks of different hosts disagree a little; a copy this close to due is due. */
const DUE_TOLERANCE_MS = 1000;

export class SqsSubscription implements Subscription {
  readonly source: string;
  private readonly deps: SqsSubscriptionDeps;
  private readonly report: FailureReport;
  private readonly leaseSettings: LeaseSettings;
  private stopped = false;
  /** Ends backoff sleeps at stop(). */
  private readonly stopping = new AbortController();
  /** Cuts off receive requests still under way when close() stops waiting for them. */
  private readonly cutOff = new AbortController();
  /** Messages received and not yet decided by the handler (including FIFO ones waiting for their group). */
  private held = 0;
  /** Slots promised to receive calls under way. */
  private reserved = 0;
  private readonly unsettled = new Set<Held>();
  private readonly groups = new FifoGroups<Held>();
  private readonly applying = new Set<Promise<void>>();
  private roomWaiters: (() => void)[] = [];
  private loops: Promise<void>[] = [];
  /** Messages whose deferred copy SQS refused (too large for the queue once turnout's headers are added). */
  private readonly deferRefused = new RefusedDeferrals();

  constructor(deps: SqsSubscriptionDeps) {
    this.deps = deps;
    this.source = deps.source;
    this.report = logFailure(deps.logger);
    const vt = deps.queue.visibilityTimeout;
    this.leaseSettings = {
      extendSeconds: deps.options.visibilityExtensionSeconds ?? Math.max(5, vt),
      fraction: deps.options.heartbeatFraction,
      maxSeconds: deps.options.maxVisibilitySeconds,
    };
  }

  start(): void {
    const prefetch = Math.max(1, this.deps.prefetch);
    // Enough receivers that a full prefetch can be asked for at once.
    const receivers = Math.min(8, Math.ceil(prefetch / this.deps.options.receiveBatch));
    for (let i = 0; i < receivers; i++) this.loops.push(this.receiveLoop(prefetch));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Long polls under way are left to finish: a cancelled ReceiveMessage can
    // still take messages on the SQS side (it finds out about the closed
    // connection only when it answers), and those would stay hidden for a
    // whole visibility timeout. What they bring back is released at once.
    this.stopping.abort();
    this.wakeAll();
    // FIFO messages still waiting for their group will not be started: give them back, in order.
    await this.releaseInOrder(this.groups.items().filter((h) => !h.started));
  }

  /**
   * Stops receiving, waits for the long polls under way to answer (at most
   * WaitTimeSeconds, bounded by closeWaitMs), and hands every unsettled
   * message back to SQS.
   */
  async close(): Promise<void> {
    await this.stop();
    if (!(await settledWithin(this.loops, this.deps.options.closeWaitMs))) {
      this.deps.logger.warn({ source: this.deps.source, closeWaitMs: this.deps.options.closeWaitMs }, 'a receive request did not answer in time; cutting it off (a message it took stays hidden for the visibility timeout)');
      this.cutOff.abort();
      await Promise.allSettled(this.loops);
    }
    await this.releaseInOrder([...this.unsettled].filter((h) => !h.finished));
    await Promise.allSettled([...this.applying]);
  }

  get inflight(): number {
    return this.held;
  }

  // ---- receiving ----

  private async receiveLoop(prefetch: number): Promise<void> {
    let failures = 0;
    // Asking for one message each time one slot frees up would multiply the
    // receive requests (SQS bills them, and each costs a round trip); wait a
    // moment for a fuller batch, but never long enough to leave slots idle
    // behind slow jobs.
    const fill = Math.min(this.deps.options.receiveBatch, Math.max(1, Math.floor(prefetch / 2)));
    const room = (): number => prefetch - this.held - this.reserved;
    while (!this.stopped) {
      if (room() <= 0) {
        await this.waitForRoom();
        continue;
      }
      if (room() < fill && this.deps.options.receiveFillMs > 0) {
        const until = Date.now() + this.deps.options.receiveFillMs;
        while (!this.stopped && room() < fill && Date.now() < until) await this.waitForRoom(until - Date.now());
        if (this.stopped) break;
      }
      const free = room();
      if (free <= 0) continue;
      const n = Math.min(this.deps.options.receiveBatch, free);
      this.reserved += n;
      const startedAt = Date.now();
      let messages: SqsMessage[];
      try {
        const out = await this.deps.client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.deps.queue.url,
            MaxNumberOfMessages: n,
            WaitTimeSeconds: this.deps.options.waitTimeSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'MessageGroupId', 'MessageDeduplicationId'],
          }),
          { abortSignal: this.cutOff.signal },
        );
        messages = out.Messages ?? [];
        failures = 0;
        this.deps.onHealth(true);
      } catch (err) {
        this.reserved -= n;
        if (this.cutOff.signal.aborted) return;
        failures++;
        const e = classify(err, `receiving from queue "${this.deps.source}"`);
        if (e.code === 'unavailable') this.deps.onHealth(false);
        const waitMs = backoffDelay(failures + 1, 250, Math.random, 20_000);
        this.deps.logger[e.code === 'unavailable' ? 'warn' : 'error']({ err: e, source: this.deps.source, retryInMs: Math.round(waitMs) }, 'receive failed; retrying');
        if (!(await sleep(waitMs, this.stopping.signal))) return;
        continue;
      }
      this.reserved -= n;
      for (const m of messages) this.accept(m, startedAt);
    }
  }

  /** Resolves when a slot frees up (or stop() is called), or after timeoutMs. */
  private waitForRoom(timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.roomWaiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.roomWaiters = this.roomWaiters.filter((w) => w !== done);
          resolve();
        }, timeoutMs);
      }
    });
  }

  private wakeAll(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const f of w) f();
  }

  private accept(m: SqsMessage, receivedAt: number): void {
    const receipt = m.ReceiptHandle;
    if (!receipt) return;
    if (this.stopped) {
      // A receive that was under way when stop() was called: give its messages straight back.
      this.track(this.deps.visibility.add(this.deps.queue.url, { receiptHandle: receipt, seconds: 0 }).catch(() => {}));
      return;
    }
    const decoded = decode(m, this.deps.source);
    const r = decoded.received;
    const refused = this.deferRefused.take(r.id);
    if (refused !== undefined) r.deferRefused = refused;
    if (decoded.metaProblem) this.deps.logger.warn({ source: this.deps.source, sqsMessageId: m.MessageId, problem: decoded.metaProblem }, 'unreadable x-turnout attribute; taken as a plain SQS message');
    const group = this.deps.queue.fifo ? m.Attributes?.MessageGroupId : undefined;
    const h: Held = {
      id: r.id,
      message: r,
      receipt,
      group,
      started: false,
      finished: false,
      lease: new Lease({
        receiptHandle: receipt,
        receivedAt,
        initialSeconds: this.deps.queue.visibilityTimeout,
        settings: this.leaseSettings,
        change: (handle, seconds) => this.deps.visibility.add(this.deps.queue.url, { receiptHandle: handle, seconds }),
        logger: this.deps.logger,
        label: { source: this.deps.source, messageId: r.id },
      }),
    };
    this.held++;
    this.unsettled.add(h);

    if (this.deps.rejected.has(r.id) && this.deps.queue.redrive) {
      // The app already refused it: straight back towards the redrive DLQ.
      h.started = true;
      this.settle(h, { kind: 'reject', reason: 'rejected before' });
      return;
    }
    if (decoded.notBefore !== undefined && decoded.notBefore - Date.now() > DUE_TOLERANCE_MS) {
      h.started = true;
      this.settle(h, { kind: 'defer', delayMs: decoded.notBefore - Date.now(), headers: r.headers }, true);
      return;
    }
    if (group !== undefined && !this.groups.admit(group, h)) return; // waits behind its group's head
    this.run(h);
  }

  // ---- handling ----

  private run(h: Held): void {
    h.started = true;
    void invoke(this.deps.handler, h.message, this.report, (disposition) => this.settle(h, disposition));
  }

  /** The handler decided (or the adapter did, for early or rejected copies). */
  private settle(h: Held, disposition: Disposition, early = false): void {
    this.held--;
    this.wakeAll();
    const goesBack = disposition.kind === 'release' || (disposition.kind === 'reject' && this.deps.queue.redrive !== undefined);
    const followers = this.nextInGroup(h, goesBack);
    if (h.finished) {
      // close() already gave it back.
      this.deps.logger.debug({ source: this.deps.source, messageId: h.id, disposition: disposition.kind }, 'decision came after close; the message was already released');
      if (followers.length > 0) void this.releaseInOrder(followers);
      return;
    }
    if (goesBack && followers.length > 0) {
      // FIFO: the head goes back and what followed it must not overtake it, so all go back together, in order.
      if (disposition.kind === 'reject') this.deps.rejected.add(h.id);
      void this.releaseInOrder([h, ...followers]);
      return;
    }
    h.finished = true;
    this.track(this.apply(h, disposition, early));
    if (followers.length > 0) void this.releaseInOrder(followers);
  }

  /**
   * FIFO: the group's head is decided. Starts the next message of the group,
   * or returns the ones that must go back with it (head went back, or stopping).
   */
  private nextInGroup(h: Held, headGoesBack: boolean): Held[] {
    if (h.group === undefined) return [];
    const step = this.groups.finish(h.group, h, headGoesBack || this.stopped || h.finished);
    if (step.next) this.run(step.next);
    return step.followers;
  }

  private track(p: Promise<void>): void {
    this.applying.add(p);
    void p.finally(() => this.applying.delete(p));
  }

  private async apply(h: Held, disposition: Disposition, early: boolean): Promise<void> {
    const url = this.deps.queue.url;
    const label = { source: this.deps.source, messageId: h.id };
    try {
      switch (disposition.kind) {
        case 'ack':
          // No extension may race the delete (it would fail on a gone receipt); half a lease is left at least.
          await h.lease.stop();
          await this.deps.deletes.add(url, h.receipt);
          break;
        case 'defer':
          await this.defer(h, disposition, early);
          break;
        case 'reject':
          await h.lease.stop();
          if (this.deps.queue.redrive) {
            this.deps.rejected.add(h.id);
            await this.deps.visibility.add(url, { receiptHandle: h.receipt, seconds: 0 });
          } else {
            // No redrive policy: leave it invisible for the queue's timeout rather than spin on it.
            this.deps.logger.warn({ ...label, reason: disposition.reason }, 'rejected, but the queue has no RedrivePolicy and no TURNOUT_DLQ is set: it comes back after the visibility timeout');
          }
          break;
        case 'release':
          await h.lease.stop();
          await this.deps.visibility.add(url, { receiptHandle: h.receipt, seconds: 0 });
          break;
      }
    } catch (err) {
      if (isStaleReceipt(err)) {
        this.deps.logger.warn({ ...label, err, disposition: disposition.kind }, 'the message was handed out again before its outcome reached SQS; it may be handled twice');
      } else {
        this.deps.logger.error({ ...label, err: classify(err, `applying ${disposition.kind}`), disposition: disposition.kind }, 'could not apply the outcome; SQS hands the message out again after its visibility timeout');
      }
    } finally {
      await h.lease.stop();
      this.unsettled.delete(h);
    }
  }

  private async defer(h: Held, disposition: Extract<Disposition, { kind: 'defer' }>, early: boolean): Promise<void> {
    const delayMs = Math.max(0, disposition.delayMs);
    const dueAt = Date.now() + delayMs;
    const { source: _source, redelivered: _redelivered, ...message } = h.message;
    const copy: Message = { ...message, headers: disposition.headers };
    let delaySeconds = 0;
    let notBefore: number | undefined;
    if (this.deps.queue.fifo) {
      if (early) {
        // Re-sending would only spin: hold this copy invisible until it is due (this pauses its group).
        await h.lease.stop();
        const seconds = Math.min(Math.ceil(delayMs / 1000), this.deps.options.maxVisibilitySeconds - 1);
        await this.deps.visibility.add(this.deps.queue.url, { receiptHandle: h.receipt, seconds });
        return;
      }
      notBefore = delayMs > 0 ? dueAt : undefined;
    } else {
      delaySeconds = Math.min(MAX_DELAY_SECONDS, Math.ceil(delayMs / 1000));
      notBefore = delayMs > MAX_DELAY_SECONDS * 1000 ? dueAt : undefined;
    }
    try {
      await this.deps.resend(this.deps.queue, copy, { delaySeconds, notBefore, groupId: h.group });
    } catch (err) {
      // Without a new copy, keep the old one out of sight for the delay (its headers stay as they were).
      // Refused for what it is (not for SQS being away): its next delivery is dead-lettered instead.
      if (refusedForShape(err)) this.deferRefused.set(h.message.id, err.message);
      this.deps.logger.warn({ source: this.deps.source, messageId: h.id, err }, 'deferral copy could not be sent; holding the message invisible instead');
      await h.lease.stop();
      const seconds = Math.min(Math.ceil(delayMs / 1000), this.deps.options.maxVisibilitySeconds - 1);
      await this.deps.visibility.add(this.deps.queue.url, { receiptHandle: h.receipt, seconds });
      return;
    }
    await h.lease.stop();
    await this.deps.deletes.add(this.deps.queue.url, h.receipt);
  }

  private async releaseInOrder(list: Held[]): Promise<void> {
    const releases: Promise<void>[] = [];
    for (const h of releaseOrder(list)) {
      if (h.finished) continue;
      h.finished = true;
      if (!h.started) {
        // Never reached the handler: its slot is free now.
        this.held--;
        this.wakeAll();
      }
      await h.lease.stop();
      releases.push(
        this.deps.visibility
          .add(this.deps.queue.url, { receiptHandle: h.receipt, seconds: 0 })
          .catch((err: unknown) => this.deps.logger.warn({ source: this.deps.source, messageId: h.id, err }, 'could not release a message; it comes back after its visibility timeout'))
          .finally(() => this.unsettled.delete(h)),
      );
    }
    const all = Promise.all(releases).then(() => {});
    this.track(all);
    await all;
  }
}
