// Maps turnout's message model onto AMQP 0-9-1 properties and back.
// id -> messageId, contentType -> contentType, headers -> properties.headers,
// key -> the x-turnout-key header (AMQP has no message key).

import { randomUUID } from 'node:crypto';
import type { ConsumeMessage, GetMessage, Options } from 'amqplib';
import type { Message, Received } from '../broker.ts';

export const KEY_HEADER = 'x-turnout-key';

/**
 * Headers turnout never republishes: x-death is owned by RabbitMQ (4.x ignores
 * a client-set one, 3.x would append to it), and CC/BCC are sender-selected
 * distribution, which would copy a republished message to other queues again.
 */
const NOT_REPUBLISHED = new Set(['x-death', 'CC', 'BCC']);

/** Publish options for a message: persistent, confirmed, with everything the model carries. */
export function toPublishOptions(message: Message, extra?: { expiration?: number }): Options.Publish {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (!NOT_REPUBLISHED.has(name)) headers[name] = value;
  }
  if (message.key !== undefined) headers[KEY_HEADER] = message.key;
  const options: Options.Publish = {
    persistent: true,
    // An unroutable message (its queue does not exist) comes back as basic.return
    // instead of being dropped silently; the publisher turns that into unknown-queue.
    mandatory: true,
    messageId: message.id,
    headers,
  };
  if (message.contentType !== undefined) options.contentType = message.contentType;
  if (extra?.expiration !== undefined) options.expiration = String(Math.max(0, Math.round(extra.expiration)));
  return options;
}

/** AMQP 0-9-1 short strings (queue names, header names, message id, content type) hold at most 255 bytes. */
const SHORTSTR_MAX = 255;

/**
 * Why AMQP cannot carry this message to this queue, in words a publisher can
 * act on; undefined when it can. amqplib would throw a bare RangeError.
 */
export function unencodable(queue: string, message: Message): string | undefined {
  const long = (s: string): boolean => Buffer.byteLength(s) > SHORTSTR_MAX;
  const cut = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
  if (long(queue)) return `queue name ${cut(queue)} is ${Buffer.byteLength(queue)} bytes; AMQP allows ${SHORTSTR_MAX}`;
  if (long(message.id)) return `message id ${cut(message.id)} is ${Buffer.byteLength(message.id)} bytes; AMQP allows ${SHORTSTR_MAX}`;
  if (message.contentType !== undefined && long(message.contentType)) return `content type ${cut(message.contentType)} is ${Buffer.byteLength(message.contentType)} bytes; AMQP allows ${SHORTSTR_MAX}`;
  for (const name in message.headers) if (long(name)) return `header name ${cut(name)} is ${Buffer.byteLength(name)} bytes; AMQP allows ${SHORTSTR_MAX}`;
  return undefined;
}

/** A delivery as turnout's Received. Header values that are not strings are rendered as strings. */
export function fromDelivery(msg: ConsumeMessage | GetMessage, source: string): Received {
  const headers: Record<string, string> = {};
  let key: string | undefined;
  const raw = (msg.properties.headers ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(raw)) {
    const s = headerString(value);
    if (s === undefined) continue;
    if (name === KEY_HEADER) key = s;
    else headers[name] = s;
  }
  const id = typeof msg.properties.messageId === 'string' && msg.properties.messageId !== ''
    ? msg.properties.messageId
    // A producer that sets no message_id gets a fresh id per delivery: a
    // redelivered copy of such a message cannot be recognised as the same one.
    : randomUUID();
  const received: Received = {
    id,
    payload: msg.content,
    headers,
    source,
    redelivered: msg.fields.redelivered,
  };
  if (key !== undefined) received.key = key;
  if (typeof msg.properties.contentType === 'string') received.contentType = msg.properties.contentType;
  return received;
}

/** AMQP field value -> header string; undefined for a void value (nothing to carry). */
export function headerString(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return JSON.stringify(plain(value));
}

/** Turns amqplib's decoded tables (typed wrappers, Buffers, arrays) into plain JSON values. */
function plain(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object') {
    const table = value as Record<string, unknown>;
    if ('!' in table && 'value' in table) {
      // amqplib's typed values: { '!': 'timestamp', value: seconds }, { '!': 'decimal', value: { places, digits } }
      if (table['!'] === 'timestamp' && typeof table.value === 'number') return new Date(table.value * 1000).toISOString();
      if (table['!'] === 'decimal') {
        const decimal = table.value as { places: number; digits: number };
        return String(decimal.digits / 10 ** decimal.places);
      }
      return plain(table.value);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(table)) out[k] = plain(v);
    return out;
  }
  return value;
}
