// The controller's HTTP API: GET /v1/rollout (the status), POST
// /v1/rollout/pause|resume|promote|abort (admin token, 401/403 as for the
// routers), /healthz and /metrics, and the status page at GET /. The same
// HTTP limits as the sidecar's (src/http/limits.ts, TURNOUT_HTTP_*): the
// controller is reachable from the cluster too.

import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../../lib/log.ts';
import type { Command } from './controller.ts';
import type { Status } from './status.ts';
import { listen } from '../http/listen.ts';
import { limitServer, serverOptions, type ConnectionCap, type HttpLimits } from '../http/limits.ts';
import { sendPage } from '../http/page/document.ts';
import { controllerPage } from '../http/page/controller.ts';

export interface RolloutHttpDeps {
  status: () => Status;
  command: (cmd: Command) => { status: number; message: string };
  registry: Registry;
  adminToken: string | undefined;
  logger: Logger;
  limits: HttpLimits;
}

const COMMANDS: readonly string[] = ['pause', 'resume', 'promote', 'abort'];

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export class RolloutHttp {
  private readonly server: Server;
  private readonly d: RolloutHttpDeps;
  private readonly cap: ConnectionCap;

  constructor(deps: RolloutHttpDeps) {
    this.d = deps;
    this.server = createServer(serverOptions(deps.limits), (req, res) => {
      if (this.cap.refuse(req, res)) return;
      this.dispatch(req, res).catch((err: unknown) => {
        deps.logger.error({ err, url: req.url }, 'HTTP handler failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.cap = limitServer(this.server, deps.limits, deps.logger);
  }

  listen(port: number, host: string): Promise<number> {
    return listen(this.server, port, host);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://turnout').pathname;
    const method = req.method ?? 'GET';
    const only = (m: string): boolean => {
      if (method === m) return true;
      send(res, 405, { error: `${path} takes ${m}` }, { allow: m });
      return false;
    };
    if (path === '/') {
      // The status page: read-only; its buttons call the commands below with the token typed into it.
      if (only('GET')) sendPage(res, controllerPage);
      return;
    }
    if (path === '/healthz') {
      if (only('GET')) send(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/metrics') {
      if (!only('GET')) return;
      const text = await this.d.registry.metrics();
      res.writeHead(200, { 'content-type': this.d.registry.contentType });
      res.end(text);
      return;
    }
    if (path === '/v1/rollout') {
      if (only('GET')) send(res, 200, this.d.status());
      return;
    }
    const m = /^\/v1\/rollout\/([a-z]+)$/.exec(path);
    if (m && COMMANDS.includes(m[1] as string)) {
      if (!only('POST')) return;
      req.resume(); // the body, if any, carries nothing
      const denied = this.authorize(req);
      if (denied) return send(res, denied.status, { error: denied.error }, denied.status === 401 ? { 'www-authenticate': 'Bearer realm="turnout"' } : {});
      const r = this.d.command(m[1] as Command);
      this.d.logger.info({ event: 'command', command: m[1], status: r.status }, `command ${m[1]}: ${r.message}`);
      return send(res, r.status, { result: r.message, phase: this.d.status().phase });
    }
    send(res, 404, { error: `no such endpoint: ${method} ${path}` });
  }

  private authorize(req: IncomingMessage): { status: number; error: string } | undefined {
    const token = this.d.adminToken;
    if (token === undefined) return { status: 403, error: 'admin writes are disabled: set TURNOUT_ADMIN_TOKEN to enable them' };
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { status: 401, error: 'missing or wrong bearer token' };
    return undefined;
  }
}
