// What goes to the dead-letter target: the original message (original
// payload and version, never a translated copy) with the reason headers.

import type { Message, Received } from '../adapters/broker.ts';
import { deleteHeader, setHeader } from '../lib/headers.ts';

export type DeadLetterReason = 'max-attempts' | 'rejected' | 'unsupported-version' | 'translate-error' | 'too-large';

export const DEFERRALS_HEADER = 'x-turnout-deferrals';

export function deadLetterMessage(original: Received, reason: DeadLetterReason, error: string, attempts: number, now = new Date()): Message {
  const headers: Record<string, string> = { ...original.headers };
  // The deferral count is bookkeeping of the queue it left; the next consumer starts afresh.
  deleteHeader(headers, DEFERRALS_HEADER);
  setHeader(headers, 'x-turnout-dlq-reason', reason);
  setHeader(headers, 'x-turnout-error', oneLine(error, 512));
  setHeader(headers, 'x-turnout-attempts', String(attempts));
  setHeader(headers, 'x-turnout-source', original.source);
  setHeader(headers, 'x-turnout-failed-at', now.toISOString());
  const out: Message = { id: original.id, payload: original.payload, headers };
  if (original.key !== undefined) out.key = original.key;
  if (original.contentType !== undefined) out.contentType = original.contentType;
  return out;
}

/**
 * The fallback copy when the target refused the full one for its shape (its
 * headers: AMQP's 64 KiB header table, a name the broker cannot carry): the
 * original payload, id, key and content type, the version header and
 * turnout's own x-turnout-* headers; the other headers are dropped and the
 * error says so. A copy that cannot be dead-lettered would otherwise go back
 * to the source and come round again for ever.
 */
export function withoutOwnHeaders(copy: Message, versionHeader: string, why: string): Message {
  const headers: Record<string, string> = {};
  const version = versionHeader.toLowerCase();
  for (const [k, v] of Object.entries(copy.headers)) {
    const lower = k.toLowerCase();
    if ((lower === version || lower.startsWith('x-turnout-')) && v.length <= 1024) headers[k] = v;
  }
  const error = headers['x-turnout-error'] ?? '';
  setHeader(headers, 'x-turnout-error', oneLine(`${error}; the message's other headers were dropped: the dead-letter target refused them (${why})`, 512));
  return { ...copy, headers };
}

/**
 * One line of printable ASCII. The dead-letter target is often another
 * turnout's source (green → blue), which forwards every header over HTTP:
 * control characters and text beyond Latin-1 (app error bodies, payload
 * snippets in JSON errors, even a "…") would make that delivery impossible,
 * and SQS refuses control characters in attributes. Others become \uXXXX.
 */
function oneLine(text: string, max: number): string {
  const flat = text
    .replace(/[\r\n\t]+/g, ' ')
    .trim()
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
