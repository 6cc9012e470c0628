// A publish request as bytes, sent by fetch when fetch agrees to send it and
// over a raw socket otherwise (CR/LF, control bytes, bad names, framing), and
// what turnout must make of it: a refusal status, or the message it publishes.

import { connect } from 'node:net';
import { FUZZ_CONFIG, type View } from './oracle.ts';

export interface PublishCase {
  id: string;
  /** routed = POST /v1/publish; blue = /v1/publish/{blue}; otherwise a raw path segment. */
  target: { kind: 'routed' } | { kind: 'blue' } | { kind: 'path'; segment: string };
  /** Header name and value bytes, in order. */
  headers: [string, Buffer][];
  body: Buffer;
  /** Send a Content-Length larger than the body, then close (a truncated request). */
  truncate: boolean;
  answer: number;
}

/** Node's default --max-http-header-size. */
const MAX_HEADER_BYTES = 16 * 1024;
/** TURNOUT_HTTP_MAX_HEADERS' default: 431 past 200 header lines (Host, Connection and Content-Length count). */
const MAX_HEADER_LINES = 200;
/** How far our byte estimate may be off Node's own count. */
const SLACK = 1024;
/** fetch adds its own header lines (accept, accept-language, sec-fetch-mode, user-agent, accept-encoding…). */
const LINE_SLACK = 10;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CTL_BYTES = (b: Buffer): boolean => b.some((c) => (c < 0x20 && c !== 0x09) || c === 0x7f);

export type Verdict =
  /** parser: refused by Node's HTTP parser itself (its bare status line is the answer). */
  | { kind: 'refused'; status: number[]; why: string; parser?: boolean }
  /** orStatus: refusals that are also right (a request near the header size limit may get 431). */
  | { kind: 'accepted'; view: View; routed: boolean; orStatus: number[] };

/** bytes → header text the way turnout must read it: UTF-8 when it is UTF-8, else Latin-1. */
export function headerText(b: Buffer): string {
  const utf8 = b.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(b) ? utf8 : b.toString('latin1');
}

const ows = (b: Buffer): Buffer => {
  let s = 0;
  let e = b.length;
  while (s < e && (b[s] === 0x20 || b[s] === 0x09)) s++;
  while (e > s && (b[e - 1] === 0x20 || b[e - 1] === 0x09)) e--;
  return b.subarray(s, e);
};

