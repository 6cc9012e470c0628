// The HTTP surface: health, readiness, metrics, publish, queue depth and the
// routing admin API. Plain node:http; every answer is JSON except /metrics.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBrokerError, type BrokerAdapter, type BrokerErrorCode } from '../../adapters/broker.ts';
import { isPercent } from '../../config/percent.ts';
import type { Config } from '../../config/schema.ts';
import type { SidecarInfo } from '../fleet/info.ts';
import type { Logger } from '../../lib/log.ts';
import type { Metrics } from '../metrics.ts';
import { publish, PublishRefused } from '../publish.ts';
import type { Router } from '../router.ts';
import { bearerMatches, PublishAccess } from './access.ts';
import { BodyTooLarge, readBody } from './body.ts';
import { limitServer, limitsOf, serverOptions, type ConnectionCap } from './limits.ts';
import { listen } from './listen.ts';
import { sendPage } from './page/document.ts';
import { sidecarPage } from './page/sidecar.ts';
import type { StatusReport } from './status.ts';

export interface HttpDeps {
  config: Config;
  broker: BrokerAdapter;
  router: Router;
  metrics: Metrics;
  logger: Logger;
  /** Ready = connected, consuming and not draining. */
  readiness: () => { ready: boolean; reason?: string };
  /** GET /v1/info (src/fleet/info.ts). */
  info?: () => SidecarInfo;
  /** GET /v1/status and the page at GET / (src/http/status.ts). */
  status?: StatusReport;
}

const BROKER_STATUS: Record<BrokerErrorCode, number> = {
  unavailable: 503,
  'unknown-queue': 404,
  'too-large': 413,
  invalid: 400,
  forbidden: 503,
};

/**
 * close() waits for this long without a request before it stops the server
 * (a client in a CPU-throttled container can stall for a CFS period, 100 ms)...
 */
const CLOSE_QUIET_MS = 100;
/** ...but no longer than this. */
const CLOSE_GRACE_MS = 1_000;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const fail = (res: ServerResponse, status: number, error: string, headers?: Record<string, string>): void => send(res, status, { error }, headers);

