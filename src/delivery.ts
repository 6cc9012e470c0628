// Delivery to the app over HTTP (undici keep-alive pool). One attempt per
// call; app-destination.ts owns retries. The status table of docs/reference.md
// lives in classifyStatus and is tested row by row.

import { validateHeaderName, validateHeaderValue } from 'node:http';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { Message } from '../adapters/broker.ts';
import { toWire } from '../lib/headers.ts';

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
   * The drain signals listened to: one listener per signal rather than one
   * per attempt. On abort it ends the attempts in flight that carry that
   * signal, found in the deadline list, which holds every attempt in flight.
   * (A Set of attempts per signal, as before, made each request's objects
   * survive scavenges: its replaced hash tables, garbage in the old
   * generation, still pointed at the attempts of their time. Core bench
   * turnout-pass: promoted 35 -> 11 MB per 43 000 messages.)
   */
  private readonly listened = new WeakSet<AbortSignal>();
  private readonly deadlines: Deadlines;

  constructor(options: { url: string; timeoutMs: number; connections: number }) {
    const url = new URL(options.url);
    this.path = `${url.pathname}${url.search}`;
    this.timeoutMs = options.timeoutMs;
    this.deadlines = new Deadlines(options.timeoutMs);
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

    this.listen(drain);
    return new Promise<AttemptResult>((resolve) => {
      const attempt = new Attempt(resolve, this.timeoutMs, this.deadlines, drain);
      // dispatch() rather than request(): no response stream, no AbortSignal per
      // attempt; the handler reads the status and drops a 2xx body as it arrives.
      // CPU per delivery in bench/core.bench.ts: 78-82 us with request(), 56-57 us.
      // undici calls dispatch() its less stable API (it may change in a major):
      // test/unit/delivery.test.ts covers every row, timeout, drain and the pool queue.
      try {
        this.pool.dispatch({ path: this.path, method: 'POST', headers, body: message.payload }, attempt);
      } catch (err) {
        attempt.onResponseError(null, err as Error);
      }
    });
  }

  private listen(drain: AbortSignal): void {
    if (this.listened.has(drain)) return;
    this.listened.add(drain);
    drain.addEventListener('abort', () => this.deadlines.drain(drain), { once: true });
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}

/**
 * The TURNOUT_DELIVERY_TIMEOUT deadlines of the attempts in flight, on one
 * timer instead of one per attempt (a timer per attempt cost 10-15 µs of
 * CPU per delivery in bench/core.bench.ts's profile: its Timeout object,
 * the timer list insert and clearTimeout). Every attempt of a client has the
 * same timeout, so a list in start order is in deadline order: the timer is
 * set for the oldest attempt's deadline and, when it fires, ends every
 * attempt that is due and is set again for the next. An attempt that
 * settles leaves the list at once (O(1)); the timer is not moved then but
 * re-set when it fires, so it fires about once per timeout while attempts
 * keep settling in time. Precision is setTimeout's.
 */
class Deadlines {
  private head: Attempt | undefined;
  private tail: Attempt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  add(a: Attempt): void {
    a.deadline = performance.now() + this.timeoutMs;
    a.prev = this.tail;
    a.next = undefined;
    if (this.tail) this.tail.next = a;
    else this.head = a;
    this.tail = a;
    if (this.timer === undefined) this.arm(a.deadline);
  }

  remove(a: Attempt): void {
    if (a.prev) a.prev.next = a.next;
    else if (this.head === a) this.head = a.next;
    else return; // not in the list (already removed)
    if (a.next) a.next.prev = a.prev;
    else this.tail = a.prev;
    a.prev = a.next = undefined;
  }

  /** Ends every attempt in flight that carries `signal` (its drain deadline passed). */
  drain(signal: AbortSignal): void {
    const hit: Attempt[] = [];
    for (let a = this.head; a !== undefined; a = a.next) if (a.drain === signal) hit.push(a);
    for (const a of hit) a.drained();
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(at - performance.now())));
    // Never keep a process alive for a timeout, as the per-attempt timers did not.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (let a = this.head; a !== undefined && a.deadline <= now; a = this.head) {
      this.remove(a);
      a.timedOut();
    }
    if (this.head) this.arm(this.head.deadline);
  }
}

/** The part of a non-2xx answer kept for the dead-letter reason (the rest is read and dropped). */
const ERROR_TEXT_BYTES = 1024;

/**
 * One delivery attempt, as an undici dispatch handler. It settles exactly once:
 * on the app's complete answer, on an error, at TURNOUT_DELIVERY_TIMEOUT, or at
 * the drain deadline. Timing out or draining before undici has started the
 * request settles at once; the request is then aborted when it starts, so a
 * late attempt never reaches the app.
 */
class Attempt implements Dispatcher.DispatchHandler {
  /** The drain signal that may cut it short. */
  readonly drain: AbortSignal;
  /** Its place in Deadlines' list. */
  deadline = 0;
  prev: Attempt | undefined;
  next: Attempt | undefined;
  private readonly resolve: (r: AttemptResult) => void;
  private readonly timeoutMs: number;
  private readonly deadlines: Deadlines;
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  private status = 0;
  private retryAfter: string | undefined;
  private text: Buffer[] | undefined;
  private textBytes = 0;

