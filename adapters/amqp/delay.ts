// The delay queue turnout owns per source: a deferred message waits there
// for its per-message TTL and is then dead-lettered by RabbitMQ back into the
// source queue. No timer in turnout, no polling, no hot loop.

import { createHash } from 'node:crypto';

const PREFIX = 'turnout.delay.';

/** The delay queue of a source. AMQP queue names are at most 255 bytes. */
export function delayQueueName(source: string): string {
  const name = PREFIX + source;
  if (Buffer.byteLength(name) <= 255) return name;
  return PREFIX + createHash('sha256').update(source).digest('hex');
}

/**
 * Arguments of the delay queue. Classic on purpose: it holds each message
 * only for the defer delay, and RabbitMQ dead-letters expired messages from
 * a classic queue back to the source without extra settings.
 */
export function delayQueueArguments(source: string): Record<string, string> {
  return {
    'x-queue-type': 'classic',
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': source,
  };
}

/**
 * Removes what RabbitMQ wrote when the copy left turnout's delay queue
 * (x-death entry, x-first/last-death-* naming that queue), so the app sees
 * the message's own history, not turnout's deferral mechanics.
 */
export function stripOwnDeath(headers: Record<string, string>, delayQueue: string): void {
  for (const edge of ['first', 'last']) {
    if (headers[`x-${edge}-death-queue`] === delayQueue) {
      delete headers[`x-${edge}-death-queue`];
      delete headers[`x-${edge}-death-reason`];
      delete headers[`x-${edge}-death-exchange`];
    }
  }
  const death = headers['x-death'];
  if (death === undefined) return;
  try {
    const entries = JSON.parse(death) as unknown;
    if (!Array.isArray(entries)) return;
    const others = entries.filter((e) => (e as { queue?: unknown } | null)?.queue !== delayQueue);
    if (others.length === 0) delete headers['x-death'];
    else if (others.length !== entries.length) headers['x-death'] = JSON.stringify(others);
  } catch {
    // not the JSON rendering of an x-death array: leave it as it is
  }
}
