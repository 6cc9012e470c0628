// Delivery to the app over HTTP (undici keep-alive pool). One attempt per
// call; the pipeline owns retries. The status table of DESIGN.md lives in
// classifyStatus and is tested row by row.

import { validateHeaderName, validateHeaderValue } from 'node:http';
import { Pool, errors as undiciErrors } from 'undici';
import type { Message } from '../adapters/broker.ts';

export type StatusClass = 'delivered' | 'unsupported' | 'retry' | 'rejected';

/**
 * 2xx ack · 415 defer · 408, 429, 5xx retry · other 4xx dead-letter at once.
 * 1xx/3xx are not answers an app should give; they are retried (and end in
 * max-attempts) rather than treated as a permanent verdict on the message.
 */
export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 415) return 'unsupported';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  if (status >= 400 && status < 500) return 'rejected';
  return 'retry';
}

export type AttemptResult =
  | { kind: 'delivered'; status: number }
  | { kind: 'unsupported'; status: number }
  | { kind: 'retry'; error: string; retryAfterMs?: number }
  | { kind: 'rejected'; error: string }
  /** The drain deadline cut the attempt short. */
  | { kind: 'aborted' };

export interface DeliveryContext {
  attempt: number;
  source: string;
  redelivered: boolean;
}

/** Headers that belong to the HTTP connection, not to the message; never forwarded. */
const HOP_BY_HOP = new Set([
  'host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect',
  'proxy-authorization', 'proxy-authenticate', 'proxy-connection',
]);

export class AppClient {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly timeoutMs: number;
  /**
   * Attempts in flight, by the drain signal that may cut them short: one
   * listener per drain signal instead of AbortSignal.any + AbortSignal.timeout
   * per attempt, which cost ~15 % of the CPU per message (bench/core.bench.ts)
   * and kept a TURNOUT_DELIVERY_TIMEOUT-long timer alive per attempt until GC.
   */
  private readonly byDrain = new WeakMap<AbortSignal, Set<AbortController>>();

  constructor(options: { url: string; timeoutMs: number; connections: number }) {
    const url = new URL(options.url);
    this.path = `${url.pathname}${url.search}`;
    this.timeoutMs = options.timeoutMs;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      // turnout times attempts itself (TURNOUT_DELIVERY_TIMEOUT, up to hours);
      // undici's own 300 s header/body timeouts would cut long jobs short.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 10_000,
    });
  }

  async post(message: Message, ctx: DeliveryContext, drain: AbortSignal): Promise<AttemptResult> {
    const headers = requestHeaders(message, ctx);
    const unsendable = unsendableHeader(headers);
    if (unsendable !== undefined) return { kind: 'rejected', error: `message cannot be sent over HTTP: ${unsendable}` };

    if (drain.aborted) return { kind: 'aborted' };
    const attempt = new AbortController();
    const untrack = this.track(drain, attempt);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort(new DOMException(`no answer within ${this.timeoutMs} ms`, 'TimeoutError'));
    }, this.timeoutMs);
    timer.unref();
    try {
      const res = await this.pool.request({ path: this.path, method: 'POST', headers, body: message.payload, signal: attempt.signal });
      const cls = classifyStatus(res.statusCode);
      // Read the body so the connection goes back to the pool; keep it only for an error text.
      if (cls === 'delivered') {
        await res.body.dump().catch(() => {});
        return { kind: 'delivered', status: res.statusCode };
      }
      const text = await res.body.text().catch(() => '');
      const detail = `app answered ${res.statusCode}${text ? `: ${text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`;
      switch (cls) {
        case 'unsupported':
          return { kind: 'unsupported', status: res.statusCode };
        case 'rejected':
          return { kind: 'rejected', error: detail };
        case 'retry': {
          const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
          return retryAfterMs === undefined ? { kind: 'retry', error: detail } : { kind: 'retry', error: detail, retryAfterMs };
        }
      }
    } catch (err) {
      if (drain.aborted) return { kind: 'aborted' };
      if (timedOut) return { kind: 'retry', error: `app did not answer within ${this.timeoutMs} ms` };
      if (err instanceof undiciErrors.InvalidArgumentError) {
        // A header the message carries cannot be sent over HTTP: retrying will not help.
        return { kind: 'rejected', error: `message cannot be sent over HTTP: ${err.message}` };
      }
      const e = err as { code?: string; message?: string };
      return { kind: 'retry', error: `cannot reach the app: ${e.code ?? ''} ${e.message ?? String(err)}`.replace(/\s+/g, ' ').trim() };
    } finally {
      clearTimeout(timer);
      untrack();
    }
  }

  private track(drain: AbortSignal, attempt: AbortController): () => void {
    let live = this.byDrain.get(drain);
    if (live === undefined) {
      const set = (live = new Set<AbortController>());
      drain.addEventListener('abort', () => set.forEach((a) => a.abort(drain.reason)), { once: true });
      this.byDrain.set(drain, set);
    }
    const set = live;
    set.add(attempt);
    return () => void set.delete(attempt);
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}

/**
 * Checked here rather than left to undici: in undici 8.12 each request the Pool
 * refuses for a header (InvalidArgumentError) leaks one connection slot, and
 * once `connections` such messages have passed, every later request waits in
 * the pool forever, its abort signal ignored: delivery and drain both hang.
 */
/** Headers turnout itself sets on every delivery; a message's own copies (any case) are replaced. */
const OWN = new Set(['content-type', 'x-turnout-message-id', 'x-turnout-attempt', 'x-turnout-source', 'x-turnout-redelivered', 'x-turnout-key', 'x-turnout-dlq-source']);

/** One pass over the message headers (this runs for every attempt). */
function requestHeaders(message: Message, ctx: DeliveryContext): Record<string, string> {
  const headers: Record<string, string> = {};
  let dlqReason: string | undefined;
  let failedIn: string | undefined;
  for (const k in message.headers) {
    const v = message.headers[k] as string;
    const lower = k.toLowerCase();
    if (lower === 'x-turnout-dlq-reason') dlqReason = v;
    else if (lower === 'x-turnout-source') failedIn = v;
    if (HOP_BY_HOP.has(lower) || OWN.has(lower)) continue;
    headers[k] = v;
  }
  // A dead-lettered copy names where it failed in x-turnout-source; on delivery that
  // header names the queue it is consumed from now, so keep the first as x-turnout-dlq-source.
  if (dlqReason !== undefined && failedIn !== undefined && failedIn !== ctx.source) headers['x-turnout-dlq-source'] = failedIn;
  headers['content-type'] = message.contentType ?? 'application/octet-stream';
  headers['x-turnout-message-id'] = message.id;
  headers['x-turnout-attempt'] = String(ctx.attempt);
  headers['x-turnout-source'] = ctx.source;
  if (ctx.redelivered) headers['x-turnout-redelivered'] = 'true';
  if (message.key !== undefined) headers['x-turnout-key'] = message.key;
  return headers;
}

function unsendableHeader(headers: Record<string, string>): string | undefined {
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
