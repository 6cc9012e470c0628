// Assembles one turnout sidecar from a validated Config: broker, translators,
// router, the pipeline and its destination (the app, or blue/green), HTTP
// server, metrics, the file watchers of reload.ts; and runs its start-up and
// shutdown. Used by `turnout run`,
// by the demo (several in one process, sharing one embedded broker) and by
// in-process tests.

import { Registry } from 'prom-client';
import type { BrokerAdapter } from '../adapters/broker.ts';
import { BrokerError } from '../adapters/broker.ts';
import { createBroker } from '../adapters/index.ts';
import { MemoryBroker } from '../adapters/memory/index.ts';
import { ConfigError } from '../config/errors.ts';
import { expandTarget } from '../lib/targets.ts';
import type { Config } from '../config/schema.ts';
import { AppDestination } from './app-destination.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import type { AppClient } from './delivery.ts';
import { retryPolicyOf } from './destination.ts';
import type { FileWatch } from './file-watch.ts';
import { sidecarInfo } from './fleet/info.ts';
import { HttpServer } from './http/server.ts';
import { StatusReport } from './http/status.ts';
import { scrubber, secretsOf } from '../config/secrets.ts';
import { RecentErrors, tapLogger } from './recent-errors.ts';
import type { Logger } from '../lib/log.ts';
import { Metrics } from './metrics.ts';
import { canConnect } from './net.ts';
import { Pipeline, type DrainResult } from './pipeline.ts';
import { RouteDestination } from './route-destination.ts';
import { loadTranslators, loadWeight, watchTranslators, watchWeight } from './reload.ts';
import { Router } from './router.ts';
import { logEngines, TranslatorSet } from './translators.ts';
import { FastTranslator } from './translate/fast.ts';
import { TranslationPool } from './translate/pool.ts';

export interface TurnoutOptions {
  config: Config;
  logger: Logger;
  /** Use this broker instead of creating one from TURNOUT_BROKER (demo, tests). */
  broker?: BrokerAdapter;
  registry?: Registry;
  /** Default process metrics (off for the extra pipelines of the demo). */
  defaultMetrics?: boolean;
}

export interface ShutdownResult extends DrainResult {
  /** Embedded broker only: messages still held in memory, lost with the process. */
  heldInMemory: number;
}

export class Turnout {
  readonly config: Config;
  readonly logger: Logger;
  readonly broker: BrokerAdapter;
  readonly metrics: Metrics;
  readonly router: Router;
  readonly pipeline: Pipeline;
  private readonly http: HttpServer;
  private readonly app: AppClient | undefined;
  /** Runs translations in worker processes, within TURNOUT_TRANSLATE_TIMEOUT. */
  private readonly translation: TranslationPool;
  /** Runs compiled steps in this thread; hands the rest to `translation`. */
  private readonly fast: FastTranslator;
  private translators: TranslatorSet;
  private readonly watches: FileWatch[] = [];
  /** File contents as loaded at start, the baselines for the reload watchers. */
  private readonly loadedTexts: { translators: string; weight: string };
  private consuming = false;
  private waitingForApp = false;
  private draining = false;
  private stopping: Promise<ShutdownResult> | undefined;
  private readonly startAbort = new AbortController();
  /** Bound HTTP port (useful with TURNOUT_PORT=0). */
  port = 0;

  private constructor(
    options: TurnoutOptions,
    broker: BrokerAdapter,
    loaded: { set: TranslatorSet; text: string },
    { weight, text: weightText }: { weight: number; text: string },
    errors: RecentErrors,
    scrub: (text: string) => string,
    app: AppClient | undefined,
  ) {
    const translators = loaded.set;
    this.loadedTexts = { translators: loaded.text, weight: weightText };
    const { config, logger } = options;
    this.config = config;
    this.logger = logger;
    this.broker = broker;
    this.translators = translators;
    this.metrics = new Metrics(options.registry ?? new Registry(), { brokerUp: () => this.broker.isUp(), inflight: () => this.pipeline.inflight, buffered: () => this.broker.buffered?.() ?? [] }, { defaultMetrics: options.defaultMetrics ?? true });
    this.router = new Router({
      targets: { blue: config.blue, green: config.green },
      routeKey: config.routeKey,
      weight,
      origin: config.weightFile !== undefined ? 'file' : 'env',
      onChange: (w, origin) => {
        this.metrics.greenWeight.set(w);
        logger.info({ greenWeight: w, origin }, 'green weight changed');
      },
      onRouted: (color) => this.metrics.routed.inc({ color }),
    });
    this.metrics.greenWeight.set(weight);
    this.app = app;
    // With an app, consumed messages go to it (TURNOUT_BLUE/GREEN then serve /v1/publish only).
    const retry = retryPolicyOf(config);
    this.translation = new TranslationPool({ timeoutMs: config.translateTimeout, maxBytes: config.maxMessageBytes, logger });
    // Compiled steps run in this thread within a time slice; the rest (and every failure) in the pool.
    this.fast = new FastTranslator(this.translation, { timeoutMs: config.translateTimeout, maxBytes: config.maxMessageBytes, logger });
    this.pipeline = new Pipeline({
      config,
      broker,
      translators: () => this.translators,
      destination: this.app !== undefined
        ? new AppDestination({ app: this.app, retry, metrics: this.metrics, logger })
        : new RouteDestination({ router: this.router, broker, retry }),
      translate: this.fast.translate,
      metrics: this.metrics,
      logger,
    });
    this.http = new HttpServer({
      config,
      broker,
      router: this.router,
      metrics: this.metrics,
      logger,
      readiness: () => this.readiness(),
      info: () => sidecarInfo(this.config, this.translators, this.router.weight),
      status: new StatusReport({
        config,
        broker,
        metrics: this.metrics,
        router: this.router,
        translators: () => this.translators,
        readiness: () => this.readiness(),
        inflight: () => this.pipeline.inflight,
        errors,
        scrub,
      }),
    });
  }

