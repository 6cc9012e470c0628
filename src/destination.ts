// Where a consumed message goes once the version gate let it through: the
// app (consumer role, app-destination.ts) or blue/green (router role,
// route-destination.ts). A destination owns its attempts and its retry
// policy and ends in a verdict; the pipeline turns the verdict into what the
// broker is told (deferring and dead-lettering are the pipeline's own).

import type { Message, Received } from '../adapters/broker.ts';
import type { Config } from '../config/schema.ts';
import type { DeadLetterReason } from './deadletter.ts';

export type Verdict =
  | { kind: 'ack' }
  /** The app does not understand this version: deferred like a version the gate cannot place. */
  | { kind: 'defer'; why: string }
  | { kind: 'dead-letter'; reason: DeadLetterReason; error: string; attempts: number }
  /** Cut short by the drain, or nowhere to go: back to the broker, counted as released. */
  | { kind: 'release'; why: string }
  /** The broker itself keeps failing: the source copy is safest where it is. */
  | { kind: 'keep'; why: string; err: unknown };

/** How often to try and how long to wait between tries (TURNOUT_MAX_ATTEMPTS, TURNOUT_RETRY_BACKOFF). */
export interface RetryPolicy {
  maxAttempts: number;
  /** First retry delay; doubles per attempt, jittered (backoff.ts). */
  backoffMs: number;
}

export function retryPolicyOf(config: Config): RetryPolicy {
  return { maxAttempts: config.maxAttempts, backoffMs: config.retryBackoff };
}

/** What the pipeline's drain means for one send. */
export interface SendContext {
  /** Aborts at the drain deadline: attempts and backoff sleeps end at once. */
  signal: AbortSignal;
  /** True once the drain has begun (subscriptions stopped, in-flight work finishing). */
  draining: () => boolean;
}

export interface Destination {
  /** `received` is the message as consumed; `out` is what to send (translated, if it was). Never throws for a verdict. */
  send(received: Received, out: Message, ctx: SendContext): Promise<Verdict>;
}
