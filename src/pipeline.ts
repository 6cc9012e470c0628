// The pipeline: for every consumed message, decide its fate and tell the
// adapter. The decision table, in order:
//
//   payload over TURNOUT_MAX_MESSAGE_BYTES      → dead-letter (too-large)
//   version gate: invalid header                → dead-letter (unsupported-version)
//                 no way to an accepted version → defer
//                 translate                     → translated copy goes on (translate-error → dead-letter)
//                 pass                          → the message goes on as it is
//   the destination (the app, or blue/green; each with its own retries):
//                 ack | defer | dead-letter | release | keep on the source
//
// A deferral past TURNOUT_MAX_DEFERRALS is dead-lettered. A message always
// ends in exactly one disposition; a failure to dead-letter releases it back
// to the broker rather than dropping it.

import type { BrokerAdapter, Disposition, Message, Received, Subscription } from '../adapters/broker.ts';
import { refusedForShape } from '../adapters/broker.ts';
import type { Config } from '../config/schema.ts';
import { expandTarget } from '../lib/targets.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import { DEFERRALS_HEADER, deadLetterMessage, withoutOwnHeaders, type DeadLetterReason } from './deadletter.ts';
import type { Destination, SendContext, Verdict } from './destination.ts';
import { decide } from './gate.ts';
import { headerValue, setHeader, withTwoHeaders } from '../lib/headers.ts';
import { InFlight } from './inflight.ts';
import { UnexpectedFailures } from './unexpected.ts';
import type { Logger } from '../lib/log.ts';
import type { Metrics } from './metrics.ts';
import type { Translate } from './translate/pool.ts';
import { translate, TranslateError, type Chain, type TranslatorSet } from './translators.ts';

/** Longest header text an error quotes whole: a producer's value can be as long as the broker's frame. */
const QUOTED_MAX = 64;

/**
 * A header value as an error text quotes it, cut to its first characters
 * (the text goes into a log line and x-turnout-error for every such message).
 */
function quoted(raw: string): string {
  if (raw.length <= QUOTED_MAX) return `"${raw}"`;
  // Not between the two halves of a surrogate pair.
  const end = /[\ud800-\udbff]/.test(raw.charAt(QUOTED_MAX - 1)) ? QUOTED_MAX - 1 : QUOTED_MAX;
  return `"${raw.slice(0, end)}..." (${raw.length} characters)`;
}

export interface PipelineDeps {
  config: Config;
  broker: BrokerAdapter;
  /** The live translator set (may be swapped by a reload between messages). */
  translators: () => TranslatorSet;
  /** Where messages the gate lets through go: the app (consumer role) or blue/green (router role). */
  destination: Destination;
  /**
   * Translates within the budget (Turnout passes its TranslationPool); a
   * TranslateError carries the dead-letter reason. Default: in this thread,
   * without a budget (unit tests).
   */
  translate?: Translate;
  metrics: Metrics;
  logger: Logger;
}

export interface DrainResult {
  /** Every in-flight message finished before the deadline. */
  clean: boolean;
  /** Messages handed back to the broker unacknowledged (by the drain, or with nowhere to go). */
  released: number;
}

export class Pipeline {
  private readonly config: Config;
  private readonly broker: BrokerAdapter;
  private readonly translators: () => TranslatorSet;
  private readonly translate: (chain: Chain, payload: Buffer) => Promise<Buffer> | Buffer;
  private readonly destination: Destination;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly inFlight: InFlight;
  private readonly failures = new UnexpectedFailures();
  private readonly subscriptions: Subscription[] = [];
  /** Aborts deliveries and backoff sleeps at the drain deadline. */
  private readonly abort = new AbortController();
  private readonly sendContext: SendContext;
  private released = 0;
  private draining = false;

  constructor(deps: PipelineDeps) {
    this.config = deps.config;
    this.broker = deps.broker;
    this.translators = deps.translators;
    this.translate = deps.translate ?? ((chain, payload) => translate(chain, payload, { maxBytes: deps.config.maxMessageBytes }));
    this.destination = deps.destination;
    this.metrics = deps.metrics;
    this.logger = deps.logger;
    this.inFlight = new InFlight(deps.config.concurrency);
    this.sendContext = { signal: this.abort.signal, draining: () => this.draining };
  }

  get inflight(): number {
    return this.inFlight.count;
  }

  /** Subscribes to every source. */
  async start(): Promise<void> {
    const { config, broker } = this;
    for (const source of config.source ?? []) {
      const subscription = await broker.consume(source, (m) => this.handle(m), {
        prefetch: config.concurrency,
        group: expandTarget(config.group, source),
      });
      this.subscriptions.push(subscription);
    }
  }