  constructor(resolve: (r: AttemptResult) => void, timeoutMs: number, deadlines: Deadlines, drain: AbortSignal) {
    this.drain = drain;
    this.resolve = resolve;
    this.timeoutMs = timeoutMs;
    this.deadlines = deadlines;
    deadlines.add(this);
  }

  timedOut(): void {
    this.stop({ kind: 'retry', error: `app did not answer within ${this.timeoutMs} ms` });
  }

  drained(): void {
    this.stop({ kind: 'aborted' });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.settled) controller.abort(new Error('delivery attempt already ended (timeout or drain)'));
    else this.controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx informational answers come before the real one.
    if (statusCode < 200) return;
    this.status = statusCode;
    if (classifyStatus(statusCode) !== 'delivered') {
      this.text = [];
      const ra = headers['retry-after'];
      this.retryAfter = Array.isArray(ra) ? ra[0] : ra;
    }
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.text === undefined || this.textBytes >= ERROR_TEXT_BYTES) return;
    this.text.push(chunk);
    this.textBytes += chunk.length;
  }

  onResponseEnd(): void {
    const status = this.status;
    const cls = classifyStatus(status);
    if (cls === 'delivered') return this.settle({ kind: 'delivered', status });
    const text = Buffer.concat(this.text ?? []).toString('utf8', 0, ERROR_TEXT_BYTES);
    const detail = `app answered ${status}${text ? `: ${text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`;
    switch (cls) {
      case 'unsupported':
        return this.settle({ kind: 'unsupported', status });
      case 'rejected':
        return this.settle({ kind: 'rejected', error: detail });
      case 'retry': {
        const retryAfterMs = parseRetryAfter(this.retryAfter);
        return this.settle(retryAfterMs === undefined ? { kind: 'retry', error: detail } : { kind: 'retry', error: detail, retryAfterMs });
      }
    }
  }

  onResponseError(_c: Dispatcher.DispatchController | null, err: Error): void {
    if (err instanceof undiciErrors.InvalidArgumentError) {
      // A header the message carries cannot be sent over HTTP: retrying will not help.
      return this.settle({ kind: 'rejected', error: `message cannot be sent over HTTP: ${err.message}` });
    }
    const e = err as { code?: string; message?: string };
    this.settle({ kind: 'retry', error: `cannot reach the app: ${e.code ?? ''} ${e.message ?? String(err)}`.replace(/\s+/g, ' ').trim() });
  }

  /** Ends the attempt from outside (timeout, drain) and aborts the request if it has started. */
  private stop(result: AttemptResult): void {
    if (this.settled) return;
    const controller = this.controller;
    this.settle(result);
    controller?.abort(new Error(result.kind === 'aborted' ? 'drain deadline passed' : `no answer within ${this.timeoutMs} ms`));
  }

  private settle(result: AttemptResult): void {
    if (this.settled) return;
    this.settled = true;
    // Let go of undici's controller at once: held until the attempt itself is
    // collected, it kept each request's objects alive through scavenges
    // (core bench, pass-through: 2.3 KB promoted per message, 14 full GCs per
    // 43 000 messages; without it ~0.8 KB and 5).
    this.controller = undefined;
    this.deadlines.remove(this);
    this.resolve(result);
  }
}

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
    headers[k] = toWire(v);
  }
  // A dead-lettered copy names where it failed in x-turnout-source; on delivery that
  // header names the queue it is consumed from now, so keep the first as x-turnout-dlq-source.
  if (dlqReason !== undefined && failedIn !== undefined && failedIn !== ctx.source) headers['x-turnout-dlq-source'] = toWire(failedIn);
  headers['content-type'] = toWire(message.contentType ?? 'application/octet-stream');
  headers['x-turnout-message-id'] = toWire(message.id);
  headers['x-turnout-attempt'] = String(ctx.attempt);
  headers['x-turnout-source'] = toWire(ctx.source);
  if (ctx.redelivered) headers['x-turnout-redelivered'] = 'true';
  if (message.key !== undefined) headers['x-turnout-key'] = toWire(message.key);
  return headers;
}

/** What node:http accepts as a header name, and any character it refuses in a value. */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * The first header node:http would refuse to send, as its error text. Checked
 * here rather than left to undici: in undici 8.12 each request the Pool
 * refuses for a header (InvalidArgumentError) leaks one connection slot, and
 * once `connections` such messages have passed, every later request waits in
 * the pool forever, its abort signal ignored: delivery and drain both hang.
 */
function unsendableHeader(headers: Record<string, string>): string | undefined {
  for (const name in headers) {
    const value = headers[name] as string;
    // node:http's own rules (_http_common checkIsHttpToken, checkInvalidHeaderChar), tested
    // first: its validators, with a throw and catch each, only name what fails.
    if (TOKEN.test(name) && !INVALID_VALUE_CHAR.test(value)) continue;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

function parseRetryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
