// Messages from a foreign producer, put on RabbitMQ with amqplib directly:
// header tables of every AMQP type (strings beyond Latin-1 and with CR/LF,
// numbers incl. Infinity and NaN, byte arrays of invalid UTF-8, nested tables
// and arrays, __proto__ and constructor keys), absurd versions, hostile ids,
// and payloads of every size, including over the limit.

import fc from 'fast-check';
import type * as amqp from 'amqplib';
import { answer, payload } from './cases.ts';
import type { View } from './oracle.ts';
import { ReopeningConfirmChannel } from '../../integration/amqp/rabbit.ts';

export type Field = string | number | boolean | null | Buffer | Field[] | { [k: string]: Field };

export interface ForeignCase {
  /** In order; a later name wins, as in a JS object. */
  headers: [string, Field][];
  version: Field | undefined;
  versionName: string;
  /** Appended to the case's id (the AMQP message id). */
  idSuffix: string;
  payload: Buffer;
  contentType: string | undefined;
  answer: number;
}

const deep = (n: number): Field => {
  let v: Field = 'leaf';
  for (let i = 0; i < n; i++) v = { d: v };
  return v;
};

export const field: fc.Arbitrary<Field> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('a\r\nx-injected: 1', 'line\nfeed', 'cr\r', 'nul\0', 'tab\tok', '日本語', '🎉', '\u2028', '\ufeff', ' padded ') },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 60_000 }).map((n) => 'h'.repeat(n)) },
  // (amqplib cannot encode NaN or ±Infinity at all, and RabbitMQ closes the connection on its attempt: no case.)
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(1e300, 1.5, -0, 2, 5e-324)) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(1, 50, 500).map(deep) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2000 }).map((n) => Array.from({ length: n }, (_, i) => i)) },
  { weight: 1, arbitrary: fc.constant(JSON.parse('{"__proto__":{"x-schema-version":"9"},"constructor":"c"}') as Field) },
);

const name: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: fc.constantFrom(...'abcxyz019-_.'.split('')), minLength: 1, maxLength: 12 }).map((s) => `x-${s}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 0, maxLength: 12 }).filter((s) => s !== '!' && Buffer.byteLength(s) < 250) },
  { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', 'X-Schema-Version', 'X-SCHEMA-VERSION', 'x-turnout-deferrals', 'x-turnout-dlq-reason', 'x-turnout-source', 'x-turnout-key', 'x-turnout-message-id', 'content-type', 'Content-Length', 'host', 'transfer-encoding', 'x-death', 'x bad', 'x-日本') },
);

const versionField: fc.Arbitrary<Field | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Field | undefined>('1', '2', '3', '4', 'v2', 1, 2, 3, undefined, Buffer.from('2')) },
  { weight: 2, arbitrary: fc.constantFrom<Field>('0', '-1', 'v', '1e400', 1e300, -1, 0, 2.5, '9'.repeat(10_000), '٢', '２', true, Buffer.from([0xff]), { v: 2 }, [2], null, '2\r\n', ' 1 ', '\u0661') },
);

export const foreignCase: fc.Arbitrary<ForeignCase> = fc.record({
  headers: fc.array(fc.tuple(name, field), { maxLength: 5 }),
  version: versionField,
  versionName: fc.constantFrom('x-schema-version', 'x-schema-version', 'X-Schema-Version'),
  idSuffix: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('-日本', '-\r\n', '-é', ' ', '-🎉', '-\0') }),
  payload,
  contentType: fc.option(fc.oneof(fc.constantFrom('application/json', 'text/plain; charset=latin1', 'weird/\u00e9', 'bad\r\nvalue'), fc.string({ unit: 'grapheme', maxLength: 30 })), { nil: undefined }),
  answer,
});

/** The header table as a JS object; own __proto__ keys kept as data properties. */
export function table(c: ForeignCase): Record<string, Field> {
  const t: Record<string, Field> = {};
  const put = (k: string, v: Field): void => void Object.defineProperty(t, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [k, v] of c.headers) {
    if (k === c.versionName.toLowerCase() || k === c.versionName) continue;
    put(k, v);
  }
  if (c.version !== undefined) put(c.versionName, c.version);
  return t;
}

const wellFormed = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/** AMQP field → the string turnout holds (DESIGN: "non-string header values are rendered as strings"). */
function render(v: Field): string | undefined {
  if (v === null) return undefined;
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') return String(Number.isInteger(v) && Object.is(v, -0) ? 0 : v);
  if (typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return JSON.stringify(plain(v));
}

function plain(v: Field): unknown {
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return wellFormed(v);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      // amqplib decodes tables into plain objects: a __proto__ key is lost there.
      if (k === '__proto__') continue;
      Object.defineProperty(out, wellFormed(k), { value: plain(v[k] as Field), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

/** What turnout must hold after consuming the message. */
export function foreignView(c: ForeignCase, id: string): View {
  const headers = new Map<string, string>();
  let key: string | undefined;
  for (const [k0, v] of Object.entries(table(c))) {
    const k = wellFormed(k0);
    // Known limitation, outside turnout: amqplib decodes a header table into a
    // plain object, where a "__proto__" key cannot be an own property.
    if (k === '__proto__') continue;
    const s = render(v);
    if (s === undefined) continue;
    if (k === 'x-turnout-key') key = s;
    else headers.set(k, s);
  }
  return { id: wellFormed(id), headers, payload: c.payload, contentType: c.contentType === undefined ? undefined : wellFormed(c.contentType), key };
}

/** A plain amqplib producer with confirms; what amqplib itself cannot encode is reported, not thrown. */
export class ForeignProducer {
  private readonly channel: ReopeningConfirmChannel;
  constructor(url: string) {
    // RabbitMQ closes the connection on some frames it will not take (541 INTERNAL_ERROR): the channel starts afresh.
    this.channel = new ReopeningConfirmChannel(url);
  }

  /** 'sent' after the broker's confirm; otherwise why the producer could not send it. */
  async publish(queue: string, id: string, c: ForeignCase): Promise<'sent' | string> {
    let ch: amqp.ConfirmChannel;
    try {
      ch = await this.channel.get();
    } catch (err) {
      throw new Error(`the foreign producer cannot reach RabbitMQ: ${(err as Error).message}`);
    }
    const options: amqp.Options.Publish = { persistent: true, messageId: id, headers: table(c) };
    if (c.contentType !== undefined) options.contentType = c.contentType;
    try {
      await new Promise<void>((resolve, reject) => {
        ch.sendToQueue(queue, c.payload, options, (err: unknown) => (err ? reject(err as Error) : resolve()));
      });
      return 'sent';
    } catch (err) {
      this.channel.drop();
      return `producer refused: ${(err as Error).message.slice(0, 80)}`;
    }
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
