// The header rules of a moved copy: payload, key, id and headers are kept;
// a move back to the origin (@source) drops what dead-lettering added; every
// move counts itself in x-turnout-moves, the loop guard's counter.

import type { Message, Received } from '../../adapters/broker.ts';
import { deleteHeader, headerValue, setHeader } from '../../lib/headers.ts';

export const MOVES_HEADER = 'x-turnout-moves';

/** Written by dead-lettering and deferral; meaningless once the message is back on its source. */
export const DEAD_LETTER_HEADERS = ['x-turnout-dlq-reason', 'x-turnout-error', 'x-turnout-attempts', 'x-turnout-failed-at', 'x-turnout-deferrals'] as const;

/** How often the message was moved before (0 when never, or when the header is not a count). */
export function movesOf(headers: Record<string, string>): number {
  const raw = headerValue(headers, MOVES_HEADER);
  const n = raw === undefined ? 0 : Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function copyFor(message: Received, options: { toSource: boolean }): Message {
  const headers = { ...message.headers };
  if (options.toSource) for (const name of DEAD_LETTER_HEADERS) deleteHeader(headers, name);
  setHeader(headers, MOVES_HEADER, String(movesOf(message.headers) + 1));
  const copy: Message = { id: message.id, payload: message.payload, headers };
  if (message.key !== undefined) copy.key = message.key;
  if (message.contentType !== undefined) copy.contentType = message.contentType;
  return copy;
}
