import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, type GateOptions } from '../../src/gate.ts';
import { parseTranslators, TranslatorSet } from '../../src/translators.ts';

const steps = parseTranslators(
  `"1->2": '$merge([$, {"v": 2}])'
"2->3": '$merge([$, {"v": 3}])'
"3->2": '$merge([$, {"v": 2}])'
`,
  'gate-test.yaml',
);

const opts = (accept: number[] | null, defaultVersion = 1): GateOptions => ({ versionHeader: 'x-schema-version', defaultVersion, accept });

describe('gate: decide', () => {
  test('accepted version passes', () => {
    assert.deepEqual(decide({ 'x-schema-version': '2' }, opts([1, 2]), steps), { kind: 'pass', version: 2 });
  });

  test('accept = null passes every version, even one no chain reaches', () => {
    assert.deepEqual(decide({ 'x-schema-version': '9' }, opts(null), TranslatorSet.empty), { kind: 'pass', version: 9 });
    assert.deepEqual(decide({ 'x-schema-version': '1' }, opts(null), steps), { kind: 'pass', version: 1 });
  });

  test('a version reachable by a chain is translated along it', () => {
    const d = decide({ 'x-schema-version': '1' }, opts([3]), steps);
    assert.equal(d.kind, 'translate');
    assert.ok(d.kind === 'translate');
    assert.equal(d.version, 1);
    assert.equal(d.chain.label, '1->2->3');
    assert.equal(d.chain.to, 3);
  });

  test('a version no chain reaches is deferred', () => {
    assert.deepEqual(decide({ 'x-schema-version': '4' }, opts([2]), steps), { kind: 'defer', version: 4 });
    assert.deepEqual(decide({ 'x-schema-version': '2' }, opts([1]), steps), { kind: 'defer', version: 2 });
    assert.deepEqual(decide({ 'x-schema-version': '3' }, opts([1]), TranslatorSet.empty), { kind: 'defer', version: 3 });
  });

  test('a header that is not a version is invalid, with the raw text', () => {
    for (const raw of ['abc', '0', '-1', '1.5', 'v', '2x', 'vv2']) {
      assert.deepEqual(decide({ 'x-schema-version': raw }, opts([1, 2]), steps), { kind: 'invalid', raw }, raw);
    }
    // Invalid even when the app accepts everything: it is not a version at all.
    assert.deepEqual(decide({ 'x-schema-version': 'abc' }, opts(null), steps), { kind: 'invalid', raw: 'abc' });
  });

  test('absent header means TURNOUT_DEFAULT_VERSION', () => {
    assert.deepEqual(decide({}, opts([1, 2], 1), steps), { kind: 'pass', version: 1 });
    assert.deepEqual(decide({}, opts([2], 2), steps), { kind: 'pass', version: 2 });
    const d = decide({ other: 'x' }, opts([2], 1), steps);
    assert.equal(d.kind, 'translate');
    assert.equal(d.version, 1);
    assert.deepEqual(decide({}, opts([1], 3), TranslatorSet.empty), { kind: 'defer', version: 3 });
  });

  test('empty header means TURNOUT_DEFAULT_VERSION too', () => {
    assert.deepEqual(decide({ 'x-schema-version': '' }, opts([2], 2), steps), { kind: 'pass', version: 2 });
    assert.deepEqual(decide({ 'x-schema-version': '' }, opts([5], 4), steps), { kind: 'defer', version: 4 });
  });

  test('v2 and V2 are version 2', () => {
    assert.deepEqual(decide({ 'x-schema-version': 'v2' }, opts([2]), steps), { kind: 'pass', version: 2 });
    assert.deepEqual(decide({ 'x-schema-version': 'V2' }, opts([2]), steps), { kind: 'pass', version: 2 });
    assert.deepEqual(decide({ 'x-schema-version': ' 2 ' }, opts([2]), steps), { kind: 'pass', version: 2 });
    const d = decide({ 'x-schema-version': 'V3' }, opts([2]), steps);
    assert.ok(d.kind === 'translate');
    assert.equal(d.chain.label, '3->2');
  });

  test('reads the configured header, not another', () => {
    const o: GateOptions = { versionHeader: 'x-v', defaultVersion: 1, accept: [1] };
    assert.deepEqual(decide({ 'x-schema-version': '7', 'x-v': '1' }, o, steps), { kind: 'pass', version: 1 });
    assert.deepEqual(decide({ 'x-schema-version': '1', 'x-v': '7' }, o, TranslatorSet.empty), { kind: 'defer', version: 7 });
  });
});
