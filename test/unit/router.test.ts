import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Message } from '../../adapters/broker.ts';
import { routeKeyOf, type RouteKey } from '../../lib/route-key.ts';
import { BUCKETS, bucketOf, colorOf, parseWeight, Router, type Color, type WeightOrigin } from '../../src/router.ts';

const msg = (over: Partial<Message> = {}): Message => ({ id: 'id-1', payload: Buffer.from('{}'), headers: {}, ...over });
const KEY: RouteKey = { kind: 'key' };

describe('router: bucketOf', () => {
  test('is a whole number in [0, 10000)', () => {
    assert.equal(BUCKETS, 10_000);
    for (let i = 0; i < 5_000; i++) {
      const b = bucketOf(randomUUID());
      assert.ok(Number.isInteger(b) && b >= 0 && b < BUCKETS, String(b));
    }
  });

  test('is deterministic, and pinned: a key keeps its bucket across versions of turnout', () => {
    // A change of hash would move keys between blue and green mid-rollout.
    // These values are md5(key)[0..4] as big-endian uint32, mod 10000.
    const pinned: Record<string, number> = { 'customer-1': 4726, 'customer-2': 6956, abc: 5272, '': 6393, 'über': 1525 };
    for (const [key, bucket] of Object.entries(pinned)) {
      assert.equal(bucketOf(key), bucket, key);
      assert.equal(bucketOf(key), bucketOf(key));
    }
  });
});

describe('router: colorOf and the weighted split', () => {
  const keys = Array.from({ length: 100_000 }, () => randomUUID());
  const buckets = keys.map(bucketOf);

  for (const weight of [0, 0.5, 1, 10, 33.3, 50, 90, 100]) {
    test(`uniform: weight ${weight} sends ${weight} % ± 1 point of 100 000 random keys green`, () => {
      const green = buckets.filter((b) => colorOf(b, weight) === 'green').length;
      const share = (green / keys.length) * 100;
      assert.ok(Math.abs(share - weight) <= 1, `weight ${weight}: ${share.toFixed(3)} % went green`);
    });
  }

  test('weight 0 → every key blue; weight 100 → every key green', () => {
    assert.ok(buckets.every((b) => colorOf(b, 0) === 'blue'));
    assert.ok(buckets.every((b) => colorOf(b, 100) === 'green'));
  });

  test('bucket edges: a bucket below weight × 100 is green', () => {
    assert.equal(colorOf(0, 0), 'blue');
    assert.equal(colorOf(0, 0.01), 'green');
    assert.equal(colorOf(4999, 50), 'green');
    assert.equal(colorOf(5000, 50), 'blue');
    assert.equal(colorOf(9999, 99.99), 'blue');
    assert.equal(colorOf(9998, 99.99), 'green');
    assert.equal(colorOf(9999, 100), 'green');
  });

  test('monotonic: a key green at weight w stays green at every higher weight', () => {
    const ladder = [0, 0.01, 0.5, 1, 2.5, 10, 25, 33.3, 50, 50.01, 66.6, 75, 90, 99, 99.99, 100];
    const sample = keys.slice(0, 20_000);
    const router = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: KEY, weight: 0 });
    const greenAt: Set<string>[] = [];
    for (const w of ladder) {
      router.setWeight(w, 'admin');
      const green = new Set<string>();
      for (const k of sample) if (router.route(msg({ id: 'x', key: k }), 'src')?.color === 'green') green.add(k);
      greenAt.push(green);
    }
    for (let i = 0; i < ladder.length; i++) {
      for (let j = i + 1; j < ladder.length; j++) {
        const lost = [...(greenAt[i] as Set<string>)].filter((k) => !(greenAt[j] as Set<string>).has(k));
        assert.equal(lost.length, 0, `${lost.length} keys green at ${ladder[i]} went blue at ${ladder[j]}`);
      }
    }
    // And the ladder really moves keys (the check above cannot pass by everything staying blue).
    assert.equal(greenAt[0]?.size, 0);
    assert.equal(greenAt.at(-1)?.size, sample.length);
    const sizes = greenAt.map((s) => s.size);
    assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b));
    assert.ok((greenAt[8]?.size ?? 0) > 9_000 && (greenAt[8]?.size ?? 0) < 11_000, 'about half at 50');
  });

  test('sticky: the same key lands on the same side every time at a given weight', () => {
    const router = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: KEY, weight: 50 });
    for (const k of keys.slice(0, 500)) {
      const first = router.route(msg({ id: randomUUID(), key: k }), 's')?.color;
      for (let i = 0; i < 3; i++) assert.equal(router.route(msg({ id: randomUUID(), key: k }), 's')?.color, first);
    }
  });
});

