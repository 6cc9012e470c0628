// A bounded pass over one embedded queue for `turnout move`: it takes the
// ready messages present at the start, one at a time; what it skips or keeps
// is held aside and put back at the head, in its original order, on close.

import { BrokerError, type Message, type Sweep, type SweepDisposition, type Taken } from '../broker.ts';
import { consumed, type Item, type MemoryQueue } from './queue.ts';

class MemoryTaken implements Taken {
  readonly message;
  readonly item: Item;
  constructor(item: Item, source: string) {
    this.item = item;
    this.message = consumed(item.message, source, item.redelivered);
  }
}

export class MemorySweep implements Sweep {
  private readonly queue: MemoryQueue;
  private readonly publish: (queue: string, message: Message) => Promise<void>;
  private left: number;
  private readonly heldAside: Item[] = [];
  private closed = false;

  constructor(queue: MemoryQueue, publish: (queue: string, message: Message) => Promise<void>) {
    this.queue = queue;
    this.publish = publish;
    this.left = queue.ready.length;
  }

  async next(): Promise<Taken | undefined> {
    if (this.closed || this.left === 0) return undefined;
    const item = this.queue.ready.shift();
    if (!item) {
      this.left = 0;
      return undefined;
    }
    this.left--;
    this.queue.inflight++;
    return new MemoryTaken(item, this.queue.name);
  }

  forward(_taken: Taken, queue: string, message: Message): Promise<void> {
    return this.publish(queue, message);
  }

  async settle(taken: Taken, disposition: SweepDisposition): Promise<void> {
    if (!(taken instanceof MemoryTaken)) throw new BrokerError('invalid', 'settle() got a message of another sweep');
    this.queue.inflight--;
    if (disposition !== 'ack') this.heldAside.push(taken.item);
  }

  unseen(): number {
    return this.left;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Back at the head in their order, as they were before the sweep.
    for (let i = this.heldAside.length - 1; i >= 0; i--) this.queue.ready.unshift(this.heldAside[i] as Item);
    this.heldAside.length = 0;
    this.queue.pump();
  }
}