  /**
   * Validates files, opens the HTTP port, connects (retrying while the broker
   * is unavailable) and starts consuming. ConfigError = exit code 2.
   */
  static async start(options: TurnoutOptions): Promise<Turnout> {
    const { config } = options;
    // The status page shows this sidecar's last warnings and errors (the broker's too), scrubbed like its log lines.
    const scrub = scrubber(secretsOf(config));
    const errors = new RecentErrors({ scrub });
    const logger = tapLogger(options.logger, errors);
    // The texts loaded here are the reload baselines: a change made while start-up
    // waits for the broker or the app is then still seen as a change.
    const translators = config.translators !== undefined ? loadTranslators(config.translators) : { set: TranslatorSet.empty, text: '' };
    const weight = config.weightFile !== undefined ? loadWeight(config.weightFile) : { weight: config.greenWeight, text: '' };
    const broker = options.broker ?? (await createBroker({ config, logger }));
    // undici, the app's HTTP client, is loaded only by a sidecar that has an app.
    const app = config.appUrl !== undefined
      ? new (await import('./delivery.ts')).AppClient({ url: config.appUrl, timeoutMs: config.deliveryTimeout, connections: config.concurrency })
      : undefined;
    const turnout = new Turnout({ ...options, logger }, broker, translators, weight, errors, scrub, app);
    turnout.describe();
    logEngines(translators.set, logger);
    turnout.port = await turnout.http.listen(config.port, config.host);
    logger.info({ port: turnout.port, host: config.host }, 'HTTP listening');
    await turnout.connect();
    if (turnout.startAbort.signal.aborted) return turnout;
    turnout.declareForMemory();
    if (config.appUrl !== undefined && config.source !== undefined) await turnout.waitForApp(config.appUrl);
    if (turnout.startAbort.signal.aborted) return turnout;
    try {
      await turnout.pipeline.start();
    } catch (err) {
      await turnout.http.close();
      await turnout.translation.close();
      await broker.close().catch(() => {});
      if (err instanceof BrokerError && (err.code === 'unknown-queue' || err.code === 'forbidden')) {
        throw new ConfigError(`TURNOUT_SOURCE: ${err.message}`, 'TURNOUT_SOURCE');
      }
      throw err;
    }
    turnout.consuming = true;
    turnout.watch();
    logger.info({ sources: config.source ?? [] }, config.source ? 'consuming' : 'no TURNOUT_SOURCE: publish-only');
    return turnout;
  }

  private async connect(): Promise<void> {
    for (let attempt = 1; !this.startAbort.signal.aborted; attempt++) {
      try {
        await this.broker.connect();
        this.logger.info({ broker: this.broker.kind }, 'connected to the broker');
        return;
      } catch (err) {
        if (err instanceof BrokerError && err.code !== 'unavailable') {
          await this.http.close();
          throw new ConfigError(`TURNOUT_BROKER: ${err.message}`, 'TURNOUT_BROKER');
        }
        const wait = backoffDelay(Math.min(attempt, 8), 500);
        this.logger.warn({ err, attempt, retryInMs: wait }, 'cannot connect to the broker yet; /readyz stays 503');
        await sleep(wait, this.startAbort.signal);
      }
    }
  }

  /**
   * As a native sidecar, turnout starts before the app: consuming then would
   * spend messages' attempts on an app that is not listening yet. Wait until
   * it accepts TCP connections (/readyz says "waiting for the app" meanwhile).
   */
  private async waitForApp(appUrl: string): Promise<void> {
    const url = new URL(appUrl);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.waitingForApp = true;
    let logged = 0;
    for (let attempt = 1; !this.startAbort.signal.aborted; attempt++) {
      if (await canConnect(host, port, 2000)) break;
      if (Date.now() - logged > 10_000) {
        logged = Date.now();
        this.logger.info({ app: appUrl }, 'waiting for the app to accept connections before consuming');
      }
      await sleep(Math.min(1000, 50 * attempt), this.startAbort.signal);
    }
    this.waitingForApp = false;
  }

