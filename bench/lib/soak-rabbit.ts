// The soak benchmark's own RabbitMQ session: a confirm channel for the
// producer, a consumer on the DLQ, queue depths. RabbitMQ is shared with
// tests that restart it (test/integration/amqp/faults.test.ts), and an hour
// is long enough to meet one: the session reconnects and says how often, and
// a publish whose confirm was lost is sent again (so it may arrive twice).

import * as amqp from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SoakRabbitOptions {
  url: string;
  queues: string[];
  dlq: string;
  onDead: (m: amqp.ConsumeMessage) => void;
}

export class SoakRabbit {
  private conn: amqp.ChannelModel | undefined;
  private admin: amqp.Channel | undefined;
  private pub: amqp.ConfirmChannel | undefined;
  private closing = false;
  private reconnecting: Promise<void> | undefined;
  /** Connections lost (a broker restart, most likely). */
  losses = 0;
  /** Publishes sent again because their confirm never came. */
  resent = 0;
  private unconfirmed = 0;
  private readonly o: SoakRabbitOptions;

  constructor(o: SoakRabbitOptions) {
    this.o = o;
  }

  async open(): Promise<void> {
    const conn = await amqp.connect(this.o.url);
    conn.on('error', () => {});
    const admin = await conn.createChannel();
    admin.on('error', () => {});
    for (const q of [...this.o.queues, this.o.dlq]) await admin.assertQueue(q, { durable: true });
    const dead = await conn.createChannel();
    dead.on('error', () => {});
    await dead.prefetch(200);
    await dead.consume(this.o.dlq, (m) => {
      if (!m) return;
      this.o.onDead(m);
      dead.ack(m);
    });
    const pub = await conn.createConfirmChannel();
    pub.on('error', () => {});
    conn.on('close', () => {
      if (this.conn !== conn) return;
      this.conn = this.admin = this.pub = undefined;
      if (this.closing) return;
      this.losses++;
      this.reconnecting = this.reconnect();
    });
    this.conn = conn;
    this.admin = admin;
    this.pub = pub;
  }

  private async reconnect(): Promise<void> {
    while (!this.closing) {
      await sleep(1000);
      try {
        await this.open();
        this.reconnecting = undefined;
        return;
      } catch {
        // still down
      }
    }
  }

  get up(): boolean {
    return this.pub !== undefined;
  }

  get pending(): number {
    return this.unconfirmed;
  }

  /** Ready messages in a queue; undefined while disconnected. */
  async depth(queue: string): Promise<number | undefined> {
    try {
      return (await this.admin?.checkQueue(queue))?.messageCount;
    } catch {
      return undefined;
    }
  }

  /** Sends; `confirmed` runs once the broker confirmed (after as many resends as a lost connection takes). */
  publish(queue: string, body: Buffer, options: amqp.Options.Publish, confirmed: () => void): void {
    this.unconfirmed++;
    const attempt = (): void => {
      const pub = this.pub;
      if (!pub) return void this.later(attempt);
      try {
        pub.sendToQueue(queue, body, options, (err: unknown) => {
          if (!err) {
            this.unconfirmed--;
            confirmed();
            return;
          }
          this.resent++;
          this.later(attempt);
        });
      } catch {
        this.resent++;
        this.later(attempt);
      }
    };
    attempt();
  }

  private later(fn: () => void): void {
    void (async () => {
      await sleep(500);
      await this.reconnecting;
      fn();
    })();
  }

  async deleteQueues(queues: string[]): Promise<void> {
    await this.reconnecting;
    for (const q of queues) await this.admin?.deleteQueue(q).catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.conn?.close().catch(() => {});
  }
}
