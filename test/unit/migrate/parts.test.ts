// The pure parts of the migration tooling: --where filters, the copy's
// header rules, durations, --fleet expansion, the move's exit code.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../config/errors.ts';
import { copyFor, movesOf } from '../../../src/migrate/copy.ts';
import { parseDuration } from '../../../src/migrate/duration.ts';
import { factsOf, matches, parseWhere } from '../../../src/migrate/filters.ts';
import { exitCodeOf, type MoveSummary } from '../../../src/migrate/move.ts';
import { expandFleet } from '../../../src/fleet/targets.ts';

const rule = { versionHeader: 'x-schema-version', defaultVersion: 1 };

test('--where: reason, version (v prefix, default version when absent), header (case-insensitive name); all must hold', () => {
  const h = { 'X-Turnout-Dlq-Reason': 'max-attempts', 'x-schema-version': 'v2', 'X-Tenant': 'acme' };
  const f = factsOf(h, rule);
  assert.deepEqual(f, { reason: 'max-attempts', version: '2', source: 'none' });
  assert.equal(matches([parseWhere('reason=max-attempts'), parseWhere('version=2'), parseWhere('header:x-tenant=acme')], h, f), true);
  assert.equal(matches([parseWhere('reason=max-attempts'), parseWhere('version=1')], h, f), false);
  assert.equal(matches([parseWhere('header:x-tenant=other')], h, f), false);
  assert.equal(factsOf({}, rule).version, '1');
  assert.equal(matches([parseWhere('version=1')], {}, factsOf({}, rule)), true);
  assert.deepEqual(parseWhere('header:x-a=b=c'), { kind: 'header', name: 'x-a', value: 'b=c' });
  for (const bad of ['reason', 'colour=blue', 'version=two', 'reason=', '=x', 'header:=x']) {
    assert.throws(() => parseWhere(bad), (e: unknown) => e instanceof ConfigError && e.variable === '--where', bad);
  }
});

test('a moved copy keeps payload, key, id and headers, counts the move; to @source it loses the dead-letter headers', () => {
  const m = {
    id: 'id-1', payload: Buffer.from('x'), key: 'k', contentType: 'application/json', source: 'dlq', redelivered: false,
    headers: { 'x-turnout-dlq-reason': 'rejected', 'x-turnout-error': 'e', 'x-turnout-attempts': '5', 'x-turnout-failed-at': 't', 'x-turnout-deferrals': '2', 'x-turnout-source': 'orders', 'X-Turnout-Moves': '1', 'x-other': 'y' },
  };
  const back = copyFor(m, { toSource: true });
  assert.deepEqual(back, { id: 'id-1', payload: m.payload, key: 'k', contentType: 'application/json', headers: { 'x-turnout-source': 'orders', 'x-other': 'y', 'x-turnout-moves': '2' } });
  const moved = copyFor(m, { toSource: false });
  assert.equal(moved.headers['x-turnout-dlq-reason'], 'rejected');
  assert.equal(moved.headers['x-turnout-moves'], '2');
  assert.equal(m.headers['X-Turnout-Moves'], '1', 'the original is not changed');
  assert.equal(movesOf({}), 0);
  assert.equal(movesOf({ 'x-turnout-moves': 'lots' }), 0);
  assert.equal(movesOf({ 'x-turnout-moves': '3' }), 3);
});

test('durations: ms, s, m, h; a bare number is seconds; anything else is a ConfigError naming the flag', () => {
  assert.equal(parseDuration('500ms', '--wait'), 500);
  assert.equal(parseDuration('30s', '--wait'), 30_000);
  assert.equal(parseDuration('2', '--wait'), 2000);
  assert.equal(parseDuration('1.5m', '--wait'), 90_000);
  assert.equal(parseDuration('1h', '--wait'), 3_600_000);
  assert.throws(() => parseDuration('soon', '--wait'), (e: unknown) => e instanceof ConfigError && e.variable === '--wait');
});

test('--fleet: URLs as given; dns+http names expanded to every address (IPv6 in brackets); a name that does not resolve is reported', async () => {
  const resolve = async (host: string): Promise<string[]> => {
    if (host === 'consumers.ns.svc') return ['10.0.0.5', '10.0.0.6', 'fd00::7'];
    throw new Error('ENOTFOUND');
  };
  const out = await expandFleet('http://a:8787/, dns+http://consumers.ns.svc:8787,dns+https://gone:1', resolve);
  assert.deepEqual(out, [
    { given: 'http://a:8787/', urls: ['http://a:8787'] },
    { given: 'dns+http://consumers.ns.svc:8787', urls: ['http://10.0.0.5:8787', 'http://10.0.0.6:8787', 'http://[fd00::7]:8787'] },
    { given: 'dns+https://gone:1', urls: [], error: 'cannot resolve gone: ENOTFOUND' },
  ]);
  await assert.rejects(expandFleet('ftp://x'), ConfigError);
  await assert.rejects(expandFleet(' , '), ConfigError);
});

test('move exit code: 0 when everything that matched moved (skipped ones are not failures), 1 on a refused copy or an interrupted run', () => {
  const s: MoveSummary = { moved: 3, skipped: 2, remaining: 5, failed: 0, byReason: {}, byVersion: {}, bySource: {}, seen: 8, interrupted: false };
  assert.equal(exitCodeOf(s), 0);
  assert.equal(exitCodeOf({ ...s, failed: 1 }), 1);
  assert.equal(exitCodeOf({ ...s, interrupted: true }), 1);
});
