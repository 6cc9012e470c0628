// The embedded broker: queues in this process's memory, with in-flight
// tracking, prefetch, delayed redelivery for deferrals and depth. It is for
// the demo, tests and benchmarks: what it holds is gone when the process
// exits (close() reports how much that was).

import {
  BrokerError,
  type BrokerAdapter,
  type ConsumeOptions,
  type Disposition,
  type Handler,
  type Message,
  type QueueDepth,
  type Received,
  type Subscription,
} from '../broker.ts';

interface Item {
  message: Message;
  redelivered: boolean;
}

interface Consumer {
  handler: Handler;
  prefetch: number;
  active: number;
  stopped: boolean;
}

/** FIFO with O(1) shift; compacts when the dead head grows. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

class MemoryQueue {
  readonly ready = new Fifo<Item>();
  inflight = 0;
  readonly delayed = new Map<NodeJS.Timeout, Item>();
  readonly consumers: Consumer[] = [];
  private next = 0;

  readonly name: string;
  private readonly onError: (err: unknown) => void;
  constructor(name: string, onError: (err: unknown) => void) {
    this.name = name;
    this.onError = onError;
  }

  /** Hands ready messages to consumers with room, round-robin. */
  pump(): void {
    while (this.ready.length > 0) {
      const consumer = this.pickConsumer();
      if (!consumer) return;
      const item = this.ready.shift() as Item;
      this.dispatch(consumer, item);
    }
  }

  private pickConsumer(): Consumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const c = this.consumers[(this.next + i) % n];
      if (c && !c.stopped && c.active < c.prefetch) {
        this.next = (this.next + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private dispatch(consumer: Consumer, item: Item): void {
    consumer.active++;
    this.inflight++;
    const received: Received = {
      ...item.message,
      headers: { ...item.message.headers },
      source: this.name,
      redelivered: item.redelivered,
    };
    let settled: Promise<Disposition>;
    try {
      settled = consumer.handler(received);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      (d) => this.settle(consumer, item, d),
      (err: unknown) => {
        // A handler must always decide; if it threw, keep the message.
        this.onError(err);
        this.settle(consumer, item, { kind: 'release' });
      },
    );
  }

  private settle(consumer: Consumer, item: Item, d: Disposition): void {
    consumer.active--;
    this.inflight--;
    switch (d.kind) {
      case 'ack':
        break;
      case 'defer':
        this.delay({ message: { ...item.message, headers: d.headers }, redelivered: false }, d.delayMs);
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
}

export interface MemoryBrokerOptions {
  /** Queues that exist from the start. Others are created by declare() (or on first use when autoCreate). */
  queues?: string[];
  autoCreate?: boolean;
  onError?: (err: unknown) => void;
}

export class MemoryBroker implements BrokerAdapter {
  readonly kind = 'memory';
  readonly nativeDeadLetter = false;
  private readonly queues = new Map<string, MemoryQueue>();
  private up = false;
  private readonly autoCreate: boolean;
  private readonly onError: (err: unknown) => void;
  /** Test hook: when set, publish() fails with the returned error. */
  publishFault: ((queue: string, message: Message) => BrokerError | undefined) | undefined;

  constructor(options: MemoryBrokerOptions = {}) {
    this.autoCreate = options.autoCreate ?? false;
    this.onError = options.onError ?? (() => {});
    for (const q of options.queues ?? []) this.declare(q);
  }

  declare(name: string): void {
    if (!this.queues.has(name)) this.queues.set(name, new MemoryQueue(name, this.onError));
  }

  private queue(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q && this.autoCreate) {
      this.declare(name);
      q = this.queues.get(name);
    }
    if (!q) throw new BrokerError('unknown-queue', `queue "${name}" does not exist on the embedded broker`);
    return q;
  }

  async connect(): Promise<void> {
    this.up = true;
  }

  isUp(): boolean {
    return this.up;
  }

  /** Test hook: simulate the broker going away and coming back. */
  setUp(up: boolean): void {
    this.up = up;
  }

  async consume(source: string, handler: Handler, options: ConsumeOptions): Promise<Subscription> {
    const q = this.queue(source);
    const consumer: Consumer = { handler, prefetch: Math.max(1, options.prefetch), active: 0, stopped: false };
    q.consumers.push(consumer);
    queueMicrotask(() => q.pump());
    return {
      stop: async () => {
        consumer.stopped = true;
        const i = q.consumers.indexOf(consumer);
        if (i >= 0) q.consumers.splice(i, 1);
      },
    };
  }

  async publish(queue: string, message: Message): Promise<void> {
    if (!this.up) throw new BrokerError('unavailable', 'embedded broker is not connected');
    const fault = this.publishFault?.(queue, message);
    if (fault) throw fault;
    const q = this.queue(queue);
    q.ready.push({ message: { ...message, headers: { ...message.headers } }, redelivered: false });
    q.pump();
  }

  async depth(queue: string): Promise<QueueDepth> {
    const q = this.queue(queue);
    return { queue, depth: q.ready.length + q.delayed.size, inflight: q.inflight };
  }

  /** Removes and returns every ready message of a queue (tests and the demo use it to account for messages). */
  drainQueue(queue: string): Message[] {
    const q = this.queue(queue);
    const out: Message[] = [];
    for (let item = q.ready.shift(); item; item = q.ready.shift()) out.push(item.message);
    return out;
  }

  /** Messages held in any state, i.e. what would be lost if the process ended now. */
  held(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.ready.length + q.delayed.size + q.inflight;
    return n;
  }

  async close(): Promise<void> {
    this.up = false;
    for (const q of this.queues.values()) {
      for (const c of q.consumers) c.stopped = true;
      q.consumers.length = 0;
      for (const [timer, item] of q.delayed) {
        clearTimeout(timer);
        q.ready.push(item);
      }
      q.delayed.clear();
    }
  }
}
