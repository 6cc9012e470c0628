import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settledWithin, UnderWay } from '../../lib/settle.ts';

const later = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));

test('settledWithin: true once all settled (rejections too), false at the bound', async () => {
  assert.equal(await settledWithin([later(5, 1), Promise.reject(new Error('x'))], 1000), true);
  assert.equal(await settledWithin([new Promise(() => {})], 20), false);
});

test('UnderWay: finish() waits for the calls under way, which leave once settled; its result is the call\'s own', async () => {
  const w = new UnderWay();
  assert.equal(await w.finish(10), true, 'nothing under way');
  const order: string[] = [];
  const a = w.run(() => later(30, 'a')).then((v) => void order.push(v));
  const b = w.run(() => later(10, 'b').then(() => Promise.reject(new Error('b failed'))));
  await assert.rejects(b, /b failed/);
  assert.equal(w.size, 1, 'a settled call is forgotten');
  assert.equal(await w.finish(1000), true);
  order.push('finished');
  await a;
  assert.deepEqual(order, ['a', 'finished']);
  assert.equal(w.size, 0);
});

test('UnderWay: finish() gives up at its bound and says so; the call stays counted', async () => {
  const w = new UnderWay();
  void w.run(() => new Promise(() => {}));
  const t0 = performance.now();
  assert.equal(await w.finish(30), false);
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(w.size, 1, 'still under way');
});