/** What the request must lead to. */
export function verdict(c: PublishCase, queues: { blue: string; exists: (q: string) => boolean; amqp: boolean }): Verdict {
  // The parser reads the header section in order: the first fault it meets decides.
  let seen = 100;
  let lines = 4; // Host, Connection, Content-Length, x-turnout-message-id
  for (const [k, v] of c.headers) {
    seen += k.length + v.length + 4;
    lines++;
    const over = seen > MAX_HEADER_BYTES + SLACK || lines > MAX_HEADER_LINES;
    const near = seen > MAX_HEADER_BYTES - SLACK || lines > MAX_HEADER_LINES - LINE_SLACK;
    const bad = !TOKEN.test(k) ? 'a header name is not a token' : CTL_BYTES(v) ? 'a control byte (CR, LF, NUL…) in a header value' : undefined;
    if (bad !== undefined) return { kind: 'refused', status: near ? [400, 431] : [400], why: bad, parser: true };
    if (over) return { kind: 'refused', status: [431], why: `header section too large (${lines} lines, about ${seen} bytes)`, parser: true };
  }
  const near = seen > MAX_HEADER_BYTES - SLACK || lines > MAX_HEADER_LINES - LINE_SLACK;
  // "/v1/publish/.." is "/v1/" once the URL is normalised: no endpoint, answered before the body is read.
  if (c.target.kind === 'path' && /^(\.|%2e){2}$/i.test(c.target.segment)) return { kind: 'refused', status: near ? [404, 431] : [404], why: 'the path normalises to /v1/' };
  if (c.truncate) {
    // A declared length over the limit is refused (413) before the body is awaited.
    const status = c.body.length + 10 > FUZZ_CONFIG.maxBytes ? [0, 400, 413] : [0, 400];
    return { kind: 'refused', status: near ? [...status, 431] : status, why: 'truncated body', parser: true };
  }
  // Near the header size limit either answer is right; nothing else is.
  // turnout's order: the queue in the path must decode, then the body must fit, then the broker has its say.
  let q: string | undefined;
  if (c.target.kind === 'path') {
    try {
      q = decodeURIComponent(c.target.segment);
    } catch {
      return { kind: 'refused', status: near ? [400, 431] : [400], why: 'bad percent-encoding in the queue' };
    }
    if (q === '') return { kind: 'refused', status: near ? [400, 431] : [400], why: 'empty queue name' };
  }
  if (c.body.length > FUZZ_CONFIG.maxBytes) return { kind: 'refused', status: near ? [413, 431] : [413], why: 'body over TURNOUT_MAX_MESSAGE_BYTES' };
  if (q !== undefined) {
    if (queues.amqp && Buffer.byteLength(q) > 255) return { kind: 'refused', status: near ? [400, 431] : [400], why: 'AMQP queue names hold 255 bytes' };
    if (!queues.exists(q)) return { kind: 'refused', status: near ? [400, 404, 431] : [400, 404], why: 'no such queue' };
  }
  const headers = new Map<string, string>();
  let contentType: string | undefined;
  let key: string | undefined;
  for (const [k, raw] of c.headers) {
    const name = k.toLowerCase();
    const value = headerText(ows(raw));
    if (name === 'content-type') {
      contentType ??= value;
      continue;
    }
    if (!name.startsWith('x-') || name === 'x-turnout-message-id') continue;
    if (name === 'x-turnout-key') {
      // Node joins repeated x- headers with ", " (content-type: the first one wins).
      key = key === undefined ? value : `${key}, ${value}`;
      continue;
    }
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  if (queues.amqp) {
    const long = [...headers.keys(), contentType ?? ''].find((x) => Buffer.byteLength(x) > 255);
    if (long !== undefined) return { kind: 'refused', status: near ? [400, 431] : [400], why: `AMQP short strings hold 255 bytes (${long.slice(0, 20)}…)` };
  }
  const view: View = { id: c.id, headers, payload: c.body, contentType: contentType === '' ? undefined : contentType, key: key === '' ? undefined : key };
  return { kind: 'accepted', view, routed: c.target.kind === 'routed', orStatus: near ? [431] : [] };
}

export function pathOf(c: PublishCase, blue: string): string {
  if (c.target.kind === 'routed') return '/v1/publish';
  if (c.target.kind === 'blue') return `/v1/publish/${encodeURIComponent(blue)}`;
  return `/v1/publish/${c.target.segment}`;
}

export interface Answered {
  status: number;
  body: string;
  via: 'fetch' | 'raw';
}

/** Sends by fetch; what fetch refuses to send goes over a raw socket. */
export async function send(base: string, c: PublishCase, path: string): Promise<Answered> {
  const all: [string, Buffer][] = [['x-turnout-message-id', Buffer.from(c.id)], ...c.headers];
  if (!c.truncate) {
    let headers: Headers | undefined;
    try {
      headers = new Headers();
      for (const [k, v] of all) headers.append(k, v.toString('latin1'));
    } catch {
      headers = undefined;
    }
    // fetch normalises whitespace around values; such cases go raw so the bytes are what the case says.
    // and joins repeated names into one line.
    const names = new Set(all.map(([k]) => k.toLowerCase()));
    const exact = headers !== undefined && names.size === all.length && all.every(([, v]) => ows(v).length === v.length);
    if (headers !== undefined && exact) {
      try {
        const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: c.body, signal: AbortSignal.timeout(30_000) });
        return { status: res.status, body: await res.text(), via: 'fetch' };
      } catch (err) {
        // undici refuses some things only when sending (e.g. a header it will not write): go raw.
        if (!(err instanceof TypeError)) throw err;
      }
    }
  }
  return raw(base, c, all, path);
}

function raw(base: string, c: PublishCase, all: [string, Buffer][], path: string): Promise<Answered> {
  const url = new URL(base);
  const declared = c.truncate ? c.body.length + 10 : c.body.length;
  const head = Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\nContent-Length: ${declared}\r\n`, 'latin1'),
    ...all.flatMap(([k, v]) => [Buffer.from(`${k}: `, 'latin1'), v, Buffer.from('\r\n')]),
    Buffer.from('\r\n'),
  ]);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`raw request ${c.id} got no answer within 30 s`));
    }, 30_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, body: text.split('\r\n\r\n').slice(1).join('\r\n\r\n'), via: 'raw' });
    });
    s.write(head);
    // A truncated request ends the connection early; a whole one waits for the answer (Connection: close).
    if (c.truncate) s.end(c.body);
    else s.write(c.body);
  });
}
