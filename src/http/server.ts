// The HTTP surface: health, readiness, metrics, publish, queue depth and the
// routing admin API. Plain node:http; every answer is JSON except /metrics.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isBrokerError, type BrokerAdapter, type BrokerErrorCode } from '../../adapters/broker.ts';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { publish, PublishRefused } from '../publish.ts';
import type { Router } from '../router.ts';
import { bearerMatches, PublishAccess } from './access.ts';
import { BodyTooLarge, readBody } from './body.ts';
import { limitServer, limitsOf, serverOptions, type ConnectionCap } from './limits.ts';

export interface HttpDeps {
  config: Config;
  broker: BrokerAdapter;
  router: Router;
  metrics: Metrics;
  logger: Logger;
  /** Ready = connected, consuming and not draining. */
  readiness: () => { ready: boolean; reason?: string };
}

const BROKER_STATUS: Record<BrokerErrorCode, number> = {
  unavailable: 503,
  'unknown-queue': 404,
  'too-large': 413,
  invalid: 400,
  forbidden: 503,
};

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
  private readonly d: HttpDeps;
  private readonly access: PublishAccess;
  private readonly cap: ConnectionCap;

  constructor(deps: HttpDeps) {
    this.d = deps;
    this.access = new PublishAccess({ token: deps.config.publishToken, queues: deps.config.publishQueues });
    const limits = limitsOf(deps.config);
    this.server = createServer(serverOptions(limits), (req, res) => {
      if (this.cap.refuse(req, res)) return;
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
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
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

    if (path === '/healthz') {
      if (only('GET')) send(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      if (!only('GET')) return;
      const r = this.d.readiness();
      send(res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
      return;
    }
    if (path === '/metrics') {
      if (!only('GET')) return;
      const text = await this.d.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.d.metrics.registry.contentType });
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
        const d = await this.d.broker.depth(queue);
        send(res, 200, { queue: d.queue, depth: d.depth, inflight: d.inflight });
      } catch (err) {
        this.brokerFailure(res, err, `queue "${queue}"`);
      }
      return;
    }
    if (path === '/v1/routes') {
      if (!only('GET')) return;
      const r = this.d.router;
      send(res, 200, {
        greenWeight: r.weight,
        weightSource: r.weightOrigin,
        blue: r.targets.blue ?? null,
        green: r.targets.green ?? null,
        routeKey: this.d.config.routeKey,
        counts: { ...r.counts },
      });
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
      payload = await readBody(req, this.d.config.maxMessageBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        fail(res, 413, err.message, { connection: 'close' });
        req.resume();
        return;
      }
      return fail(res, 400, `could not read the request body: ${(err as Error).message}`);
    }
    try {
      const r = await publish({ payload, headers: req.headers, queue }, this.d);
      send(res, 202, { id: r.id, queue: r.queue });
    } catch (err) {
      if (err instanceof PublishRefused) return fail(res, err.status, err.message);
      this.brokerFailure(res, err, queue !== undefined ? `queue "${queue}"` : 'publish');
    }
  }

  private brokerFailure(res: ServerResponse, err: unknown, what: string): void {
    if (isBrokerError(err)) {
      const status = BROKER_STATUS[err.code];
      if (status >= 500) this.d.logger.warn({ err }, `${what}: broker unavailable`);
      return fail(res, status, err.message, status === 503 ? { 'retry-after': '1' } : {});
    }
    this.d.logger.error({ err }, `${what}: unexpected broker error`);
    fail(res, 503, `broker error: ${(err as Error).message}`, { 'retry-after': '1' });
  }

  private async setWeight(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = this.d.config.adminToken;
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
    if (typeof weight !== 'number' || !(weight >= 0 && weight <= 100)) {
      return fail(res, 400, 'body must be JSON: {"weight": n} with n from 0 to 100');
    }
    const previous = this.d.router.weight;
    this.d.router.setWeight(weight, 'admin');
    send(res, 200, { greenWeight: weight, previous });
  }
}