  /** The embedded broker starts empty: create every queue this configuration names. */
  private declareForMemory(): void {
    if (!(this.broker instanceof MemoryBroker)) return;
    const config = this.config;
    const sources = config.source ?? [];
    const names = new Set<string>(sources);
    for (const template of [config.blue, config.green, config.dlq]) {
      if (template === undefined) continue;
      if (template.includes('{source}')) for (const s of sources) names.add(expandTarget(template, s));
      else names.add(template);
    }
    for (const n of names) this.broker.declare(n);
  }

  private describe(): void {
    const config = this.config;
    const role = config.source === undefined ? 'publish-only' : config.appUrl !== undefined ? 'consumer' : 'router';
    this.logger.info({
      role,
      broker: this.broker.kind,
      sources: config.source ?? [],
      app: config.appUrl,
      blue: config.blue,
      green: config.green,
      greenWeight: this.router.weight,
      accept: config.accept ?? 'all',
      translatorSteps: this.translators.stepLabels(),
    }, 'turnout starting');
    if (config.source !== undefined && config.dlq === undefined) {
      this.logger.warn("no TURNOUT_DLQ: failed messages go to the broker's own dead-letter mechanism (AMQP: reject without requeue, so the queue's dead-letter exchange applies; SQS: the queue's redrive policy)");
    }
    if (config.appUrl !== undefined && this.router.enabled) {
      this.logger.info('TURNOUT_APP_URL and TURNOUT_BLUE/GREEN are both set: consumed messages go to the app; /v1/publish routes to blue/green');
    }
    if ((config.blue === undefined) !== (config.green === undefined)) {
      this.logger.info('only one route target is set: everything routed goes there and TURNOUT_GREEN_WEIGHT has no effect');
    }
  }

  private watch(): void {
    const { translators, weightFile } = this.config;
    if (translators !== undefined) {
      this.watches.push(watchTranslators(translators, this.loadedTexts.translators, (set) => (this.translators = set), { logger: this.logger, metrics: this.metrics }));
    }
    if (weightFile !== undefined) this.watches.push(watchWeight(weightFile, this.loadedTexts.weight, this.router, this.logger));
  }

  /** Starts the translation workers now instead of on the first translated message (see TranslationPool.warm). */
  warmTranslation(): Promise<void> {
    return this.translation.warm();
  }

  /** Messages translated entirely in this thread, handed to the pool after a compiled attempt, and worker processes started (for benchmarks and diagnostics). */
  translationStats(): { compiled: number; handedOver: number; overruns: number; workers: number } {
    return { ...this.fast.stats, workers: this.translation.workers };
  }

  readiness(): { ready: boolean; reason?: string } {
    if (this.draining) return { ready: false, reason: 'draining' };
    if (!this.broker.isUp()) return { ready: false, reason: this.broker.downReason?.() ?? 'broker not connected' };
    if (this.waitingForApp) return { ready: false, reason: 'waiting for the app' };
    if (!this.consuming) return { ready: false, reason: 'starting' };
    return { ready: true };
  }

  /**
   * Graceful shutdown: not ready, stop taking messages, finish in-flight
   * work until TURNOUT_DRAIN_TIMEOUT, release the rest, close. Safe to call
   * more than once: later calls get the same result.
   */
  shutdown(): Promise<ShutdownResult> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<ShutdownResult> {
    this.draining = true;
    this.http.drain();
    this.startAbort.abort();
    this.metrics.draining.set(1);
    this.logger.info({ inflight: this.pipeline.inflight, drainTimeoutMs: this.config.drainTimeout }, 'draining');
    for (const w of this.watches) w.stop();
    const result = await this.pipeline.drain(this.config.drainTimeout);
    if (result.clean) this.logger.info('drained: every in-flight message finished');
    else this.logger.warn({ released: result.released }, 'drain deadline passed: unfinished messages went back to the broker unacknowledged');
    await this.app?.close();
    await this.translation.close();
    const heldInMemory = this.broker instanceof MemoryBroker ? this.broker.held() : 0;
    await this.broker.close().catch((err: unknown) => this.logger.warn({ err }, 'closing the broker connection failed'));
    if (heldInMemory > 0) this.logger.warn({ heldInMemory }, 'the embedded broker still held messages; they end with this process');
    await this.http.close();
    this.metrics.stop();
    return { ...result, heldInMemory };
  }

  /** The translator set in use now. */
  get currentTranslators(): TranslatorSet {
    return this.translators;
  }
}
