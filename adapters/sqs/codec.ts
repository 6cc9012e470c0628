// turnout Message <-> SQS message body and message attributes.
//
// SQS gives us 10 message attributes, a body that must be non-empty text in
// a restricted Unicode set, and attribute values that must be non-empty.
// turnout spends ONE attribute, `x-turnout` (JSON), on what it needs to carry
// itself: the message id (SQS assigns its own MessageId), key, content type,
// how the body is encoded, every `x-turnout-*` header (dead-letter reasons,
// deferral counts…) and header values SQS cannot hold as attributes (empty
// or with characters outside its set). Every other header is one attribute
// of type String, so plain SQS consumers see them as usual: at most 9.

import { isUtf8 } from 'node:buffer';
import type { MessageAttributeValue, Message as SqsMessage } from '@aws-sdk/client-sqs';
import { BrokerError, type Message, type Received } from '../broker.ts';

export const META_ATTRIBUTE = 'x-turnout';
export const MAX_ATTRIBUTES = 10;
/** Attributes left for headers once turnout's own is counted. */
export const MAX_HEADER_ATTRIBUTES = MAX_ATTRIBUTES - 1;

/** Characters SQS accepts in a body or a String attribute value. */
const NOT_SQS_TEXT = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

interface Meta {
  id: string;
  key?: string;
  contentType?: string;
  /** How the body is encoded when it is not the payload's own UTF-8 text. */
  body?: 'base64' | 'empty';
  headers?: Record<string, string>;
  /** Epoch ms before which the message must not reach the app (deferrals longer than SQS's 15-minute delay, FIFO deferrals). */
  notBefore?: number;
}

export interface Encoded {
  body: string;
  attributes: Record<string, MessageAttributeValue>;
  /** Bytes as SQS counts them against MaximumMessageSize: body plus every attribute's name, type and value. */
  size: number;
}

export interface EncodeOptions {
  /**
   * Headers that cannot be attributes (too many, bad names) travel inside
   * `x-turnout` instead of being refused. For copies turnout makes itself
   * (deferrals, dead-letter copies) of messages that already exist: refusing
   * them would leave a message nowhere. Producers' publishes are refused.
   */
  spill: boolean;
  notBefore?: number | undefined;
}

/** Why a header name cannot be an SQS attribute name, or undefined if it can. */
export function attributeNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 256) return 'is longer than 256 characters';
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return 'may only contain letters, digits, "-", "_" and "."';
  if (/^(aws|amazon)\./i.test(name)) return 'must not start with "AWS." or "Amazon." (reserved by AWS)';
  if (name.startsWith('.') || name.endsWith('.')) return 'must not start or end with "."';
  if (name.includes('..')) return 'must not contain ".."';
  return undefined;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function attributeSize(name: string, v: MessageAttributeValue): number {
  return utf8Bytes(name) + utf8Bytes(v.DataType ?? '') + (v.StringValue !== undefined ? utf8Bytes(v.StringValue) : 0) + (v.BinaryValue?.byteLength ?? 0);
}

/** A turnout-internal header: carried in `x-turnout`, never as an attribute of its own. */
const isTurnoutHeader = (name: string): boolean => name.toLowerCase().startsWith('x-turnout');

export function encode(message: Message, options: EncodeOptions): Encoded {
  const meta: Meta = { id: message.id };
  if (message.key !== undefined) meta.key = message.key;
  if (message.contentType !== undefined) meta.contentType = message.contentType;
  if (options.notBefore !== undefined) meta.notBefore = options.notBefore;

  let body: string;
  if (message.payload.length === 0) {
    body = '-';
    meta.body = 'empty';
  } else {
    const text = isUtf8(message.payload) ? message.payload.toString('utf8') : undefined;
    if (text !== undefined && !NOT_SQS_TEXT.test(text)) {
      body = text;
    } else {
      body = message.payload.toString('base64');
      meta.body = 'base64';
    }
  }

  const inMeta: Record<string, string> = {};
  const attributes: Record<string, MessageAttributeValue> = {};
  const refused: string[] = [];
  let count = 0;
  for (const [name, value] of Object.entries(message.headers)) {
    if (isTurnoutHeader(name) || value === '' || NOT_SQS_TEXT.test(value)) {
      inMeta[name] = value;
      continue;
    }
    const problem = attributeNameProblem(name);
    if (problem !== undefined) {
      if (!options.spill) {
        throw new BrokerError('invalid', `header "${name}" cannot be an SQS message attribute: its name ${problem}`);
      }
      inMeta[name] = value;
      continue;
    }
    if (count >= MAX_HEADER_ATTRIBUTES) {
      if (!options.spill) {
        refused.push(name);
        continue;
      }
      inMeta[name] = value;
      continue;
    }
    attributes[name] = { DataType: 'String', StringValue: value };
    count++;
  }
  if (refused.length > 0) {
    throw new BrokerError(
      'invalid',
      `SQS allows ${MAX_ATTRIBUTES} message attributes and turnout uses 1 (x-turnout), so at most ${MAX_HEADER_ATTRIBUTES} headers can travel; ` +
        `this message has ${count + refused.length} (x-turnout-* headers and empty values do not count): drop ${refused.map((n) => `"${n}"`).join(', ')}`,
    );
  }
  if (Object.keys(inMeta).length > 0) meta.headers = inMeta;
  // JSON.stringify escapes control characters and lone surrogates, so this value is always valid SQS text.
  attributes[META_ATTRIBUTE] = { DataType: 'String', StringValue: JSON.stringify(meta) };

  let size = utf8Bytes(body);
  for (const [name, v] of Object.entries(attributes)) size += attributeSize(name, v);
  return { body, attributes, size };
}

