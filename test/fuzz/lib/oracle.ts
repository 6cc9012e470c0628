// What must happen to a consumed message, worked out from the contract
// (DESIGN: size check, version gate, translation, delivery status table,
// deferral, dead-letter reasons) for the campaign's configuration, without
// asking the process: the fuzz test compares the process against this.

import jsonata from 'jsonata';

/** The configuration every campaign consumer runs with (see setup.ts). */
export const FUZZ_CONFIG = {
  maxBytes: 65_536,
  versionHeader: 'x-schema-version',
  maxDeferrals: 1,
  maxAttempts: 2,
  steps: {
    '2->1': '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])',
    '4->1': '$error("fuzz: there is no way from 4 to 1")',
  },
} as const;

/** A message as turnout holds it after consuming it. */
export interface View {
  id: string;
  headers: Map<string, string>;
  payload: Buffer;
  contentType?: string | undefined;
  key?: string | undefined;
}

export type Reason = 'max-attempts' | 'rejected' | 'unsupported-version' | 'translate-error' | 'too-large';

export type Expected =
  /** sent: every header the app must get (the message's and turnout's own), apart from attempt and connection headers. */
  | { kind: 'deliver'; body: Buffer; sent: [string, string][] }
  /** appCalls: how many times the app must have been asked before the message was dead-lettered. */
  | { kind: 'dlq'; reason: Reason; appCalls: number; why: string; deferred: boolean };

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection']);
const OWN = new Set(['content-type', 'x-turnout-message-id', 'x-turnout-attempt', 'x-turnout-source', 'x-turnout-redelivered', 'x-turnout-key', 'x-turnout-dlq-source']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Header text travels as UTF-8; only control characters cannot travel at all.
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

export const sendable = (name: string, value: string): boolean => TOKEN.test(name) && !CTL.test(value);

/** Case-insensitive lookup, exact name first (as turnout reads the headers it uses). */
function lookup(h: Map<string, string>, name: string): string | undefined {
  const exact = h.get(name);
  if (exact !== undefined) return exact;
  for (const [k, v] of h) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** "Versions are positive integers (a leading v is accepted)"; at most 9 digits. */
export function versionOf(raw: string | undefined): number | 'invalid' {
  if (raw === undefined || raw === '') return 1;
  const m = /^\s*[vV]?([0-9]+)\s*$/.exec(raw);
  if (!m || (m[1] as string).length > 9) return 'invalid';
  const n = Number(m[1]);
  return n >= 1 ? n : 'invalid';
}

const compiled = new Map<string, jsonata.Expression>();
async function translate21(payload: Buffer): Promise<Buffer | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  let expr = compiled.get('2->1');
  if (!expr) compiled.set('2->1', (expr = jsonata(FUZZ_CONFIG.steps['2->1'])));
  try {
    const out: unknown = await expr.evaluate(value);
    return out === undefined ? undefined : Buffer.from(JSON.stringify(out));
  } catch {
    return undefined;
  }
}

/** The expected end of a message consumed from `source` whose app answers `answer`. */
export async function expect(v: View, source: string, answer: number): Promise<Expected> {
  const dlq = (reason: Reason, why: string, appCalls = 0, deferred = false): Expected => ({ kind: 'dlq', reason, appCalls, why, deferred });
  if (v.payload.length > FUZZ_CONFIG.maxBytes) return dlq('too-large', 'payload over the limit');
  const version = versionOf(lookup(v.headers, FUZZ_CONFIG.versionHeader));
  const deferrals = Number.parseInt(lookup(v.headers, 'x-turnout-deferrals') ?? '0', 10);
  const deferredBefore = Number.isFinite(deferrals) && deferrals > 0 ? deferrals : 0;
  // A deferred message comes back once (TURNOUT_MAX_DEFERRALS=1), then is dead-lettered.
  const deferThenDlq = (why: string, calls: number): Expected => dlq('unsupported-version', why, deferredBefore < FUZZ_CONFIG.maxDeferrals ? calls * 2 : calls, deferredBefore < FUZZ_CONFIG.maxDeferrals);
  if (version === 'invalid') return dlq('unsupported-version', 'not a version');
  let body = v.payload;
  let contentType = v.contentType ?? 'application/octet-stream';
  const headers = new Map(v.headers);
  if (version === 4) return dlq('translate-error', 'the 4->1 step throws');
  if (version === 2) {
    const out = await translate21(v.payload);
    if (out === undefined) return dlq('translate-error', '2->1 fails on this payload');
    if (out.length > FUZZ_CONFIG.maxBytes) return dlq('too-large', 'translated copy over the limit');
    body = out;
    contentType = 'application/json';
    for (const k of [...headers.keys()]) if (['x-schema-version', 'x-turnout-translated-from'].includes(k.toLowerCase())) headers.delete(k);
    headers.set('x-schema-version', '1');
    headers.set('x-turnout-translated-from', '2');
  } else if (version !== 1) {
    return deferThenDlq('no chain to v1', 0);
  }
  // What goes over HTTP: the message's headers minus hop-by-hop and turnout's own.
  const forwarded: [string, string][] = [];
  let dlqReason: string | undefined;
  let failedIn: string | undefined;
  for (const [k, val] of headers) {
    const lower = k.toLowerCase();
    if (lower === 'x-turnout-dlq-reason') dlqReason = val;
    else if (lower === 'x-turnout-source') failedIn = val;
    if (HOP_BY_HOP.has(lower) || OWN.has(lower)) continue;
    forwarded.push([k, val]);
  }
  const extra: [string, string][] = [['content-type', contentType], ['x-turnout-message-id', v.id], ['x-turnout-source', source]];
  if (v.key !== undefined) extra.push(['x-turnout-key', v.key]);
  if (dlqReason !== undefined && failedIn !== undefined && failedIn !== source) extra.push(['x-turnout-dlq-source', failedIn]);
  if (![...forwarded, ...extra].every(([k, val]) => sendable(k, val))) return dlq('rejected', 'a header cannot travel over HTTP');
  switch (answer) {
    case 200:
      return { kind: 'deliver', body, sent: [...forwarded, ...extra] };
    case 400:
      return dlq('rejected', 'the app answers 400', 1);
    case 415:
      return deferThenDlq('the app answers 415', 1);
    default:
      return dlq('max-attempts', `the app answers ${answer}`, FUZZ_CONFIG.maxAttempts);
  }
}

/** HTTP strips optional whitespace around a header value. */
export const ows = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');
