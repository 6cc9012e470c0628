// turnout messages ↔ Kafka records. The record key is the message key, the
// value its payload, record headers its headers. Kafka records have no id or
// content-type field, so those travel as headers turnout owns; deferred
// copies also carry the time before which they must not be handled.

import type { IHeaders, KafkaMessage, Message as KafkaRecord } from 'kafkajs';
import type { Message } from '../broker.ts';

export const ID_HEADER = 'x-turnout-id';
export const CONTENT_TYPE_HEADER = 'content-type';
/** Epoch milliseconds before which a record on a deferral topic is not handed out. */
export const NOT_BEFORE_HEADER = 'x-turnout-not-before';

/**
 * Where a consumed record sat in its source topic. Set on every message read
 * from a source (the topic is x-turnout-source), kept on its deferred copies,
 * so a dead-lettered message names the original record.
 */
export const PARTITION_HEADER = 'x-turnout-kafka-partition';
export const OFFSET_HEADER = 'x-turnout-kafka-offset';

const OWNED = new Set([ID_HEADER, CONTENT_TYPE_HEADER, NOT_BEFORE_HEADER]);

export function toRecord(message: Message, notBefore?: number): KafkaRecord {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (!OWNED.has(name.toLowerCase())) headers[name] = value;
  }
  headers[ID_HEADER] = message.id;
  if (message.contentType !== undefined) headers[CONTENT_TYPE_HEADER] = message.contentType;
  if (notBefore !== undefined) headers[NOT_BEFORE_HEADER] = String(Math.ceil(notBefore));
  return { key: message.key ?? null, value: message.payload, headers };
}

export interface Decoded {
  message: Message;
  /** Set on deferral-topic records. */
  notBefore?: number;
}

const text = (v: IHeaders[string]): string | undefined => {
  // A header sent twice arrives as an array; the first value wins, as for HTTP.
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined) return undefined;
  return typeof one === 'string' ? one : one.toString('utf8');
};

/**
 * Header names are lower-cased: Kafka's are case-sensitive, but turnout
 * matches them (version header, header: route keys) the way HTTP does.
 * Records without an id header (other producers) get a stable one from
 * their position, so a redelivered copy keeps its id.
 */
export function fromRecord(topic: string, partition: number, record: KafkaMessage): Decoded {
  const headers: Record<string, string> = {};
  let id: string | undefined;
  let contentType: string | undefined;
  let notBefore: number | undefined;
  for (const [rawName, rawValue] of Object.entries(record.headers ?? {})) {
    const name = rawName.toLowerCase();
    const value = text(rawValue);
    if (value === undefined) continue;
    if (name === ID_HEADER) id = value;
    else if (name === CONTENT_TYPE_HEADER) contentType = value;
    else if (name === NOT_BEFORE_HEADER) {
      const n = Number(value);
      if (Number.isFinite(n)) notBefore = n;
    } else if (!(name in headers)) headers[name] = value;
  }
  const message: Message = {
    id: id ?? `${topic}/${partition}/${record.offset}`,
    payload: record.value ?? Buffer.alloc(0),
    headers,
  };
  if (record.key !== null && record.key !== undefined) message.key = record.key.toString('utf8');
  if (contentType !== undefined) message.contentType = contentType;
  return notBefore === undefined ? { message } : { message, notBefore };
}
