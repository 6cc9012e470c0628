// The generators: hostile header names and values, versions, payloads and
// app answers, for publish requests and for foreign producers' messages.

import fc from 'fast-check';
import { FUZZ_CONFIG } from './oracle.ts';

const MAX = FUZZ_CONFIG.maxBytes;
const b = (s: string, enc: BufferEncoding = 'utf8'): Buffer => Buffer.from(s, enc);

const printable = fc.string({ unit: fc.mapToConstant({ num: 95, build: (v) => String.fromCharCode(0x20 + v) }), maxLength: 40 });

/** Header value bytes: plain, Latin-1, UTF-8 beyond Latin-1, invalid UTF-8, CR/LF and control bytes, huge, padded. */
export const valueBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: printable.map((s) => b(s)) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => b(s)) },
  { weight: 1, arbitrary: fc.constantFrom('日本語', 'émoji 🎉', 'עברית', 'z\u0301alg\u0308o', '٢', '\ufeffbom', '\u2028sep').map((s) => b(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a.map((x) => x | 0x80))) },
  { weight: 1, arbitrary: fc.constantFrom('café', 'ÿþ', '\xa0nbsp').map((s) => b(s, 'latin1')) },
  { weight: 1, arbitrary: fc.constantFrom('a\r\nx-injected: 1', 'a\nb', 'a\rb', 'a\r\n folded', 'nul\0', '\x1b[31m', 'del\x7f', '\x00').map((s) => b(s, 'latin1')) },
  { weight: 1, arbitrary: fc.constantFrom(' lead', 'trail ', '\ttab\t', '  ', '').map((s) => b(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 24_000 }).map((n) => b('h'.repeat(n))) },
);

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&\'*+^`|~ABCXYZ'.split(''));
/** Header names: mostly x- tokens; some that are no token at all, some long, some that look like turnout's own. */
export const headerName: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 }).map((s) => `x-${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('x-__proto__', 'x-constructor', 'X-Mixed-Case', 'x-turnout-deferrals', 'x-turnout-dlq-reason', 'x-turnout-source', 'x-turnout-attempt', 'x-turnout-key', 'content-type', 'x-turnout-translated-from') },
  { weight: 1, arbitrary: fc.constantFrom('x bad', 'x-ü', 'x-a:b', 'x-(paren)', 'x-"q"', 'x-\u65e5') },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 400 }).map((n) => `x-${'n'.repeat(n)}`) },
  { weight: 1, arbitrary: fc.constantFrom('accept', 'user-agent', 'x', 'x-') },
);

/** Version header values, from plain to absurd. */
export const version: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('1', '2', '3', '4', 'v2', 'V1', ' 2 ', '01').map((s) => b(s)) },
  { weight: 3, arbitrary: fc.constantFrom('0', '-1', 'v', '1e400', '2.0', '+1', 'Infinity', 'NaN', 'null', '0x2', '999999999', '1000000000', '0000000001', '٢', '２', '1\u00a0', 'v\u0662').map((s) => b(s)) },
  { weight: 1, arbitrary: fc.constantFrom(10_000, 2_000).map((n) => b('9'.repeat(n))) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const nested = (depth: number, kind: 'array' | 'object'): string => (kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));

/** Payloads: JSON of v1 and v2 shape, BOMs, invalid UTF-8, deep nesting, prototype keys, huge arrays, every size around the limit. */
export const payload: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ id: fc.nat(), email: fc.string({ maxLength: 20 }) }).map((o) => b(JSON.stringify(o))) },
  { weight: 4, arbitrary: fc.record({ id: fc.nat(), contact: fc.record({ email: fc.string({ unit: 'grapheme', maxLength: 20 }) }) }).map((o) => b(JSON.stringify(o))) },
  { weight: 1, arbitrary: fc.constantFrom('\ufeff{"id":1,"contact":{"email":"bom@x"}}', '{"id":1,"contact":{"email":"\ud800"}}', '{"__proto__":{"polluted":1},"contact":{"email":"p@x"}}', '{"constructor":{"prototype":{"x":1}},"contact":{"email":"c@x"}}', '{"contact":{"__proto__":{"email":"hidden"}}}', 'null', '[]', '""', '0', '{', '').map((s) => b(s)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xc3, 0x28]), Buffer.from('{"contact":{"email":"\xff\xfe"}}', 'latin1'), Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), Buffer.from([0xed, 0xa0, 0x80])) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(10_000, 1_000), fc.constantFrom('array' as const, 'object' as const)).map(([d, k]) => b(nested(d, k))) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: MAX / 2 + 100 }).map((n) => b(`[${'0,'.repeat(n - 1)}0]`)) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, MAX - 1, MAX, MAX + 1, MAX * 2).map((n) => Buffer.alloc(n, 0x61)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
);

export const contentType: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom('application/json', 'text/plain; charset=utf-8', 'application/json; charset=utf-16', 'a/b/c;;;', 'multipart/form-data; boundary=', '*/*', 'x'.repeat(300)).map((s) => b(s)) },
  { weight: 1, arbitrary: valueBytes },
);

/** What the app answers: mostly 2xx; 400 dead-letters, 415 defers, 500 retries into max-attempts. */
export const answer = fc.constantFrom(200, 200, 200, 200, 200, 200, 400, 415, 500);

export interface HeaderSpec {
  pairs: [string, Buffer][];
  /** Thousands of small headers on top: distinct names, or one name over and over (empty values, to stay under the size limit). */
  many: number;
  same: boolean;
}

export const headers: fc.Arbitrary<HeaderSpec> = fc.record({
  pairs: fc.array(fc.tuple(headerName, valueBytes), { maxLength: 5 }),
  many: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 100, max: 1200 }) }, { weight: 1, arbitrary: fc.integer({ min: 185, max: 200 }) }),
  same: fc.boolean(),
});

export function expandHeaders(h: HeaderSpec): [string, Buffer][] {
  const out = [...h.pairs];
  for (let i = 0; i < h.many; i++) out.push(h.same ? ['x-d', Buffer.alloc(0)] : [`x-m${i}`, Buffer.from('v')]);
  return out;
}

import type { PublishGen } from './runner.ts';

const segment = fc.oneof(
  fc.constantFrom('%zz', '', 'nope', '%E6%97%A5%E6%9C%AC', 'x'.repeat(300), '%00', 'a%2Fb', '..', '%2e%2e', 'fz.dead%0d%0a'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map(encodeURIComponent),
);

export const publishGen: fc.Arbitrary<PublishGen> = fc.record({
  target: fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: 'routed' as const }) },
    { weight: 4, arbitrary: fc.constant({ kind: 'blue' as const }) },
    { weight: 1, arbitrary: segment.map((s) => ({ kind: 'path' as const, segment: s })) },
  ),
  headers,
  version,
  contentType,
  key: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: printable.map((x) => b(x)) }, { weight: 1, arbitrary: valueBytes }),
  body: payload,
  truncate: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  answer,
});