describe('router: routeKeyOf', () => {
  test('key: the message key, else the id', () => {
    assert.equal(routeKeyOf(msg({ key: 'k1' }), KEY), 'k1');
    assert.equal(routeKeyOf(msg({}), KEY), 'id-1');
    assert.equal(routeKeyOf(msg({ key: '' }), KEY), 'id-1');
  });

  test('header:NAME: that header, else the id', () => {
    const spec: RouteKey = { kind: 'header', name: 'x-tenant' };
    assert.equal(routeKeyOf(msg({ headers: { 'x-tenant': 'acme' }, key: 'k1' }), spec), 'acme');
    assert.equal(routeKeyOf(msg({ headers: { other: 'x' }, key: 'k1' }), spec), 'id-1');
    assert.equal(routeKeyOf(msg({ headers: { 'x-tenant': '' } }), spec), 'id-1');
  });

  test('json:path: a nested field', () => {
    const spec: RouteKey = { kind: 'json', path: ['customer', 'id'] };
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"customer":{"id":"c-42","name":"x"}}') }), spec), 'c-42');
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"customer":{"id":"c-42"}}') }), { kind: 'json', path: ['customer'] }), '{"id":"c-42"}');
  });

  test('json:path: numbers and booleans become their JSON text', () => {
    const spec: RouteKey = { kind: 'json', path: ['n'] };
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"n":42}') }), spec), '42');
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"n":0}') }), spec), '0');
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"n":1.5}') }), spec), '1.5');
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"n":false}') }), spec), 'false');
    // Same number, same key: 42 and "42" route alike.
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"n":"42"}') }), spec), '42');
  });

  test('json:path: missing, null, or through a non-object → the id', () => {
    const spec: RouteKey = { kind: 'json', path: ['customer', 'id'] };
    for (const body of ['{}', '{"customer":{}}', '{"customer":null}', '{"customer":{"id":null}}', '{"customer":"flat"}', '[1,2]', '"text"', '7', 'null']) {
      assert.equal(routeKeyOf(msg({ payload: Buffer.from(body) }), spec), 'id-1', body);
    }
  });

  test('json:path: a payload that is not JSON → the id', () => {
    const spec: RouteKey = { kind: 'json', path: ['a'] };
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('not json') }), spec), 'id-1');
    assert.equal(routeKeyOf(msg({ payload: Buffer.from([0xff, 0x00, 0x01]) }), spec), 'id-1');
    assert.equal(routeKeyOf(msg({ payload: Buffer.alloc(0) }), spec), 'id-1');
  });

  test('json:path: an array index works as a path part', () => {
    assert.equal(routeKeyOf(msg({ payload: Buffer.from('{"a":["x","y"]}') }), { kind: 'json', path: ['a', '1'] }), 'y');
  });
});

