// MessageGroupId and MessageDeduplicationId for publishes to FIFO queues.
//
// The group is the route key (TURNOUT_ROUTE_KEY: the message key, a header
// or a JSON field, else the id): the value that already says "these messages
// belong together", so order is kept per customer/order/…, not globally.
// The deduplication id is turnout's message id: a publish retried after a
// lost confirmation, or a message dead-lettered twice after a crash, lands
// once (SQS deduplicates per queue for 5 minutes).

import { createHash } from 'node:crypto';
import { routeKeyOf, type RouteKey } from '../../lib/route-key.ts';
import type { Message } from '../broker.ts';

/** SQS allows 1–128 characters of printable ASCII in group and deduplication ids. */
export function sqsId(value: string): string {
  if (/^[\x21-\x7E]{1,128}$/.test(value)) return value;
  // Anything else (spaces, non-ASCII, too long) is hashed: stable, so grouping is unchanged.
  return `h-${createHash('sha256').update(value).digest('hex')}`;
}

export const groupIdOf = (message: Message, spec: RouteKey): string => sqsId(routeKeyOf(message, spec));
export const dedupIdOf = (message: Message): string => sqsId(message.id);
