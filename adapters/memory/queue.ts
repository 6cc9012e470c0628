// One queue of the embedded broker: ready messages, delayed ones (deferrals),
// and the subscriptions it hands them to, round-robin within their prefetch.

import type { Disposition, Handler, Message, Received, Subscription } from '../broker.ts';
import { invoke } from '../handler.ts';
import { Fifo } from './fifo.ts';

export interface Item {
  /** Its headers are frozen (stored()): nobody can change what a redelivery hands out. */
  message: Message;
  redelivered: boolean;
}

/**
 * The copy a queue keeps of a published message: made once, its headers
 * frozen, so neither the publisher (after publish) nor a handler (given the
 * same headers object, see consumed()) can change the stored message. It
 * replaced two copies per message (one at publish, one per hand-out); the
 * payload Buffer is shared, as it always was.
 */
export function stored(message: Message, headers: Record<string, string> = message.headers): Message {
  return { ...message, headers: Object.freeze({ ...headers }) };
}

/** A stored message as a handler gets it: a new object, sharing the stored (frozen) headers. */
export function consumed(message: Message, source: string, redelivered: boolean): Received {
  return { ...message, source, redelivered };
}

export class MemorySubscription implements Subscription {
  readonly source: string;
  readonly handler: Handler;
  readonly prefetch: number;
  private active = 0;
  private stopped = false;
  private readonly queue: MemoryQueue;

  constructor(queue: MemoryQueue, handler: Handler, prefetch: number) {
    this.queue = queue;
    this.source = queue.name;
    this.handler = handler;
    this.prefetch = Math.max(1, prefetch);
  }

  get inflight(): number {
    return this.active;
  }

  /** Takes another message now. */
  get hasRoom(): boolean {
    return !this.stopped && this.active < this.prefetch;
  }

  taken(): void {
    this.active++;
  }

  settled(): void {
    this.active--;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.unsubscribe(this);
  }
}

export class MemoryQueue {
  readonly ready = new Fifo<Item>();
  inflight = 0;
  readonly delayed = new Map<NodeJS.Timeout, Item>();
  private subscriptions: MemorySubscription[] = [];
  private next = 0;

  readonly name: string;
  private readonly onError: (err: unknown) => void;
  constructor(name: string, onError: (err: unknown) => void) {
    this.name = name;
    this.onError = onError;
  }

  subscribe(handler: Handler, prefetch: number): MemorySubscription {
    const subscription = new MemorySubscription(this, handler, prefetch);
    this.subscriptions.push(subscription);
    queueMicrotask(() => this.pump());
    return subscription;
  }

  unsubscribe(subscription: MemorySubscription): void {
    this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
  }

  /** Hands ready messages to subscriptions with room, round-robin. */
  pump(): void {
    while (this.ready.length > 0) {
      const subscription = this.pickSubscription();
      if (!subscription) return;
      const item = this.ready.shift() as Item;
      this.dispatch(subscription, item);
    }
  }

  private pickSubscription(): MemorySubscription | undefined {
    const n = this.subscriptions.length;
    for (let i = 0; i < n; i++) {
      const candidate = this.subscriptions[(this.next + i) % n];
      if (candidate?.hasRoom) {
        this.next = (this.next + i + 1) % n;
        return candidate;
      }
    }
    return undefined;
  }

  private dispatch(subscription: MemorySubscription, item: Item): void {
    subscription.taken();
    this.inflight++;
    void invoke(subscription.handler, consumed(item.message, this.name, item.redelivered), (err) => this.onError(err), (disposition) =>
      this.settle(subscription, item, disposition),
    );
  }

  private settle(subscription: MemorySubscription, item: Item, disposition: Disposition): void {
    subscription.settled();
    this.inflight--;
    switch (disposition.kind) {
      case 'ack':
        break;
      case 'defer':
        this.delay({ message: stored(item.message, disposition.headers), redelivered: false }, disposition.delayMs);
        break;
      case 'reject':
        // nativeDeadLetter is false: the pipeline never asks. Keep the message rather than drop it.
        this.onError(new Error(`embedded broker has no dead-letter mechanism; message ${item.message.id} kept in ${this.name}`));
        this.ready.unshift({ message: item.message, redelivered: true });
        break;
      case 'release':
        this.ready.unshift({ message: item.message, redelivered: true });
        break;
    }
    this.pump();
  }

  delay(item: Item, ms: number): void {
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.ready.push(item);
      this.pump();
    }, ms);
    this.delayed.set(timer, item);
  }

  /** The broker closes: no subscription takes anything more; delayed messages wait as ready ones. */
  close(): void {
    for (const s of this.subscriptions) void s.stop();
    this.subscriptions = [];
    for (const [timer, item] of this.delayed) {
      clearTimeout(timer);
      this.ready.push(item);
    }
    this.delayed.clear();
  }
}
