// Test-side access to the real RabbitMQ: queues are created and deleted with
// amqplib directly (not through the adapter under test), with unique names.

import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { AmqpBroker, type AmqpOptions } from '../../../adapters/amqp/index.ts';
import { delayQueueName } from '../../../adapters/amqp/delay.ts';
import { createLogger } from '../../../lib/log.ts';

export const AMQP_URL = process.env.TURNOUT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export type QueueType = 'classic' | 'quorum';

/** Owns the queues a test file created and deletes them (and their delay queues) at the end. */
export class TestRabbit {
  private conn: amqp.ChannelModel | undefined;
  private readonly created = new Set<string>();
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = `turnout-test.${prefix}.${randomUUID().slice(0, 8)}`;
  }

  private async connection(): Promise<amqp.ChannelModel> {
    if (this.conn) return this.conn;
    const conn = await amqp.connect(AMQP_URL);
    // A fault test may restart RabbitMQ: the next call opens a new connection.
    conn.on('error', () => {});
    conn.on('close', () => {
      if (this.conn === conn) this.conn = undefined;
    });
    this.conn = conn;
    return conn;
  }

  /** Runs `fn` on a throwaway channel (a failed declare closes its channel). */
  async withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
    const conn = await this.connection();
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  name(label = 'q'): string {
    return `${this.prefix}.${label}.${randomUUID().slice(0, 8)}`;
  }

  /** Declares a durable queue of the given type, as a user would before running turnout. */
  async queue(type: QueueType = 'classic', label = 'q', args: Record<string, unknown> = {}): Promise<string> {
    const name = this.name(label);
    await this.withChannel((ch) => ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': type, ...args } }));
    this.created.add(name);
    return name;
  }

  async ready(queue: string): Promise<number> {
    return this.withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
  }

  /** Takes every ready message off a queue (acked), in order. */
  async drain(queue: string): Promise<amqp.GetMessage[]> {
    return this.withChannel(async (ch) => {
      const out: amqp.GetMessage[] = [];
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) return out;
        out.push(m);
      }
    });
  }

  async teardown(): Promise<void> {
    // One channel per delete: a failed delete closes its channel. A queue
    // that is still recovering after a broker restart gets a few more tries.
    for (const q of this.created) {
      for (const name of [q, delayQueueName(q)]) {
        for (let attempt = 1; attempt <= 5; attempt++) {
          const done = await this.withChannel(async (ch) => {
            await ch.deleteQueue(name);
            return true;
          }).catch(() => false);
          if (done) break;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }
    await this.conn?.close().catch(() => {});
    this.conn = undefined;
  }
}

export const testLogger = () => createLogger(process.env.TURNOUT_TEST_LOG ?? 'silent');

export async function connectedBroker(over: Partial<AmqpOptions> = {}): Promise<AmqpBroker> {
  const b = new AmqpBroker({ url: AMQP_URL, logger: testLogger(), ...over });
  await b.connect();
  return b;
}

/**
 * A confirm channel that is opened again once RabbitMQ closed it or its
 * connection (a restart, a frame it would not take): the reconnect logic of
 * every test-side producer. A connection whose channel died is kept; one on
 * which no channel opens is dropped, so the next call connects afresh.
 */
export class ReopeningConfirmChannel {
  private conn: amqp.ChannelModel | undefined;
  private ch: amqp.ConfirmChannel | undefined;
  private readonly url: string;

  constructor(url = AMQP_URL) {
    this.url = url;
  }

  async get(): Promise<amqp.ConfirmChannel> {
    if (this.ch) return this.ch;
    if (!this.conn) {
      const conn = await amqp.connect(this.url);
      conn.on('error', () => {});
      conn.on('close', () => {
        if (this.conn === conn) {
          this.conn = undefined;
          this.ch = undefined;
        }
      });
      this.conn = conn;
    }
    const conn = this.conn;
    let ch: amqp.ConfirmChannel;
    try {
      ch = await conn.createConfirmChannel();
    } catch (err) {
      if (this.conn === conn) this.conn = undefined;
      await conn.close().catch(() => {});
      throw err;
    }
    ch.on('error', () => {});
    ch.on('close', () => {
      if (this.ch === ch) this.ch = undefined;
    });
    this.ch = ch;
    return ch;
  }

  /** Closes and forgets the channel after a failed publish (it is usually closing already): the next get() opens another. */
  drop(): void {
    const ch = this.ch;
    this.ch = undefined;
    ch?.close().catch(() => {});
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    this.ch = undefined;
    await conn?.close().catch(() => {});
  }
}

/**
 * A plain amqplib producer for fault tests: publishes persistent messages
 * with confirms and, while RabbitMQ is away, retries the same message id
 * until it is confirmed (so a lost confirm may leave a duplicate, as with
 * any at-least-once producer).
 */
export class RetryingProducer {
  private readonly channel = new ReopeningConfirmChannel();
  /** Publishes that had to be retried (the broker was away or the confirm was lost). */
  retries = 0;

  async publish(queue: string, id: string, body: Buffer, headers: Record<string, string> = {}): Promise<void> {
    for (;;) {
      try {
        const ch = await this.channel.get();
        await new Promise<void>((resolve, reject) => {
          ch.sendToQueue(queue, body, { persistent: true, messageId: id, headers, contentType: 'application/json' }, (err: unknown) => (err ? reject(err) : resolve()));
        });
        return;
      } catch {
        this.retries++;
        this.channel.drop();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
