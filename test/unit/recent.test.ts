// RecentMap: per-message memory bounded by entries, least recently set out first.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentMap } from '../../lib/recent.ts';

test('holds at most its bound; setting a key again makes it the most recent', () => {
  const m = new RecentMap<number>(2);
  m.set('a', 1);
  m.set('b', 2);
  m.set('a', 3);
  m.set('c', 4);
  assert.equal(m.size, 2);
  assert.equal(m.get('b'), undefined, 'the least recently set went');
  assert.equal(m.get('a'), 3);
  assert.equal(m.get('c'), 4);
  m.delete('a');
  assert.equal(m.get('a'), undefined);
});