  /** Stops taking messages, lets in-flight work finish until the deadline, then releases the rest. */
  async drain(timeoutMs: number): Promise<DrainResult> {
    this.draining = true;
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop().catch((err: unknown) => this.logger.warn({ err }, 'stopping a subscription failed'))));
    const finished = await this.inFlight.waitIdle(timeoutMs);
    if (finished) return { clean: true, released: this.released };
    this.abort.abort();
    // Aborted deliveries and sleeps return 'release' promptly; give them a moment to reach the broker.
    await this.inFlight.waitIdle(10_000);
    return { clean: false, released: this.released };
  }

  /** The handler given to the adapter. Never throws. */
  handle(m: Received): Promise<Disposition> {
    return this.inFlight.run(async () => {
      try {
        if (this.abort.signal.aborted) return this.release(m, 'drain deadline passed before it started');
        return await this.process(m);
      } catch (err) {
        return this.unexpected(m, err);
      }
    });
  }

  /** A bug, not a verdict on the message: back to the broker after a pause, dead-lettered once it keeps failing (unexpected.ts). */
  private async unexpected(m: Received, err: unknown): Promise<Disposition> {
    const n = this.failures.record(m.id);
    const log = { err, id: m.id, source: m.source, failures: n };
    try {
      if (n >= this.config.maxAttempts) {
        this.failures.forget(m.id);
        this.logger.error(log, `unexpected error, ${n} times on this message (TURNOUT_MAX_ATTEMPTS); dead-lettering it so that it cannot hold its queue`);
        const what = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 200);
        return await this.deadLetter(m, 'max-attempts', `turnout failed on this message ${n} times (unexpected error: ${what})`, n);
      }
      this.logger.error(log, 'unexpected error; message goes back to the broker');
      await sleep(backoffDelay(n, Math.max(this.config.retryBackoff, 100)), this.abort.signal);
    } catch (again) {
      this.logger.error({ err: again, id: m.id }, 'unexpected error while handling an unexpected error; message goes back to the broker');
    }
    return { kind: 'release' };
  }

  private async process(m: Received): Promise<Disposition> {
    const { config, metrics } = this;
    if (m.payload.length > config.maxMessageBytes) {
      metrics.countReceived(m.source, 'unknown');
      return this.deadLetter(m, 'too-large', `payload is ${m.payload.length} bytes; TURNOUT_MAX_MESSAGE_BYTES is ${config.maxMessageBytes}`, 0);
    }
    const decision = decide(m.headers, config, this.translators());
    metrics.countReceived(m.source, decision.kind === 'invalid' ? 'invalid' : String(decision.version));

    let out: Message = m;
    switch (decision.kind) {
      case 'invalid':
        return this.deadLetter(m, 'unsupported-version', `${config.versionHeader} ${quoted(decision.raw)} is not a version (a positive whole number, v prefix allowed)`, 0);
      case 'defer':
        return this.defer(m, decision.version, `no translation from v${decision.version} to an accepted version (${(config.accept ?? []).join(',')})`);
      case 'translate': {
        let payload: Buffer;
        try {
          const translated = this.translate(decision.chain, m.payload);
          // The compiled path answers at once: no await (a microtask hop) for a value already there.
          payload = translated instanceof Promise ? await translated : translated;
        } catch (err) {
          if (err instanceof TranslateError) return this.deadLetter(m, err.reason, err.message, 0);
          throw err;
        }
        metrics.countTranslated(decision.chain.from, decision.chain.to);
        const headers = withTwoHeaders(m.headers, config.versionHeader, String(decision.chain.to), 'x-turnout-translated-from', String(decision.chain.from));
        out = { ...m, payload, contentType: 'application/json', headers };
        break;
      }
      case 'pass':
        break;
    }
    const verdict = await this.destination.send(m, out, this.sendContext);
    return this.settle(m, verdict, decision.version);
  }

  /** What the broker is told for the destination's verdict. */
  private settle(m: Received, verdict: Verdict, version: number): Promise<Disposition> | Disposition {
    switch (verdict.kind) {
      case 'ack':
        return { kind: 'ack' };
      case 'defer':
        return this.defer(m, version, verdict.why);
      case 'dead-letter':
        return this.deadLetter(m, verdict.reason, verdict.error, verdict.attempts);
      case 'release':
        return this.release(m, verdict.why);
      case 'keep':
        this.logger.warn({ id: m.id, err: verdict.err }, `${verdict.why}; giving the message back to the broker`);
        return { kind: 'release' };
    }
  }

  private async defer(m: Received, version: number, why: string): Promise<Disposition> {
    const { config, metrics, logger } = this;
    const count = Number.parseInt(headerValue(m.headers, DEFERRALS_HEADER) ?? '0', 10);
    const n = Number.isFinite(count) && count > 0 ? count : 0;
    if (m.deferRefused !== undefined) {
      return this.deadLetter(m, 'unsupported-version', `${why}; the broker refused its deferred copy (${m.deferRefused.slice(0, 200)})`, 0);
    }
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
    const { config, metrics, logger, broker } = this;
    const log = { id: m.id, source: m.source, reason, error, attempts };
    if (config.dlq === undefined) {
      if (broker.capabilities.nativeDeadLetter) {
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
        // Refused for its shape or size (not for being down): the headers are
        // what no broker call will change and what the dead-letter copy added
        // to a message the broker took, so the copy goes without them.
        if (!refusedForShape(err)) throw err;
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
    this.logger.info({ id: m.id, source: m.source }, `${why}; message goes back to the broker unacknowledged`);
    return { kind: 'release' };
  }
}
