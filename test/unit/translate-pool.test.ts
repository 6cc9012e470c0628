// The translation budget: TranslationPool runs chains in worker processes,
// stops the ones that overrun TURNOUT_TRANSLATE_TIMEOUT, survives workers
// that die (out of memory, killed) and keeps this process's event loop free
// while they run. Real child processes, no fakes.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { TranslationPool } from '../../src/translate/pool.ts';
import { parseTranslators, translate, TranslateError, type Chain, type TranslatorSet } from '../../src/translators.ts';

const DESIGN_EXAMPLE = `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'
`;
const ENDLESS = `'($f := function($n){ $f($n+1) }; $f(0))'`;

const pools: TranslationPool[] = [];
after(async () => {
  for (const p of pools) await p.close();
});
function pool(o: Partial<ConstructorParameters<typeof TranslationPool>[0]> = {}): TranslationPool {
  const p = new TranslationPool({ timeoutMs: 1000, maxBytes: 262_144, ...o });
  pools.push(p);
  return p;
}
const chain = (set: TranslatorSet, from: number, to: number): Chain => {
  const c = set.chainFor(from, [to]);
  assert.ok(c, `no chain ${from}->${to}`);
  return c;
};
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** Rejects with a TranslateError of that reason whose message matches. */
async function fails(p: Promise<unknown>, reason: 'translate-error' | 'too-large', message: RegExp): Promise<TranslateError> {
  let caught: unknown;
  await p.then(() => assert.fail('expected a TranslateError'), (err: unknown) => (caught = err));
  assert.ok(caught instanceof TranslateError, `expected a TranslateError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.match(caught.message, message);
  return caught;
}

/** Counts how often a 10 ms interval fires while `during` runs: a blocked event loop fires it not at all. */
async function ticksDuring<T>(during: Promise<T>): Promise<{ result: T; ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const t0 = performance.now();
  try {
    const result = await during;
    return { result, ticks, ms: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

describe('translation pool', () => {
  test('warm() starts every worker before the first translation, and does not keep the process alive', async () => {
    const set = parseTranslators(DESIGN_EXAMPLE, 'design.yaml');
    const p = pool({ size: 2 });
    assert.equal(p.workers, 0, 'workers start lazily');
    await p.warm();
    assert.equal(p.workers, 2);
    const out = await p.translate(chain(set, 1, 2), json({ id: 1, email: 'a@b.c' }));
    assert.deepEqual(JSON.parse(out.toString()), { id: 1, contact: { email: 'a@b.c' } });
    assert.equal(p.workers, 2, 'no further worker was started');
  });

  test('translates as the in-thread translate() does (the translators file example of docs/reference.md, both ways)', async () => {
    const set = parseTranslators(DESIGN_EXAMPLE, 'design.yaml');
    const p = pool();
    const v1 = json({ id: 7, email: 'ada@example.com', name: 'Ada' });
    const out = await p.translate(chain(set, 1, 2), v1);
    assert.deepEqual(out, await translate(chain(set, 1, 2), v1));
    assert.deepEqual(JSON.parse(out.toString()), { id: 7, name: 'Ada', contact: { email: 'ada@example.com' } });
    assert.deepEqual(JSON.parse((await p.translate(chain(set, 2, 1), out)).toString()), { id: 7, email: 'ada@example.com', name: 'Ada' });
    // Non-ASCII survives the trip both ways.
    const uni = await p.translate(chain(set, 1, 2), json({ email: 'zoë@例え.jp', name: 'Zoë 🚀' }));
    assert.deepEqual(JSON.parse(uni.toString('utf8')), { name: 'Zoë 🚀', contact: { email: 'zoë@例え.jp' } });
  });

  test('endless recursion: stopped at the budget (translate-error "timed out after N ms"), the event loop stays free, the pool recovers', async () => {
    const set = parseTranslators(`"1->2": ${ENDLESS}\n"3->4": '$merge([$, {"ok": true}])'`, 'loop.yaml');
    const p = pool({ timeoutMs: 400 });
    // Warm the worker, so the measured time is the budget's and not a process start's.
    await p.translate(chain(set, 3, 4), json({}));
    const { result, ticks, ms } = await ticksDuring(fails(p.translate(chain(set, 1, 2), json({})), 'translate-error', /^timed out after 400 ms/));
    assert.match(result.message, /translating 1->2/);
    assert.ok(ms >= 390, `stopped after ${ms} ms, before the budget`);
    // Run in this thread, the step would have fired the interval not once; here the loop is free.
    assert.ok(ticks >= 5, `the event loop ran the 10 ms interval only ${ticks} times in ${Math.round(ms)} ms`);
    // The killed worker is replaced: the next message translates.
    assert.deepEqual(JSON.parse((await p.translate(chain(set, 3, 4), json({ a: 1 }))).toString()), { a: 1, ok: true });
  });

  test('a stuck job holds up only its own worker: with two workers the next message translates meanwhile', async () => {
    const set = parseTranslators(`"1->2": ${ENDLESS}\n"3->4": '$merge([$, {"ok": true}])'`, 'loop.yaml');
    const p = pool({ timeoutMs: 3000, size: 2 });
    const stuck = p.translate(chain(set, 1, 2), json({}));
    const order: string[] = [];
    void stuck.catch(() => order.push('stuck'));
    const ok = await p.translate(chain(set, 3, 4), json({ a: 1 }));
    order.push('ok');
    assert.deepEqual(JSON.parse(ok.toString()), { a: 1, ok: true });
    await fails(stuck, 'translate-error', /timed out after 3000 ms/);
    assert.deepEqual(order, ['ok', 'stuck']);
  });

  test('jobs sent ahead to a worker whose job overran are not failed: they run on its replacement', async () => {
    const set = parseTranslators(`"1->2": ${ENDLESS}\n"3->4": '$merge([$, {"ok": true}])'`, 'loop.yaml');
    const p = pool({ timeoutMs: 500, size: 1 });
    await p.translate(chain(set, 3, 4), json({}));
    // One worker, ready: the stuck job and the three after it are all sent to it.
    const stuck = p.translate(chain(set, 1, 2), json({}));
    const after = [1, 2, 3].map((i) => p.translate(chain(set, 3, 4), json({ i })));
    await fails(stuck, 'translate-error', /timed out after 500 ms/);
    assert.deepEqual((await Promise.all(after)).map((b) => JSON.parse(b.toString()) as unknown), [1, 2, 3].map((i) => ({ i, ok: true })));
  });

  test('a translated copy over maxBytes is too-large; one at exactly maxBytes passes', async () => {
    const set = parseTranslators(`"1->2": '[1..100000]'\n"3->4": '$'`, 'big.yaml');
    const p = pool({ maxBytes: 1000 });
    await fails(p.translate(chain(set, 1, 2), json({})), 'too-large', /translated copy \(v1->v2\) is 588896 bytes; TURNOUT_MAX_MESSAGE_BYTES is 1000/);
    const exact = json({ s: 'x'.repeat(1000 - 8) });
    assert.equal(exact.length, 1000);
    assert.equal((await p.translate(chain(set, 3, 4), exact)).length, 1000);
    await fails(p.translate(chain(set, 3, 4), json({ s: 'é'.repeat(500) })), 'too-large', /is 1008 bytes/);
  });

  test('hostile steps end in translate-error and this process survives: a huge range, a huge string, deep nesting', async () => {
    const set = parseTranslators(
      `"1->2": '[1..10000000]'\n"2->3": '$pad("x", 200000000)'\n"3->4": '$string($)'\n"4->5": '$merge([$, {"ok": true}])'`,
      'hostile.yaml',
    );
    const p = pool({ timeoutMs: 5000, heapMb: 48 });
    // JSONata's sequence limit refuses the range before it fills the heap.
    await fails(p.translate(chain(set, 1, 2), json({})), 'translate-error', /step 1->2 failed: The maximum sequence length of … was exceeded/);
    // A 200 MB string overruns the worker's 48 MiB heap: V8 aborts the worker, not turnout.
    await fails(p.translate(chain(set, 2, 3), json({})), 'translate-error', /ran out of memory translating 2->3 \(a translation worker's heap is limited to 48 MiB\)|timed out after 5000 ms/);
    // 10 000 levels of nesting parse, and serialising them again overflows the worker's stack.
    await fails(p.translate(chain(set, 3, 4), Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`)), 'translate-error', /step 3->4 failed: Maximum call stack size exceeded/);
    assert.deepEqual(JSON.parse((await p.translate(chain(set, 4, 5), json({}))).toString()), { ok: true });
  });

  test('error texts never quote the payload (JSON.parse and JSONata values)', async () => {
    const SECRET = 'hunter2-payload-7f3a';
    const set = parseTranslators(`"1->2": '$merge([$, {"n": $number(card)}])'\n"3->4": '-card'\n"5->6": '$merge([$, {"v": 2}])'`, 'e.yaml');
    const p = pool();
    const e1 = await fails(p.translate(chain(set, 5, 6), Buffer.from(`{"card": ${SECRET}}`)), 'translate-error', /payload is not JSON \(unexpected character\)/);
    const e2 = await fails(p.translate(chain(set, 1, 2), json({ card: SECRET })), 'translate-error', /step 1->2 failed: Unable to cast value to a number: … \(D3030/);
    const e3 = await fails(p.translate(chain(set, 3, 4), json({ card: SECRET })), 'translate-error', /Cannot negate a non-numeric value: …/);
    const e4 = await fails(p.translate(chain(set, 5, 6), Buffer.from(`"${SECRET}`)), 'translate-error', /payload is not JSON \(Unterminated string at character 21\)/);
    for (const e of [e1, e2, e3, e4]) assert.ok(!e.message.includes(SECRET) && !e.message.includes('hunter2'), e.message);
    // A value that is no string is replaced too (only where it stands alone: JSONata's words stay).
    const e5 = await fails(p.translate(chain(set, 3, 4), json({ card: true })), 'translate-error', /Cannot negate a non-numeric value: … \(D1002/);
    assert.ok(!e5.message.includes('true'), e5.message);
  });

  test('a reload brings new texts for the same step: the worker runs the new one', async () => {
    const p = pool();
    const a = parseTranslators(`"1->2": '$merge([$, {"v": "a"}])'`, 'a.yaml');
    const b = parseTranslators(`"1->2": '$merge([$, {"v": "b"}])'`, 'b.yaml');
    assert.deepEqual(JSON.parse((await p.translate(chain(a, 1, 2), json({}))).toString()), { v: 'a' });
    assert.deepEqual(JSON.parse((await p.translate(chain(b, 1, 2), json({}))).toString()), { v: 'b' });
    assert.deepEqual(JSON.parse((await p.translate(chain(a, 1, 2), json({}))).toString()), { v: 'a' });
  });

  test('close() rejects what waits with a plain Error (not a verdict on the message) and stops the workers', async () => {
    const set = parseTranslators(`"1->2": ${ENDLESS}`, 'loop.yaml');
    const p = new TranslationPool({ timeoutMs: 60_000, maxBytes: 1000, size: 1 });
    const running = p.translate(chain(set, 1, 2), json({}));
    const waiting = p.translate(chain(set, 1, 2), json({}));
    const outcomes = Promise.allSettled([running, waiting]);
    await new Promise((r) => setTimeout(r, 300));
    await p.close();
    for (const r of await outcomes) {
      assert.equal(r.status, 'rejected');
      const err: unknown = r.status === 'rejected' ? r.reason : undefined;
      assert.ok(err instanceof Error && !(err instanceof TranslateError) && /closed/.test(err.message), String(err));
    }
    assert.equal(p.workers, 0);
    await assert.rejects(p.translate(chain(set, 1, 2), json({})), /closed/);
  });
});