describe('router: Router.route', () => {
  const keyOn = (key: string, color: Color): string => {
    // Finds a key that lands on `color` at weight 50, to make expectations explicit.
    for (let i = 0; ; i++) {
      const k = `${key}-${i}`;
      if (colorOf(bucketOf(k), 50) === color) return k;
    }
  };

  test('two targets: the color follows the bucket of the route key', () => {
    const r = new Router({ targets: { blue: 'orders-blue', green: 'orders-green' }, routeKey: KEY, weight: 50 });
    const g = keyOn('k', 'green');
    const b = keyOn('k', 'blue');
    assert.deepEqual(r.route(msg({ key: g }), 'orders'), { color: 'green', target: 'orders-green' });
    assert.deepEqual(r.route(msg({ key: b }), 'orders'), { color: 'blue', target: 'orders-blue' });
    r.setWeight(0, 'admin');
    assert.deepEqual(r.route(msg({ key: g }), 'orders'), { color: 'blue', target: 'orders-blue' });
    r.setWeight(100, 'admin');
    assert.deepEqual(r.route(msg({ key: b }), 'orders'), { color: 'green', target: 'orders-green' });
  });

  test('two targets: the configured route key spec is used', () => {
    const r = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: { kind: 'header', name: 'x-tenant' }, weight: 50 });
    const g = keyOn('t', 'green');
    const b = keyOn('t', 'blue');
    assert.equal(r.route(msg({ headers: { 'x-tenant': g }, key: b }), 's')?.color, 'green');
    assert.equal(r.route(msg({ headers: { 'x-tenant': b }, key: g }), 's')?.color, 'blue');
  });

  test('one target: everything goes there, whatever the weight', () => {
    const onlyGreen = new Router({ targets: { green: 'g' }, routeKey: KEY, weight: 0 });
    const onlyBlue = new Router({ targets: { blue: 'b' }, routeKey: KEY, weight: 100 });
    for (let i = 0; i < 200; i++) {
      const m = msg({ id: randomUUID(), key: randomUUID() });
      assert.deepEqual(onlyGreen.route(m, 's'), { color: 'green', target: 'g' });
      assert.deepEqual(onlyBlue.route(m, 's'), { color: 'blue', target: 'b' });
    }
    assert.equal(onlyGreen.enabled, true);
    assert.equal(onlyBlue.enabled, true);
  });

  test('no target: undefined, and not enabled', () => {
    const r = new Router({ targets: {}, routeKey: KEY, weight: 50 });
    assert.equal(r.enabled, false);
    assert.equal(r.route(msg(), 's'), undefined);
  });

  test('{source} templates expand with a source', () => {
    const r = new Router({ targets: { blue: '{source}-blue', green: 'v2.{source}.{source}' }, routeKey: KEY, weight: 50 });
    assert.deepEqual(r.route(msg({ key: keyOn('s', 'blue') }), 'orders'), { color: 'blue', target: 'orders-blue' });
    assert.deepEqual(r.route(msg({ key: keyOn('s', 'green') }), 'orders'), { color: 'green', target: 'v2.orders.orders' });
  });

  test('{source} templates cannot resolve without a source → undefined; plain targets still do', () => {
    const r = new Router({ targets: { blue: 'plain-blue', green: '{source}-green' }, routeKey: KEY, weight: 50 });
    assert.equal(r.route(msg({ key: keyOn('n', 'green') }), undefined), undefined);
    assert.deepEqual(r.route(msg({ key: keyOn('n', 'blue') }), undefined), { color: 'blue', target: 'plain-blue' });
  });
});

describe('router: weight', () => {
  test('setWeight: 0–100 with decimals; origin and onChange (only on a change)', () => {
    const changes: [number, WeightOrigin][] = [];
    const r = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: KEY, weight: 10, onChange: (w, o) => changes.push([w, o]) });
    assert.equal(r.weight, 10);
    assert.equal(r.weightOrigin, 'env');
    r.setWeight(33.3, 'file');
    r.setWeight(33.3, 'admin');
    r.setWeight(0, 'admin');
    r.setWeight(100, 'file');
    assert.equal(r.weight, 100);
    assert.equal(r.weightOrigin, 'file');
    assert.deepEqual(changes, [[33.3, 'file'], [0, 'admin'], [100, 'file']]);
  });

  test('setWeight: out of range or not a number is a RangeError and changes nothing', () => {
    let calls = 0;
    const r = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: KEY, weight: 20, onChange: () => calls++ });
    for (const w of [-0.01, -1, 100.01, 101, Number.NaN, Infinity, -Infinity]) {
      assert.throws(() => r.setWeight(w, 'admin'), (err: unknown) => err instanceof RangeError && /from 0 to 100/.test(err.message), String(w));
    }
    assert.equal(r.weight, 20);
    assert.equal(r.weightOrigin, 'env');
    assert.equal(calls, 0);
  });

  test('parseWeight: good values', () => {
    assert.equal(parseWeight('0'), 0);
    assert.equal(parseWeight('100'), 100);
    assert.equal(parseWeight('12.5'), 12.5);
    assert.equal(parseWeight('  42\n'), 42);
    assert.equal(parseWeight('25%'), 25);
    assert.equal(parseWeight(' 25 % \n'), 25);
    assert.equal(parseWeight('007'), 7);
  });

  test('parseWeight: bad values say what is allowed', () => {
    for (const bad of ['', '   ', 'abc', '-1', '100.5', '101', '1e2', '.5', '5.', '50%%', '1 2', '0x10']) {
      assert.throws(() => parseWeight(bad), /weight must be a number from 0 to 100/, JSON.stringify(bad));
    }
  });

  test('routed() counts per color and reports each one', () => {
    const seen: Color[] = [];
    const r = new Router({ targets: { blue: 'b', green: 'g' }, routeKey: KEY, weight: 0, onRouted: (c) => seen.push(c) });
    assert.deepEqual(r.counts, { blue: 0, green: 0 });
    r.routed('blue');
    r.routed('green');
    r.routed('green');
    assert.deepEqual(r.counts, { blue: 1, green: 2 });
    assert.deepEqual(seen, ['blue', 'green', 'green']);
    // route() alone decides, it does not count: only a confirmed publish does.
    r.route(msg(), 's');
    assert.deepEqual(r.counts, { blue: 1, green: 2 });
  });
});
