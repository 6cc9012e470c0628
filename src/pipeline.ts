// The pipeline: for every consumed message, decide its fate and tell the
// adapter. Steps, in order:
//
//   size check → version gate (pass | translate | defer) → deliver to the app
//   (with retries) or route to blue/green → ack | defer | dead-letter | release
//
// A message always ends in exactly one disposition; a failure to dead-letter
// releases it back to the broker rather than dropping it.

import type { BrokerAdapter, Disposition, Message, Received, Subscription } from '../adapters/broker.ts';
import { isBrokerError } from '../adapters/broker.ts';
import type { Config } from '../config/schema.ts';
import { expandTarget } from '../config/load.ts';
import { MAX_BACKOFF_MS, backoffDelay, sleep } from './backoff.ts';
import { DEFERRALS_HEADER, deadLetterMessage, withoutOwnHeaders, type DeadLetterReason } from './deadletter.ts';
import type { AppClient } from './delivery.ts';
import { decide } from './gate.ts';
import { headerValue, setHeader } from './headers.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { Router } from './router.ts';
import { Semaphore } from './semaphore.ts';
import type { Translate } from './translate/pool.ts';
import { translate, TranslateError, type TranslatorSet } from './translators.ts';

export interface PipelineDeps {
  config: Config;
  broker: BrokerAdapter;
  /** The live translator set (may be swapped by a reload between messages). */
  translators: () => TranslatorSet;
  /**
   * Translates within the budget (Turnout passes its TranslationPool); a
   * TranslateError carries the dead-letter reason. Default: in this thread,
   * without a budget (unit tests).
   */
  translate?: Translate;
  /** Set in the consumer role. */
  app: AppClient | undefined;
  /** Set in the router role (used when there is no app). */
  router: Router | undefined;
  metrics: Metrics;
  logger: Logger;
}

export interface DrainResult {
  /** Every in-flight message finished before the deadline. */
  clean: boolean;
  /** Messages handed back to the broker unacknowledged during the drain. */
  released: number;
}

export class Pipeline {
  private readonly d: PipelineDeps;
  private readonly slots: Semaphore;
  private readonly subscriptions: Subscription[] = [];
  /** Aborts deliveries and backoff sleeps at the drain deadline. */
  private readonly abort = new AbortController();
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private released = 0;
  private draining = false;

  constructor(deps: PipelineDeps) {
    this.d = deps;
    this.slots = new Semaphore(deps.config.concurrency);
  }

  get inflight(): number {
    return this.active;
  }

  /** Subscribes to every source. */
  async start(): Promise<void> {
    const { config, broker } = this.d;
    for (const source of config.source ?? []) {
      const sub = await broker.consume(source, (m) => this.handle(m), {
        prefetch: config.concurrency,
        group: expandTarget(config.group, source),
      });
      this.subscriptions.push(sub);
    }
  }

