// Classifies amqplib and socket errors into BrokerError where they enter.

import { BrokerError, type BrokerErrorCode } from '../broker.ts';

/** AMQP reply codes (0-9-1 spec, section 1.2) that decide the class. */
const REPLY: Record<number, BrokerErrorCode> = {
  311: 'too-large', // content-too-large
  403: 'forbidden', // access-refused
  404: 'unknown-queue', // not-found
  406: 'invalid', // precondition-failed
  530: 'forbidden', // not-allowed (e.g. a vhost the user may not open)
};

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** Turns whatever amqplib threw into a BrokerError; `what` says what turnout was doing. */
export function classify(err: unknown, what: string): BrokerError {
  if (err instanceof BrokerError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null | undefined;
  const text = typeof e?.message === 'string' ? e.message : String(err);
  const code = e?.code;
  let kind: BrokerErrorCode = 'unavailable';
  if (typeof code === 'number' && REPLY[code]) kind = REPLY[code];
  else if (typeof code === 'string' && NETWORK.has(code)) kind = 'unavailable';
  else if (/\b403\b|ACCESS[-_]REFUSED/i.test(text)) kind = 'forbidden';
  else if (/\b530\b|NOT[-_]ALLOWED/i.test(text)) kind = 'forbidden';
  // amqplib refuses to encode e.g. a header table over 64 KiB or a header name over 255 bytes.
  else if (err instanceof RangeError || err instanceof TypeError) kind = 'invalid';
  return new BrokerError(kind, `${what}: ${text}`, { cause: err });
}

/** RabbitMQ's refusal of a message over max_message_size names both sizes; returns the limit. */
export function maxSizeFrom(err: unknown): number | undefined {
  const text = (err as { message?: unknown } | null)?.message;
  if (typeof text !== 'string') return undefined;
  const m = /larger than configured max size (\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The AMQP URL without its password, for logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
