// The embedded broker: queues in this process's memory, with in-flight
// tracking, prefetch, delayed redelivery for deferrals and depth. It is for
// the demo, tests and benchmarks: what it holds is gone when the process
// exits (close() reports how much that was).

import {
  BrokerError,
  type AdapterContext,
  type BrokerAdapter,
  type ConsumeOptions,
  type Handler,
  type Message,
  type Backlog,
  type QueueDepth,
  type Subscription,
  type Sweep,
  type SweepOptions,
} from '../broker.ts';
import { capabilities } from './capabilities.ts';
import { MemoryQueue, stored } from './queue.ts';
import { MemorySweep } from './sweep.ts';

export function create(ctx: AdapterContext): MemoryBroker {
  return new MemoryBroker({ onError: (err) => ctx.logger.error({ err }, 'embedded broker error') });
}

export interface MemoryBrokerOptions {
  /** Queues that exist from the start. Others are created by declare() (or on first use when autoCreate). */
  queues?: string[];
  autoCreate?: boolean;
  onError?: (err: unknown) => void;
}

export class MemoryBroker implements BrokerAdapter {
  readonly kind = 'memory';
  readonly capabilities = capabilities;
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
    return this.queue(source).subscribe(handler, options.prefetch);
  }

  async publish(queue: string, message: Message): Promise<void> {
    if (!this.up) throw new BrokerError('unavailable', 'embedded broker is not connected');
    const fault = this.publishFault?.(queue, message);
    if (fault) throw fault;
    const q = this.queue(queue);
    q.ready.push({ message: stored(message), redelivered: false });
    q.pump();
  }

  async depth(queue: string): Promise<QueueDepth> {
    const q = this.queue(queue);
    return { queue, depth: q.ready.length + q.delayed.size, inflight: q.inflight };
  }

  async backlog(queue: string): Promise<Backlog> {
    const q = this.queue(queue);
    return { queue, depth: q.ready.length, inflight: q.inflight, deferred: q.delayed.size };
  }

  /** Ready messages only: a deferred one is not due and stays on its timer. */
  async sweep(queue: string, _options: SweepOptions): Promise<Sweep> {
    if (!this.up) throw new BrokerError('unavailable', 'embedded broker is not connected');
    return new MemorySweep(this.queue(queue), (to, message) => this.publish(to, message));
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
    for (const q of this.queues.values()) q.close();
  }
}
