// Publishing with publisher confirms on one confirm channel per connection.
// A publish resolves only after the broker's basic.ack; a basic.return
// (mandatory, the queue does not exist) turns into unknown-queue, a nack or a
// lost channel into unavailable.

import type { ChannelModel, ConfirmChannel, Message as AmqpMessage } from 'amqplib';
import type { Logger } from '../../lib/log.ts';
import { BrokerError, unconfirmed, type Message } from '../broker.ts';
import { toPublishOptions, unencodable } from './codec.ts';
import { classify, maxSizeFrom } from './errors.ts';

/** What the broker told us about its limits; outlives one connection. */
export interface BrokerLimits {
  /** RabbitMQ's max_message_size, once a refusal revealed it. */
  maxMessageBytes?: number;
}

export interface PublisherOptions {
  logger: Logger;
  limits: BrokerLimits;
  /** A confirm that takes longer (e.g. the connection is blocked by a memory alarm) fails as unavailable. */
  confirmTimeoutMs: number;
}

const returnKey = (queue: string, id: string): string => `${queue}\n${id}`;

export class Publisher {
  private readonly conn: ChannelModel;
  private readonly options: PublisherOptions;
  private channel: Promise<ConfirmChannel> | undefined;
  /** Publishes awaiting their confirm, by queue+id: a basic.return is matched to them. */
  private readonly pending = new Map<string, number>();
  /** Returns received and not yet matched to their confirm (the return precedes the ack). */
  private readonly returned = new Map<string, number>();

  constructor(conn: ChannelModel, options: PublisherOptions) {
    this.conn = conn;
    this.options = options;
  }

  /** Publishes to a queue through the default exchange; resolves on the broker's confirm. */
  async publish(queue: string, message: Message, extra?: { expiration?: number }): Promise<void> {
    const limit = this.options.limits.maxMessageBytes;
    if (limit !== undefined && message.payload.length > limit) {
      throw new BrokerError('too-large', `message ${message.id} has ${message.payload.length} bytes; RabbitMQ's max_message_size is ${limit}`);
    }
    const cannot = unencodable(queue, message);
    if (cannot !== undefined) throw new BrokerError('invalid', `message ${message.id.slice(0, 80)} cannot be published to RabbitMQ: ${cannot}`);
    const ch = await this.confirmChannel();
    const key = returnKey(queue, message.id);
    const options = toPublishOptions(message, extra);
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: BrokerError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.count(this.pending, key, -1);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        finish(new BrokerError('unavailable', `no publisher confirm for message ${message.id} to ${queue} within ${this.options.confirmTimeoutMs} ms`, { unconfirmed: true }));
      }, this.options.confirmTimeoutMs);
      this.count(this.pending, key, +1);
      try {
        ch.sendToQueue(queue, message.payload, options, (err: unknown) => {
          if (this.count(this.returned, key, -1)) {
            finish(new BrokerError('unknown-queue', `queue "${queue}" does not exist (message ${message.id} was returned unroutable)`));
          } else if (err) {
            const max = this.options.limits.maxMessageBytes;
            if (max !== undefined && message.payload.length > max) {
              finish(new BrokerError('too-large', `message ${message.id} has ${message.payload.length} bytes; RabbitMQ's max_message_size is ${max}`, { cause: err }));
            } else {
              const e = classify(err, `publishing message ${message.id} to ${queue}`);
              // A nack is RabbitMQ saying it did not take the message; a channel closed while
              // the confirm was due (amqplib: "channel closed") leaves it unknown.
              finish((err as Error).message === 'message nacked' ? e : unconfirmed(e));
            }
          } else {
            finish();
          }
        });
      } catch (err) {
        // amqplib throws synchronously when the channel is closed or a header table cannot be encoded.
        finish(classify(err, `publishing message ${message.id} to ${queue}`));
      }
    });
  }

  private confirmChannel(): Promise<ConfirmChannel> {
    if (!this.channel) {
      const opening = this.conn.createConfirmChannel().then((ch) => {
        ch.on('return', (m: AmqpMessage) => this.onReturn(m));
        ch.on('error', (err: Error) => {
          const max = maxSizeFrom(err);
          if (max !== undefined) this.options.limits.maxMessageBytes = max;
          this.options.logger.warn({ err }, 'publish channel closed by RabbitMQ; a new one is opened for the next publish');
        });
        ch.on('close', () => {
          if (this.channel === opening) this.channel = undefined;
        });
        return ch;
      }, (err: unknown) => {
        this.channel = undefined;
        throw classify(err, 'opening a publish channel');
      });
      this.channel = opening;
    }
    return this.channel;
  }

  private onReturn(m: AmqpMessage): void {
    const id = m.properties.messageId;
    if (typeof id !== 'string') return;
    const key = returnKey(m.fields.routingKey, id);
    if (this.pending.has(key)) this.count(this.returned, key, +1);
  }

  /** Adds delta to a counter map; returns whether the counter was positive before a decrement. */
  private count(map: Map<string, number>, key: string, delta: number): boolean {
    const n = map.get(key) ?? 0;
    if (delta < 0 && n === 0) return false;
    const next = n + delta;
    if (next === 0) map.delete(key);
    else map.set(key, next);
    return true;
  }
}
