// Test-side access to the real RabbitMQ: queues are created and deleted with
// amqplib directly (not through the adapter under test), with unique names.

import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { AmqpBroker, type AmqpOptions } from '../../../adapters/amqp.ts';
import { delayQueueName } from '../../../adapters/amqp/delay.ts';
import { createLogger } from '../../../src/log.ts';

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
    this.conn ??= await amqp.connect(AMQP_URL);
    return this.conn;
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
    if (this.created.size > 0) {
      await this.withChannel(async (ch) => {
        for (const q of this.created) {
          await ch.deleteQueue(q).catch(() => {});
          await ch.deleteQueue(delayQueueName(q)).catch(() => {});
        }
      }).catch(() => {});
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
