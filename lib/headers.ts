import { isUtf8 } from 'node:buffer';

// Header names are case-insensitive (as in HTTP), but brokers keep them as the
// producer wrote them: AMQP and Kafka may deliver "X-Schema-Version". Every
// lookup or overwrite of a header turnout itself reads goes through these.

type Headers = Record<string, string>;

/** The value of `name`, matched case-insensitively (exact match first, the common case). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const exact = headers[name];
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  for (const k in headers) if (k.toLowerCase() === lower) return headers[k];
  return undefined;
}

/** Sets `name` (as given), removing any differently-cased copy so the message never carries two. */
export function setHeader(headers: Headers, name: string, value: string): void {
  deleteHeader(headers, name);
  headers[name] = value;
}

/**
 * A copy of `headers` with `name` and `name2` set (as given), differently-
 * cased copies of either left out: setHeader() twice on a spread copy, in
 * one pass and without `delete` (which turns a V8 object into a slower
 * dictionary-mode one, for every later read of the copy).
 */
export function withTwoHeaders(headers: Headers, name: string, value: string, name2: string, value2: string): Headers {
  const lower = name.toLowerCase();
  const lower2 = name2.toLowerCase();
  const copy: Headers = {};
  for (const k of Object.keys(headers)) {
    const l = k.toLowerCase();
    if (l === lower || l === lower2) continue;
    // An own "__proto__" stays an own property, as the spread copy kept it.
    if (k === '__proto__') Object.defineProperty(copy, k, { value: headers[k], enumerable: true, writable: true, configurable: true });
    else copy[k] = headers[k] as string;
  }
  copy[name] = value;
  copy[name2] = value2;
  return copy;
}

export function deleteHeader(headers: Headers, name: string): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) delete headers[k];
}

// HTTP carries header values as bytes; Node hands them over (and takes them)
// one byte per character, i.e. as Latin-1. turnout's header values are text,
// so on HTTP they travel as UTF-8: what a producer POSTs in UTF-8 is stored as
// the text it meant (a RabbitMQ, SQS or Kafka consumer reads it right), and a
// value beyond Latin-1 from any producer still reaches the app, as UTF-8 bytes.

const NON_ASCII = /[^\x00-\x7f]/;

/** A header value as Node should send it: its UTF-8 bytes, one character each. */
export function toWire(value: string): string {
  return NON_ASCII.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/** A header value as Node read it → the text: UTF-8 when its bytes are UTF-8, else Latin-1 as read. */
export function fromWire(value: string): string {
  if (!NON_ASCII.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : value;
}
