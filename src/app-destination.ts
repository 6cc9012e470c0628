// The consumer role's destination: POST to the app (delivery.ts makes one
// attempt) until it answers. Retry policy: 408/429/5xx and network errors are
// retried with backoff (a Retry-After the app sends is honoured, up to the
// cap) until TURNOUT_MAX_ATTEMPTS, then dead-lettered as max-attempts;
// while draining, a failure hands the message back instead.

import type { Message, Received } from '../adapters/broker.ts';
import { MAX_BACKOFF_MS, backoffDelay, sleep } from '../lib/backoff.ts';
import type { AppClient } from './delivery.ts';
import type { Destination, RetryPolicy, SendContext, Verdict } from './destination.ts';
import type { Logger } from '../lib/log.ts';
import type { Metrics } from './metrics.ts';

export class AppDestination implements Destination {
  private readonly app: Pick<AppClient, 'post'>;
  private readonly retry: RetryPolicy;
  private readonly metrics: Metrics;
  private readonly logger: Logger;

  constructor(options: { app: Pick<AppClient, 'post'>; retry: RetryPolicy; metrics: Metrics; logger: Logger }) {
    this.app = options.app;
    this.retry = options.retry;
    this.metrics = options.metrics;
    this.logger = options.logger;
  }

  async send(received: Received, out: Message, ctx: SendContext): Promise<Verdict> {
    const { source, redelivered } = received;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const r = await this.app.post(out, { attempt, source, redelivered }, ctx.signal);
      if (r.kind !== 'aborted') this.metrics.deliveryDuration.observe((performance.now() - started) / 1000);
      switch (r.kind) {
        case 'delivered':
          this.metrics.countDelivered(source);
          return { kind: 'ack' };
        case 'unsupported':
          return { kind: 'defer', why: 'app answered 415 (does not understand this version)' };
        case 'rejected':
          return { kind: 'dead-letter', reason: 'rejected', error: r.error, attempts: attempt };
        case 'aborted':
          return { kind: 'release', why: 'drain deadline passed during delivery' };
        case 'retry': {
          // The app is likely going away with us (pod termination): hand the message back
          // for another consumer instead of spending its attempts on a dying app.
          if (ctx.draining()) return { kind: 'release', why: `draining and the app failed (${r.error})` };
          if (attempt >= this.retry.maxAttempts) return { kind: 'dead-letter', reason: 'max-attempts', error: r.error, attempts: attempt };
          const wait = Math.min(MAX_BACKOFF_MS, Math.max(r.retryAfterMs ?? 0, backoffDelay(attempt, this.retry.backoffMs)));
          this.logger.debug({ id: received.id, attempt, wait, error: r.error }, 'delivery failed; retrying');
          if (!(await sleep(wait, ctx.signal))) return { kind: 'release', why: 'drain deadline passed during backoff' };
        }
      }
    }
  }
}
