// What one HTTP client may cost the sidecar: how long it may take to send a
// request, how large its headers may be, and how many connections are served
// at once. A client past a limit gets its status (408, 431, 503) and is
// disconnected; everyone else, the kubelet's probes included, is unaffected.

import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../log.ts';

export interface HttpLimits {
  /** ms to send the request line and headers (slow-loris bound) → 408. */
  headersTimeoutMs: number;
  /** ms to send the whole request, body included → 408. Answering does not count. */
  requestTimeoutMs: number;
  /** header lines per request → 431 above. */
  maxHeaders: number;
  /** bytes of request line plus headers → 431 above. */
  maxHeaderBytes: number;
  /** connections served at once → 503 above (probes excepted). */
  maxConnections: number;
}

export const limitsOf = (c: Config): HttpLimits => ({
  headersTimeoutMs: c.httpHeadersTimeout,
  requestTimeoutMs: c.httpRequestTimeout,
  maxHeaders: c.httpMaxHeaders,
  maxHeaderBytes: c.httpMaxHeaderBytes,
  maxConnections: c.httpMaxConnections,
});

/**
 * Connections accepted past the cap only to be told 503 (or to have a probe
 * answered). Each lives until its first answer or the headers timeout; past
 * cap + this, node closes new connections at once, so a flood holds a bounded
 * number of file descriptors.
 */
export const SHED_RESERVE = 64;

/**
 * node:http's own enforcement: llhttp answers 431 for too many or too large
 * headers, and the timeouts answer 408 and close. The timeouts are checked
 * every connectionsCheckingInterval (node's default, 30 s, would let a slow
 * client overstay by that much): a tenth of the headers timeout, within
 * 50 ms–1 s; the check walks the open connections, which the cap bounds.
 */
export function serverOptions(l: HttpLimits): ServerOptions {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    maxHeaderSize: l.maxHeaderBytes,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(l.headersTimeoutMs / 10))),
  };
}

/**
 * Applies what createServer cannot take: the header count (node answers 431
 * past server.maxHeadersCount) and the connection cap.
 */
export function limitServer(server: Server, l: HttpLimits, logger: Logger): ConnectionCap {
  server.maxHeadersCount = l.maxHeaders;
  return new ConnectionCap(server, l.maxConnections, logger);
}

/** Probes are answered even past the cap: a flood must not get a healthy pod restarted. */
const PROBES = new Set(['/healthz', '/readyz']);

/**
 * Counts open connections and marks the ones accepted past the cap. Their
 * requests get 503 (GET /healthz and /readyz are still answered) and the
 * connection is closed after the answer; connections opened before the cap
 * was reached keep being served.
 */
export class ConnectionCap {
  private open = 0;
  private readonly shed = new WeakSet<Socket>();
  private lastWarned = 0;
  private readonly max: number;
  private readonly logger: Logger;

  constructor(server: Server, max: number, logger: Logger) {
    this.max = max;
    this.logger = logger;
    server.maxConnections = max + SHED_RESERVE;
    server.on('connection', (socket: Socket) => {
      if (this.open >= this.max) {
        this.shed.add(socket);
        this.warn();
      }
      this.open++;
      socket.once('close', () => this.open--);
    });
  }

  /**
   * Answers a request on a connection past the cap and returns true, or
   * returns false when the request is to be served normally. A probe is
   * served normally but its connection is closed afterwards.
   */
  refuse(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.shed.has(req.socket)) return false;
    res.setHeader('connection', 'close');
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && PROBES.has(path)) return false;
    const text = JSON.stringify({ error: `too many open connections (TURNOUT_HTTP_MAX_CONNECTIONS=${this.max}); retry shortly` });
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'retry-after': '1' });
    res.end(text);
    return true;
  }

  /** Once a minute at most: a flood must not flood the log too. */
  private warn(): void {
    const now = Date.now();
    if (now - this.lastWarned < 60_000) return;
    this.lastWarned = now;
    this.logger.warn({ maxConnections: this.max }, 'HTTP connection cap reached: new connections get 503 (probes are still answered) until some close');
  }
}
