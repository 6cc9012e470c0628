// Assembles one turnout sidecar from a validated Config: broker, translators,
// router, app client, pipeline, HTTP server, metrics. Used by `turnout run`,
// by the demo (several in one process, sharing one embedded broker) and by
// in-process tests.

import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import type { BrokerAdapter } from '../adapters/broker.ts';
import { BrokerError } from '../adapters/broker.ts';
import { createBroker } from '../adapters/index.ts';
import { MemoryBroker } from '../adapters/memory.ts';
import { ConfigError } from '../config/errors.ts';
import { expandTarget } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { AppClient } from './delivery.ts';
import { watchFileContent, type FileWatch } from './file-watch.ts';
import { HttpServer } from './http/server.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { canConnect } from './net.ts';
import { Pipeline, type DrainResult } from './pipeline.ts';
import { parseWeight, Router } from './router.ts';
import { TranslationPool } from './translate/pool.ts';
import { parseTranslators, readTranslatorsFile, TranslatorFileError, TranslatorSet } from './translators.ts';

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
  ) {
    const translators = loaded.set;
    this.loadedTexts = { translators: loaded.text, weight: weightText };
    const { config, logger } = options;
    this.config = config;
    this.logger = logger;
    this.broker = broker;
    this.translators = translators;
    this.metrics = new Metrics(options.registry ?? new Registry(), { brokerUp: () => this.broker.isUp(), inflight: () => this.pipeline.inflight }, { defaultMetrics: options.defaultMetrics ?? true });
    this.router = new Router({
      targets: { blue: config.blue, green: config.green },
      routeKey: config.routeKey,
      weight,
      onChange: (w, origin) => {
        this.metrics.greenWeight.set(w);
        logger.info({ greenWeight: w, origin }, 'green weight changed');
      },
      onRouted: (color) => this.metrics.routed.inc({ color }),
    });
    this.metrics.greenWeight.set(weight);
    this.app = config.appUrl !== undefined
      ? new AppClient({ url: config.appUrl, timeoutMs: config.deliveryTimeout, connections: config.concurrency })
      : undefined;
    this.translation = new TranslationPool({ timeoutMs: config.translateTimeout, maxBytes: config.maxMessageBytes, logger });
    this.pipeline = new Pipeline({
      config,
      broker,
      translators: () => this.translators,
      translate: (chain, payload) => this.translation.translate(chain, payload),
      app: this.app,
      router: this.router.enabled ? this.router : undefined,
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
    });
  }

  /**
   * Validates files, opens the HTTP port, connects (retrying while the broker
   * is unavailable) and starts consuming. ConfigError = exit code 2.
   */
  static async start(options: TurnoutOptions): Promise<Turnout> {
    const { config, logger } = options;
    // The texts loaded here are the reload baselines: a change made while start-up
    // waits for the broker or the app is then still seen as a change.
    const translators = config.translators !== undefined ? loadTranslatorsOrThrow(config.translators) : { set: TranslatorSet.empty, text: '' };
    const weight = config.weightFile !== undefined ? readWeightOrThrow(config.weightFile) : { weight: config.greenWeight, text: '' };
    const broker = options.broker ?? (await createBroker({ config, logger }));
    const t = new Turnout(options, broker, translators, weight);
    t.describe();
    t.port = await t.http.listen(config.port, config.host);
    logger.info({ port: t.port, host: config.host }, 'HTTP listening');
    await t.connect();
    if (t.startAbort.signal.aborted) return t;
    t.declareForMemory();
    if (config.appUrl !== undefined && config.source !== undefined) await t.waitForApp(config.appUrl);
    if (t.startAbort.signal.aborted) return t;
    try {
      await t.pipeline.start();
    } catch (err) {
      await t.http.close();
      await t.translation.close();
      await broker.close().catch(() => {});
      if (err instanceof BrokerError && (err.code === 'unknown-queue' || err.code === 'forbidden')) {
        throw new ConfigError(`TURNOUT_SOURCE: ${err.message}`, 'TURNOUT_SOURCE');
      }
      throw err;
    }
    t.consuming = true;
    t.watch();
    logger.info({ sources: config.source ?? [] }, config.source ? 'consuming' : 'no TURNOUT_SOURCE: publish-only');
    return t;
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
    const c = this.config;
    const sources = c.source ?? [];
    const names = new Set<string>(sources);
    for (const template of [c.blue, c.green, c.dlq]) {
      if (template === undefined) continue;
      if (template.includes('{source}')) for (const s of sources) names.add(expandTarget(template, s));
      else names.add(template);
    }
    for (const n of names) this.broker.declare(n);
  }

  private describe(): void {
    const c = this.config;
    const role = c.source === undefined ? 'publish-only' : c.appUrl !== undefined ? 'consumer' : 'router';
    this.logger.info({
      role,
      broker: this.broker.kind,
      sources: c.source ?? [],
      app: c.appUrl,
      blue: c.blue,
      green: c.green,
      greenWeight: this.router.weight,
      accept: c.accept ?? 'all',
      translatorSteps: this.translators.steps.map((s) => `${s.from}->${s.to}`),
    }, 'turnout starting');
    if (c.source !== undefined && c.dlq === undefined) {
      this.logger.warn("no TURNOUT_DLQ: failed messages go to the broker's own dead-letter mechanism (AMQP: reject without requeue, so the queue's dead-letter exchange applies; SQS: the queue's redrive policy)");
    }
    if (c.appUrl !== undefined && this.router.enabled) {
      this.logger.info('TURNOUT_APP_URL and TURNOUT_BLUE/GREEN are both set: consumed messages go to the app; /v1/publish routes to blue/green');
    }
    if ((c.blue === undefined) !== (c.green === undefined)) {
      this.logger.info('only one route target is set: everything routed goes there and TURNOUT_GREEN_WEIGHT has no effect');
    }
  }

  private watch(): void {
    const c = this.config;
    if (c.translators !== undefined) {
      const file = c.translators;
      this.watches.push(watchFileContent(file, this.loadedTexts.translators, (text) => {
        try {
          this.translators = parseTranslators(text, file);
          this.logger.info({ steps: this.translators.steps.map((s) => `${s.from}->${s.to}`) }, 'translators reloaded');
        } catch (err) {
          this.metrics.reloadFailures.inc();
          this.logger.error({ err: (err as Error).message }, 'translators file is invalid; the previous set stays active');
        }
      }, (err) => this.logger.warn({ err: String(err) }, 'cannot read the translators file; the previous set stays active')));
    }
    if (c.weightFile !== undefined) {
      const file = c.weightFile;
      this.watches.push(watchFileContent(file, this.loadedTexts.weight, (text) => {
        try {
          this.router.setWeight(parseWeight(text), 'file');
        } catch (err) {
          this.logger.error({ err: (err as Error).message, file }, 'weight file is invalid; the weight stays as it was');
        }
      }, (err) => this.logger.warn({ err: String(err) }, 'cannot read the weight file; the weight stays as it was')));
    }
  }

  readiness(): { ready: boolean; reason?: string } {
    if (this.draining) return { ready: false, reason: 'draining' };
    if (!this.broker.isUp()) return { ready: false, reason: 'broker not connected' };
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
    return { ...result, heldInMemory };
  }

  /** The translator set in use now. */
  get currentTranslators(): TranslatorSet {
    return this.translators;
  }
}

function loadTranslatorsOrThrow(file: string): { set: TranslatorSet; text: string } {
  try {
    return readTranslatorsFile(file);
  } catch (err) {
    if (err instanceof TranslatorFileError) throw new ConfigError(`TURNOUT_TRANSLATORS: ${err.message}`, 'TURNOUT_TRANSLATORS');
    throw err;
  }
}

function readWeightOrThrow(file: string): { weight: number; text: string } {
  try {
    const text = readFileSync(file, 'utf8');
    return { weight: parseWeight(text), text };
  } catch (err) {
    throw new ConfigError(`TURNOUT_WEIGHT_FILE: ${file}: ${(err as Error).message}`, 'TURNOUT_WEIGHT_FILE');
  }
}

