// The one percentage reading (config/percent.ts) that the green weight goes
// through wherever it enters: variable, weight file, admin API, router.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPercent, parsePercent } from '../../config/percent.ts';

test('parsePercent: digits with optional decimals, 0 to 100, white space around', () => {
  for (const [text, want] of [['0', 0], ['100', 100], ['12.5', 12.5], [' 33.3\n', 33.3], ['007', 7], ['100.0', 100]] as const) {
    assert.equal(parsePercent(text), want, JSON.stringify(text));
  }
});

test('parsePercent: anything else is undefined', () => {
  for (const text of ['', ' ', '-1', '-0', '+5', '100.5', '101', '1e2', '.5', '5.', '50%', '0x10', '1 2', 'NaN', 'Infinity', '١٢']) {
    assert.equal(parsePercent(text), undefined, JSON.stringify(text));
  }
});

test('isPercent: 0 to 100 inclusive; NaN and the infinities are not', () => {
  for (const n of [0, 0.01, 50, 99.99, 100]) assert.equal(isPercent(n), true, String(n));
  for (const n of [-0.01, -1, 100.01, Number.NaN, Infinity, -Infinity]) assert.equal(isPercent(n), false, String(n));
});
