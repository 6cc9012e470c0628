// The router role's destination: publish to the blue or green target the
// router picks for the message's route key. Retry policy: a broker error the
// broker calls permanent dead-letters the message (rejected); others are
// retried with backoff until TURNOUT_MAX_ATTEMPTS, then the message is kept
// on its source (the broker is struggling; that copy is the safest one).

import type { BrokerAdapter, Message, Received } from '../adapters/broker.ts';
import { isBrokerError } from '../adapters/broker.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import type { Destination, RetryPolicy, SendContext, Verdict } from './destination.ts';
import type { Router } from './router.ts';

export class RouteDestination implements Destination {
  private readonly router: Router;
  private readonly broker: Pick<BrokerAdapter, 'publish'>;
  private readonly retry: RetryPolicy;

  constructor(options: { router: Router; broker: Pick<BrokerAdapter, 'publish'>; retry: RetryPolicy }) {
    this.router = options.router;
    this.broker = options.broker;
    this.retry = options.retry;
  }

  async send(received: Received, out: Message, ctx: SendContext): Promise<Verdict> {
    // The route key is read from the message as consumed, before any translation.
    const route = this.router.route(received, received.source);
    if (!route) return { kind: 'release', why: 'no route target' };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.broker.publish(route.target, out);
        this.router.routed(route.color);
        return { kind: 'ack' };
      } catch (err) {
        const why = `publishing to ${route.color} target "${route.target}" failed: ${(err as Error).message}`;
        if (isBrokerError(err) && !err.retriable) return { kind: 'dead-letter', reason: 'rejected', error: why, attempts: attempt };
        if (attempt >= this.retry.maxAttempts) return { kind: 'keep', why, err };
        if (!(await sleep(backoffDelay(attempt, this.retry.backoffMs), ctx.signal))) return { kind: 'release', why: 'drain deadline passed during backoff' };
      }
    }
  }
}
