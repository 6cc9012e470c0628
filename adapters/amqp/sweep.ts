// A bounded pass over one RabbitMQ queue for `turnout move`, with basic.get
// on a channel of its own. Messages it skips or keeps stay unacknowledged on
// that channel until the sweep ends, so it never sees them twice and no other
// consumer takes them meanwhile; closing the channel hands them back to the
// queue (RabbitMQ puts them back where they were, marked redelivered). The
// pass ends after the count the queue had at the start, or when it is empty.

import type { Channel, GetMessage } from 'amqplib';
import { BrokerError, type Message, type Received, type Sweep, type SweepDisposition, type Taken } from '../broker.ts';
import { fromDelivery } from './codec.ts';
import { classify } from './errors.ts';

class AmqpTaken implements Taken {
  readonly message: Received;
  readonly delivery: GetMessage;
  constructor(delivery: GetMessage, queue: string) {
    this.delivery = delivery;
    this.message = fromDelivery(delivery, queue);
  }
}

export class AmqpSweep implements Sweep {
  private readonly ch: Channel;
  private readonly queue: string;
  private readonly publish: (queue: string, message: Message) => Promise<void>;
  private left: number;
  private closed = false;

  private constructor(ch: Channel, queue: string, count: number, publish: (queue: string, message: Message) => Promise<void>) {
    this.ch = ch;
    this.queue = queue;
    this.left = count;
    this.publish = publish;
  }

  static async open(ch: Channel, queue: string, publish: (queue: string, message: Message) => Promise<void>): Promise<AmqpSweep> {
    let count: number;
    try {
      count = (await ch.checkQueue(queue)).messageCount;
    } catch (err) {
      await ch.close().catch(() => {});
      throw classify(err, `checking queue ${queue}`);
    }
    return new AmqpSweep(ch, queue, count, publish);
  }

  async next(): Promise<Taken | undefined> {
    if (this.closed || this.left === 0) return undefined;
    let got: GetMessage | false;
    try {
      got = await this.ch.get(this.queue, { noAck: false });
    } catch (err) {
      throw classify(err, `reading queue ${this.queue}`);
    }
    if (got === false) {
      this.left = 0;
      return undefined;
    }
    this.left--;
    return new AmqpTaken(got, this.queue);
  }

  forward(_taken: Taken, queue: string, message: Message): Promise<void> {
    return this.publish(queue, message);
  }

  async settle(taken: Taken, disposition: SweepDisposition): Promise<void> {
    if (!(taken instanceof AmqpTaken)) throw new BrokerError('invalid', 'settle() got a message of another sweep');
    // skip and keep: left unacknowledged until close() hands it back.
    if (disposition === 'ack') this.ch.ack(taken.delivery);
  }

  unseen(): number {
    return this.left;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the channel requeues every delivery on it that was not acked.
    await this.ch.close().catch(() => {});
  }
}