function decodeSegment(s: string): string | undefined {
  try {
    const v = decodeURIComponent(s);
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

export class HttpServer {
  private readonly server: Server;
  private readonly deps: HttpDeps;
  private readonly access: PublishAccess;
  private readonly cap: ConnectionCap;
  private draining = false;
  /** performance.now() of the last request: close() waits for a quiet moment. */
  private lastRequestAt = -Infinity;

  constructor(deps: HttpDeps) {
    this.deps = deps;
    this.access = new PublishAccess({ token: deps.config.publishToken, queues: deps.config.publishQueues });
    const limits = limitsOf(deps.config);
    this.server = createServer(serverOptions(limits), (req, res) => {
      this.lastRequestAt = performance.now();
      if (this.cap.refuse(req, res)) return;
      // While draining, each connection ends with its answer (as Envoy drains HTTP/1.1): a
      // client opens a new one for its next request, which close() then refuses outright,
      // instead of sending it on a kept-alive connection that close() resets unanswered.
      if (this.draining) res.setHeader('connection', 'close');
      this.dispatch(req, res).catch((err: unknown) => {
        deps.logger.error({ err, url: req.url }, 'HTTP handler failed');
        if (!res.headersSent) fail(res, 500, 'internal error');
        else res.destroy();
      });
    });
    // Long-lived keep-alive clients (the app's publisher) should not see resets mid-request.
    this.server.keepAliveTimeout = 65_000;
    this.cap = limitServer(this.server, limits, deps.logger);
  }

  listen(port: number, host: string): Promise<number> {
    return listen(this.server, port, host);
  }

  /** From now on every answer closes its connection (see the request handler). */
  drain(): void {
    this.draining = true;
  }

  /**
   * Waits for a quiet moment (no request for CLOSE_QUIET_MS, at most
   * CLOSE_GRACE_MS), then stops listening and ends the connections.
   * server.close() ends idle connections at once, and a connection whose
   * request is not read yet looks idle: that request is reset unanswered, and
   * its client cannot tell whether the message was taken. Answered in the
   * wait instead, a publish gets 503 (the broker is closed by then) with
   * retry-after and connection: close, and its client backs off.
   */
  async close(): Promise<void> {
    const started = performance.now();
    while (performance.now() - this.lastRequestAt < CLOSE_QUIET_MS && performance.now() - started < CLOSE_GRACE_MS) await sleep(CLOSE_QUIET_MS);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://turnout');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const only = (m: string): boolean => {
      if (method === m) return true;
      fail(res, 405, `${path} takes ${m}`, { allow: m });
      return false;
    };

    if (path === '/') {
      // The status page: read-only, it only reads GET /v1/status.
      if (only('GET')) sendPage(res, sidecarPage);
      return;
    }
    if (path === '/v1/status') {
      if (!only('GET')) return;
      const { status } = this.deps;
      if (status === undefined) return fail(res, 404, 'no status here');
      send(res, 200, await status.snapshot());
      return;
    }
    if (path === '/healthz') {
      if (only('GET')) send(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      if (!only('GET')) return;
      const readiness = this.deps.readiness();
      send(res, readiness.ready ? 200 : 503, readiness.ready ? { status: 'ready' } : { status: 'not ready', reason: readiness.reason });
      return;
    }
    if (path === '/metrics') {
      if (!only('GET')) return;
      const text = await this.deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.deps.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (path === '/v1/publish' || path.startsWith('/v1/publish/')) {
      if (!only('POST')) return;
      let queue: string | undefined;
      if (path !== '/v1/publish') {
        queue = decodeSegment(path.slice('/v1/publish/'.length));
        if (queue === undefined) return fail(res, 400, 'bad queue name in the path');
      }
      return this.publish(req, res, queue);
    }
    if (path.startsWith('/v1/queues/')) {
      if (!only('GET')) return;
      const queue = decodeSegment(path.slice('/v1/queues/'.length));
      if (queue === undefined) return fail(res, 400, 'bad queue name in the path');
      try {
        const depth = await this.deps.broker.depth(queue);
        send(res, 200, { queue: depth.queue, depth: depth.depth, inflight: depth.inflight });
      } catch (err) {
        this.brokerFailure(res, err, `queue "${queue}"`);
      }
      return;
    }
    if (path === '/v1/routes') {
      if (!only('GET')) return;
      const { router } = this.deps;
      send(res, 200, {
        greenWeight: router.weight,
        weightSource: router.weightOrigin,
        blue: router.targets.blue ?? null,
        green: router.targets.green ?? null,
        routeKey: this.deps.config.routeKey,
        counts: { ...router.counts },
      });
      return;
    }
    if (path === '/v1/info') {
      if (!only('GET')) return;
      const { info } = this.deps;
      if (info === undefined) return fail(res, 404, 'no sidecar information here');
      send(res, 200, info());
      return;
    }
    if (path === '/v1/routes/green-weight') {
      if (!only('PUT')) return;
      return this.setWeight(req, res);
    }
    fail(res, 404, `no such endpoint: ${method} ${path}`);
  }

  private async publish(req: IncomingMessage, res: ServerResponse, queue: string | undefined): Promise<void> {
    // Publishes stay open while draining: an app finishing its last job may publish
    // its results through its sidecar. Once the broker is closed, they answer 503.
    const refused = this.access.refusal(req.socket.remoteAddress, req.headers.authorization, queue);
    if (refused !== undefined) {
      // The body of a peer that may not publish is not worth reading to its end.
      fail(res, 403, refused, { connection: 'close' });
      req.resume();
      return;
    }
    let payload: Buffer;
    try {
      payload = await readBody(req, this.deps.config.maxMessageBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        fail(res, 413, err.message, { connection: 'close' });
        req.resume();
        return;
      }
      return fail(res, 400, `could not read the request body: ${(err as Error).message}`);
    }
    try {
      const published = await publish({ payload, headers: headerLines(req), queue }, this.deps);
      send(res, 202, { id: published.id, queue: published.queue });
    } catch (err) {
      if (err instanceof PublishRefused) return fail(res, err.status, err.message);
      this.brokerFailure(res, err, queue !== undefined ? `queue "${queue}"` : 'publish');
    }
  }

  private brokerFailure(res: ServerResponse, err: unknown, what: string): void {
    if (isBrokerError(err) && err.unconfirmed) {
      // Not a 503: that says the message was not taken, and is retried freely.
      this.deps.logger.warn({ err }, `${what}: no answer from the broker; it may have the message`);
      return fail(res, 504, `${err.message}; the broker may have the message: sending it again may make a duplicate (x-turnout-message-id tells the copies apart)`, { 'retry-after': '1' });
    }
    if (isBrokerError(err)) {
      const status = BROKER_STATUS[err.code];
      if (status >= 500) this.deps.logger.warn({ err }, `${what}: broker unavailable`);
      return fail(res, status, err.message, status === 503 ? { 'retry-after': '1' } : {});
    }
    this.deps.logger.error({ err }, `${what}: unexpected broker error`);
    fail(res, 503, `broker error: ${(err as Error).message}`, { 'retry-after': '1' });
  }

  private async setWeight(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = this.deps.config.adminToken;
    if (token === undefined) return fail(res, 403, 'admin writes are disabled: set TURNOUT_ADMIN_TOKEN to enable them');
    if (!bearerMatches(req.headers.authorization, token)) {
      return fail(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="turnout"' });
    }
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, 4096)).toString('utf8'));
    } catch {
      return fail(res, 400, 'body must be JSON: {"weight": n} with n from 0 to 100');
    }
    const weight = (body as { weight?: unknown } | null)?.weight;
    if (typeof weight !== 'number' || !isPercent(weight)) {
      return fail(res, 400, 'body must be JSON: {"weight": n} with n from 0 to 100');
    }
    const previous = this.deps.router.weight;
    this.deps.router.setWeight(weight, 'admin');
    send(res, 200, { greenWeight: weight, previous });
  }
}

/**
 * req.headers, except that a header node joined from several lines (", ")
 * comes as those lines, so that each is decoded on its own (one may be UTF-8,
 * another Latin-1). Headers node keeps only once (content-type, …) stay as it
 * kept them.
 */
function headerLines(req: IncomingMessage): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = { ...req.headers };
  const distinct = req.headersDistinct;
  for (const [name, value] of Object.entries(req.headers)) {
    const lines = distinct[name];
    if (typeof value === 'string' && lines !== undefined && lines.length > 1 && value === lines.join(', ')) out[name] = lines;
  }
  return out;
}
