// Calling the pipeline's handler for a consumed message, the same on every
// broker: the adapters differ only in what each disposition means for their
// broker, not in how the handler is called or what a failed call means.

import type { Logger } from '../lib/log.ts';
import type { Disposition, Handler, Message, Received } from './broker.ts';

/** A consumed message as the handler gets it: its own copy of the headers, so the handler may change them. */
export function received(message: Message, source: string, redelivered: boolean): Received {
  return { ...message, headers: { ...message.headers }, source, redelivered };
}

/** Told when a handler threw or rejected (the message is released). */
export type FailureReport = (err: unknown, message: Received) => void;

/**
 * Calls the handler and hands its decision to `settle`, the adapter's own
 * application of it. A handler must always decide, so one that throws
 * (synchronously or by rejecting) has its message released, i.e. handed out
 * again by the broker, and the failure is reported. Resolves when `settle`
 * is done; rejects only if `settle` itself fails.
 */
export function invoke(
  handler: Handler,
  message: Received,
  report: FailureReport,
  settle: (disposition: Disposition) => void | Promise<void>,
): Promise<void> {
  let outcome: Promise<Disposition>;
  try {
    outcome = Promise.resolve(handler(message));
  } catch (err) {
    outcome = Promise.reject(err);
  }
  // settle is called straight from the handler's promise (no extra turn), as each adapter did before.
  return outcome.then(settle, (err: unknown) => {
    try {
      report(err, message);
    } catch {
      // a failing report must not lose the message's disposition
    }
    return settle({ kind: 'release' });
  });
}

/** The usual report: one error line naming the source and the message. */
export function logFailure(logger: Pick<Logger, 'error'>): FailureReport {
  return (err, message) => logger.error({ err, source: message.source, id: message.id }, 'message handler failed; the message is released');
}