  /** Stops taking messages, lets in-flight work finish until the deadline, then releases the rest. */
  async drain(timeoutMs: number): Promise<DrainResult> {
    this.draining = true;
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop().catch((err: unknown) => this.d.logger.warn({ err }, 'stopping a subscription failed'))));
    const finished = await this.waitIdle(timeoutMs);
    if (finished) return { clean: true, released: this.released };
    this.abort.abort();
    // Aborted deliveries and sleeps return 'release' promptly; give them a moment to reach the broker.
    await this.waitIdle(10_000);
    return { clean: false, released: this.released };
  }

  private waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /** The handler given to the adapter. Never throws. */
  async handle(m: Received): Promise<Disposition> {
    this.active++;
    await this.slots.acquire();
    try {
      if (this.abort.signal.aborted) return this.release(m, 'drain deadline passed before it started');
      return await this.process(m);
    } catch (err) {
      // A bug, not a verdict on the message: keep it.
      this.d.logger.error({ err, id: m.id, source: m.source }, 'unexpected error; message goes back to the broker');
      return { kind: 'release' };
    } finally {
      this.slots.release();
      if (--this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async process(m: Received): Promise<Disposition> {
    const { config, metrics } = this.d;
    if (m.payload.length > config.maxMessageBytes) {
      metrics.countReceived(m.source, 'unknown');
      return this.deadLetter(m, 'too-large', `payload is ${m.payload.length} bytes; TURNOUT_MAX_MESSAGE_BYTES is ${config.maxMessageBytes}`, 0);
    }
    const decision = decide(m.headers, config, this.d.translators());
    metrics.countReceived(m.source, decision.kind === 'invalid' ? 'invalid' : String(decision.version));

    let out: Message = m;
    switch (decision.kind) {
      case 'invalid':
        return this.deadLetter(m, 'unsupported-version', `${config.versionHeader} "${decision.raw}" is not a version (a positive whole number, v prefix allowed)`, 0);
      case 'defer':
        return this.defer(m, decision.version, `no translation from v${decision.version} to an accepted version (${(config.accept ?? []).join(',')})`);
      case 'translate': {
        let payload: Buffer;
        try {
          payload = this.d.translate
            ? await this.d.translate(decision.chain, m.payload)
            : await translate(decision.chain, m.payload, { maxBytes: config.maxMessageBytes });
        } catch (err) {
          if (err instanceof TranslateError) return this.deadLetter(m, err.reason, err.message, 0);
          throw err;
        }
        metrics.translated.inc({ from: String(decision.chain.from), to: String(decision.chain.to) });
        const headers = { ...m.headers };
        setHeader(headers, config.versionHeader, String(decision.chain.to));
        setHeader(headers, 'x-turnout-translated-from', String(decision.chain.from));
        out = { ...m, payload, contentType: 'application/json', headers };
        break;
      }
      case 'pass':
        break;
    }
    if (this.d.app) return this.deliver(m, out, decision.version);
    return this.route(m, out);
  }

  private async deliver(m: Received, out: Message, version: number): Promise<Disposition> {
    const { config, metrics, logger } = this.d;
    const app = this.d.app as AppClient;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const r = await app.post(out, { attempt, source: m.source, redelivered: m.redelivered }, this.abort.signal);
      if (r.kind !== 'aborted') metrics.deliveryDuration.observe((performance.now() - started) / 1000);
      switch (r.kind) {
        case 'delivered':
          metrics.countDelivered(m.source);
          return { kind: 'ack' };
        case 'unsupported':
          return this.defer(m, version, 'app answered 415 (does not understand this version)');
        case 'rejected':
          return this.deadLetter(m, 'rejected', r.error, attempt);
        case 'aborted':
          return this.release(m, 'drain deadline passed during delivery');
        case 'retry': {
          // The app is likely going away with us (pod termination): hand the message back
          // for another consumer instead of spending its attempts on a dying app.
          if (this.draining) return this.release(m, `draining and the app failed (${r.error})`);
          if (attempt >= config.maxAttempts) return this.deadLetter(m, 'max-attempts', r.error, attempt);
          const wait = Math.min(MAX_BACKOFF_MS, Math.max(r.retryAfterMs ?? 0, backoffDelay(attempt, config.retryBackoff)));
          logger.debug({ id: m.id, attempt, wait, error: r.error }, 'delivery failed; retrying');
          if (!(await sleep(wait, this.abort.signal))) return this.release(m, 'drain deadline passed during backoff');
        }
      }
    }
  }

  private async route(m: Received, out: Message): Promise<Disposition> {
    const { config, logger } = this.d;
    const router = this.d.router as Router;
    const decision = router.route(m, m.source);
    if (!decision) return this.release(m, 'no route target');
    for (let attempt = 1; ; attempt++) {
      try {
        await this.d.broker.publish(decision.target, out);
        router.routed(decision.color);
        return { kind: 'ack' };
      } catch (err) {
        const why = `publishing to ${decision.color} target "${decision.target}" failed: ${(err as Error).message}`;
        if (isBrokerError(err) && !err.retriable) return this.deadLetter(m, 'rejected', why, attempt);
        if (attempt >= config.maxAttempts) {
          // The broker itself is struggling; the source copy is safest where it is.
          logger.warn({ id: m.id, err }, `${why}; giving the message back to the broker`);
          return { kind: 'release' };
        }
        if (!(await sleep(backoffDelay(attempt, config.retryBackoff), this.abort.signal))) return this.release(m, 'drain deadline passed during backoff');
      }
    }
  }

  private async defer(m: Received, version: number, why: string): Promise<Disposition> {
    const { config, metrics, logger } = this.d;
    const count = Number.parseInt(headerValue(m.headers, DEFERRALS_HEADER) ?? '0', 10);
    const n = Number.isFinite(count) && count > 0 ? count : 0;
    if (n >= config.maxDeferrals) {
      return this.deadLetter(m, 'unsupported-version', `${why}; deferred ${n} times (TURNOUT_MAX_DEFERRALS=${config.maxDeferrals})`, 0);
    }
    metrics.deferred.inc({ source: m.source, version: String(version) });
    logger.debug({ id: m.id, version, deferrals: n + 1 }, `deferred: ${why}`);
    const headers = { ...m.headers };
    setHeader(headers, DEFERRALS_HEADER, String(n + 1));
    return { kind: 'defer', delayMs: config.deferDelay, headers };
  }

  private async deadLetter(m: Received, reason: DeadLetterReason, error: string, attempts: number): Promise<Disposition> {
    const { config, metrics, logger, broker } = this.d;
    const log = { id: m.id, source: m.source, reason, error, attempts };
    if (config.dlq === undefined) {
      if (broker.nativeDeadLetter) {
        metrics.deadLettered.inc({ source: m.source, reason });
        logger.warn(log, 'dead-lettered to the broker\'s own dead-letter mechanism');
        return { kind: 'reject', reason };
      }
      logger.error(log, 'cannot dead-letter: no TURNOUT_DLQ and the broker has no dead-letter mechanism; message goes back to the broker');
      return { kind: 'release' };
    }
    const target = expandTarget(config.dlq, m.source);
    const copy = deadLetterMessage(m, reason, error, attempts);
    try {
      try {
        await broker.publish(target, copy);
      } catch (err) {
        // Refused for its shape (not for being down): the headers are what no
        // broker call will change, so the copy goes without them.
        if (!isBrokerError(err) || err.code !== 'invalid') throw err;
        logger.warn({ ...log, err, target }, 'the dead-letter target refused the copy\'s headers; dead-lettering it without them');
        await broker.publish(target, withoutOwnHeaders(copy, config.versionHeader, err.message));
      }
    } catch (err) {
      logger.error({ ...log, err, target }, 'dead-letter publish failed; message goes back to the broker');
      // Do not spin on a dead-letter target that is down.
      await sleep(backoffDelay(1, Math.max(config.retryBackoff, 100)), this.abort.signal);
      return { kind: 'release' };
    }
    metrics.deadLettered.inc({ source: m.source, reason });
    logger.warn({ ...log, target }, 'dead-lettered');
    return { kind: 'ack' };
  }

  private release(m: Received, why: string): Disposition {
    this.released++;
    this.d.logger.info({ id: m.id, source: m.source }, `${why}; message goes back to the broker unacknowledged`);
    return { kind: 'release' };
  }
}