export interface Decoded {
  received: Received;
  notBefore: number | undefined;
  /** Set when `x-turnout` was present but unreadable (the message is taken as a plain SQS message). */
  metaProblem: string | undefined;
  /** ApproximateReceiveCount, 1 on first receipt. */
  receiveCount: number;
}

function attributeText(v: MessageAttributeValue): string {
  if (v.DataType?.startsWith('Binary')) return v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : '';
  return v.StringValue ?? '';
}

function readMeta(raw: string | undefined): { meta: Meta | undefined; problem: string | undefined } {
  if (raw === undefined) return { meta: undefined, problem: undefined };
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null || typeof (v as { id?: unknown }).id !== 'string') {
      return { meta: undefined, problem: 'x-turnout attribute has no id' };
    }
    const m = v as Record<string, unknown>;
    const meta: Meta = { id: m.id as string };
    if (typeof m.key === 'string') meta.key = m.key;
    if (typeof m.contentType === 'string') meta.contentType = m.contentType;
    if (m.body === 'base64' || m.body === 'empty') meta.body = m.body;
    if (typeof m.notBefore === 'number') meta.notBefore = m.notBefore;
    if (typeof m.headers === 'object' && m.headers !== null) {
      const headers: Record<string, string> = {};
      for (const [k, hv] of Object.entries(m.headers as Record<string, unknown>)) if (typeof hv === 'string') headers[k] = hv;
      meta.headers = headers;
    }
    return { meta, problem: undefined };
  } catch (err) {
    return { meta: undefined, problem: `x-turnout attribute is not JSON: ${String(err)}` };
  }
}

export function decode(m: SqsMessage, source: string): Decoded {
  const attrs = m.MessageAttributes ?? {};
  const { meta, problem } = readMeta(attrs[META_ATTRIBUTE]?.StringValue);
  // Header names are case-insensitive to turnout (they become HTTP headers);
  // SQS attribute names are case-sensitive, so plain producers may use any case.
  const headers: Record<string, string> = {};
  for (const [name, v] of Object.entries(attrs)) {
    if (name === META_ATTRIBUTE && meta !== undefined) continue;
    headers[name.toLowerCase()] = attributeText(v);
  }
  if (meta?.headers) for (const [k, v] of Object.entries(meta.headers)) headers[k.toLowerCase()] = v;

  const bodyText = m.Body ?? '';
  let payload: Buffer;
  if (meta?.body === 'empty') payload = Buffer.alloc(0);
  else if (meta?.body === 'base64') payload = Buffer.from(bodyText, 'base64');
  else payload = Buffer.from(bodyText, 'utf8');

  const sys = m.Attributes ?? {};
  const receiveCount = Number(sys.ApproximateReceiveCount ?? '1') || 1;
  const received: Received = {
    id: meta?.id ?? m.MessageId ?? '',
    payload,
    headers,
    source,
    redelivered: receiveCount > 1,
  };
  // A FIFO message from a plain producer: its group is the natural key.
  const key = meta?.key ?? sys.MessageGroupId;
  if (key !== undefined) received.key = key;
  if (meta?.contentType !== undefined) received.contentType = meta.contentType;
  return { received, notBefore: meta?.notBefore, metaProblem: problem, receiveCount };
}
