// The compiled fast path (issue 14): which steps compile, the guard that
// bounds them, and FastTranslator's hand-over to the worker pool (a fake
// pool here that records what it is asked; the real pool is
// translate-pool.test.ts's subject).

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import jsonata from 'jsonata';
import { compileExpression, Guard, HandOver, Overrun, QUICK_VALIDATE } from '../../src/translate/compile.ts';
import { NATIVES } from '../../src/translate/builtins.ts';
import { FAST_MAX_PAYLOAD_BYTES, FastTranslator } from '../../src/translate/fast.ts';
import type { PoolChain } from '../../src/translate/pool.ts';
import { parseTranslators, TranslateError, type Chain } from '../../src/translators.ts';

const DESIGN = `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->3": '$x ~> $uppercase'
"3->4": '{"n": $count(items)}'
`;
const ENDLESS = '($f := function($n){ $f($n+1) }; $f(0))';

function fakePool(): { calls: { chain: PoolChain; payload: string }[]; translate: (c: PoolChain, p: Buffer) => Promise<Buffer> } {
  const calls: { chain: PoolChain; payload: string }[] = [];
  return { calls, translate: async (chain, payload) => (calls.push({ chain, payload: payload.toString() }), Buffer.from('"from the pool"')) };
}
const chainOf = (text: string, from: number, to: number): Chain => {
  const c = parseTranslators(text, 't.yaml').chainFor(from, [to]);
  assert.ok(c);
  return c;
};

test('the quick signature checks give what jsonata\'s validator gives, for every shape they accept', () => {
  const fn = Object.assign(() => 1, { arity: 2 });
  const values: unknown[] = [{}, { a: 1 }, [], [{}], [{}, { b: [] }], [{}, 1], [1], [null], [[{}]], [{ _jsonata_lambda: true }], [fn],
    null, 1, 's', true, undefined, { _jsonata_lambda: true }, { _jsonata_function: true }, fn];
  const argLists: unknown[][] = [[]];
  for (const a of values) {
    argLists.push([a]);
    for (const b of values) argLists.push([a, b]);
  }
  let quick = 0;
  for (const name of ['merge', 'sift']) {
    const native = NATIVES.get(name);
    assert.ok(native?.signature);
    const check = QUICK_VALIDATE.get(native);
    assert.ok(check, `$${name} has a quick check`);
    for (const args of argLists) {
      const got = check(args);
      if (got === undefined) continue;
      quick++;
      assert.deepEqual(got, native.signature.validate(args, undefined), `$${name} of ${args.length} arguments`);
    }
  }
  // $merge of the three arrays of objects ([] too); $sift of one of the two objects and one of the three functions.
  assert.equal(quick, 9);
});

test('$merge builds a plain object (Object.prototype, not jsonata\'s null-prototype one) with jsonata\'s keys, order and values (__proto__ an own key)', async () => {
  const text = '$merge([a, b, c, $sift(a, function($v, $k) { $k != "x" })])';
  const input = JSON.parse('{"a": {"x": 1, "2": "two", "__proto__": {"p": 1}}, "b": {"y": [2], "1": "one", "x": null}, "c": [{"z": 3}]}');
  const c = compileExpression(text);
  assert.ok(c.ok);
  const got = c.run(structuredClone(input), new Guard(performance.now() + 1000, 100_000, 262_144)) as Record<string, unknown>;
  // A prototype of Object.prototype, and "__proto__" an own data property instead of the prototype.
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(got, '__proto__'), { value: { p: 1 }, enumerable: true, writable: true, configurable: true });
  assert.equal(JSON.stringify(got), JSON.stringify(await jsonata(text).evaluate(structuredClone(input))));
  assert.deepEqual(Object.keys(got), ['1', '2', 'x', '__proto__', 'y', 'z']);
  // An empty input: every path gives nothing, and both merge no item at all.
  assert.equal(JSON.stringify(c.run([], new Guard(performance.now() + 1000, 100_000, 262_144))), JSON.stringify(await jsonata(text).evaluate([])));
});

test('steps in the subset are compiled; the others name the first construct outside it', () => {
  const set = parseTranslators(DESIGN, 't.yaml');
  assert.deepEqual(set.steps.map((s) => s.engine), ['compiled', 'reference', 'compiled']);
  assert.match(set.steps[1]?.fallback ?? '', /operator ~> at character \d+ is outside the compiled subset/);
  assert.deepEqual(set.stepEngines(), ['1->2 (compiled)', '2->3 (reference)', '3->4 (compiled)']);
  for (const [text, why] of [['$sort(a)', /\$sort/], ['a ~> $string', /~>/], ['/x/', /regex/], ['a{b: c}', /grouping/], ['a@$x', /@, # or %/], ['function($x)<n:n>{$x}', /signature/], ['[$x := 1]', /:= outside/]] as const) {
    const c = compileExpression(text);
    assert.equal(c.ok, false, text);
    assert.match(c.ok ? '' : c.why, why, text);
  }
});

test('the endless-recursion step is stopped by the guard at its slice', () => {
  const c = compileExpression(ENDLESS);
  assert.ok(c.ok);
  assert.throws(() => c.run({}, new Guard(performance.now() + 20, 100_000, 262_144)), Overrun);
});

test('the guard caps built sequences and strings, and depth', () => {
  const run = (text: string, input: unknown = {}): unknown => {
    const c = compileExpression(text);
    assert.ok(c.ok, text);
    return c.run(input, new Guard(performance.now() + 10_000, 1000, 500, 100));
  };
  assert.throws(() => run('[1..1001]'), Overrun);
  assert.equal((run('[1..1000]') as unknown[]).length, 1000);
  assert.throws(() => run('($s := function($x, $n){ $n = 0 ? $x : $s($x & $x, $n - 1) }; $s("ab", 10))'), Overrun);
  assert.throws(() => run('$pad("", 600)'), Overrun);
  assert.throws(() => run('($f := function($n){ 1 + $f($n+1) }; $f(0))'), Overrun);
  // A value shared many times is measured before $string renders it.
  assert.throws(() => run('$string([1..20].($$))', { big: 'x'.repeat(100) }), Overrun);
});

test('a compiled chain answers in this thread; a reference step and everything after it go to the pool', async () => {
  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144 });
  const out = fast.translate(chainOf(DESIGN, 1, 2), Buffer.from('{"email":"e@x","id":1}'));
  // The answer itself, not a promise of it: the pipeline takes it without a microtask hop.
  assert.ok(Buffer.isBuffer(out));
  assert.deepEqual(JSON.parse(out.toString()), { id: 1, contact: { email: 'e@x' } });
  assert.equal(pool.calls.length, 0);
  assert.equal(fast.stats.compiled, 1);

  // 1->2 compiled here, then 2->3 (reference) and 3->4 in the pool, with 1->2's result as JSON.
  const rest = await fast.translate(chainOf(DESIGN, 1, 4), Buffer.from('{"email":"e@x"}'));
  assert.equal(rest.toString(), '"from the pool"');
  assert.equal(pool.calls.length, 1);
  assert.deepEqual(pool.calls[0]?.chain.steps.map((s) => `${s.from}->${s.to}`), ['2->3', '3->4']);
  assert.deepEqual(JSON.parse(pool.calls[0]?.payload ?? ''), { contact: { email: 'e@x' } });
});

test('failures and overruns go to the pool from the original payload; a step that keeps overrunning is demoted', async () => {
  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144, sliceMs: 5, demoteAfter: 2 });
  const failing = chainOf('"1->2": \'$uppercase(n)\'\n', 1, 2);
  await fast.translate(failing, Buffer.from('{"n":5}'));
  assert.equal(pool.calls.length, 1);
  assert.equal(pool.calls[0]?.payload, '{"n":5}');
  assert.deepEqual(pool.calls[0]?.chain.steps.map((s) => `${s.from}->${s.to}`), ['1->2']);

  const endless = chainOf(`"1->2": '${ENDLESS}'\n`, 1, 2);
  const step = endless.steps[0];
  assert.ok(step);
  for (let i = 0; i < 3; i++) await fast.translate(endless, Buffer.from('{}'));
  assert.equal(pool.calls.length, 4);
  assert.equal(fast.stats.overruns, 2, 'the third message went to the pool without a compiled attempt');
  assert.equal(fast.runsCompiled(step), false);
});

// Found by the differential test (seed 1099403686): jsonata's object constructor pushes undefined onto an
// empty input array, and whether [$$] beside it sees that depends on await order. The compiled path does
// not guess: it hands the message over, uncounted as an overrun (no demotion), and the payload it was given
// is left as it was.
test('an object constructor over an empty array is handed to the reference evaluator, not guessed', async () => {
  const text = '{"m": [[$$], {}]}';
  const c = compileExpression(text);
  assert.ok(c.ok);
  const input: unknown[] = [];
  assert.throws(() => c.run(input, new Guard(performance.now() + 1000, 100_000, 262_144)), (err: unknown) => err instanceof HandOver && !(err instanceof Overrun));
  assert.deepEqual(input, [], 'the payload is not changed');
  // Objects over anything else stay compiled.
  assert.deepEqual(c.run({}, new Guard(performance.now() + 1000, 100_000, 262_144)), { m: [[{}], {}] });

  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144, demoteAfter: 1 });
  const chain = chainOf(`"1->2": '${text}'\n`, 1, 2);
  for (let i = 0; i < 2; i++) await fast.translate(chain, Buffer.from('[]'));
  assert.deepEqual(pool.calls.map((x) => x.payload), ['[]', '[]']);
  assert.equal(fast.stats.overruns, 0);
  const step = chain.steps[0];
  assert.ok(step);
  assert.equal(fast.runsCompiled(step), true, 'not demoted');
});

test('verdicts the fast path gives itself are word for word the workers\'', async () => {
  const fast = new FastTranslator(fakePool(), { timeoutMs: 1000, maxBytes: 64 });
  const notJson = fast.translate(chainOf('"1->2": \'a\'\n', 1, 2), Buffer.from('nope'));
  assert.ok(notJson instanceof Promise, 'a failure is a rejection, never a synchronous throw');
  await assert.rejects(notJson, (e: unknown) => e instanceof TranslateError && /^payload is not JSON/.test(e.message));
  await assert.rejects(async () => fast.translate(chainOf('"1->2": \'a\'\n', 1, 2), Buffer.from('{}')), (e: unknown) => e instanceof TranslateError && e.message === 'step 1->2 produced no value');
});

test('a copy past TURNOUT_MAX_MESSAGE_BYTES goes to the pool, which words the too-large verdict', async () => {
  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 64 });
  await fast.translate(chainOf('"1->2": \'[$, $, $]\'\n', 1, 2), Buffer.from(JSON.stringify({ s: 'x'.repeat(40) })));
  assert.equal(pool.calls.length, 1);
});

test('a payload over FAST_MAX_PAYLOAD_BYTES goes to the pool without a compiled attempt (its parse alone would hold the thread)', async () => {
  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144 });
  const chain = chainOf(DESIGN, 1, 2);
  const fits = Buffer.from(JSON.stringify({ email: 'e@x', pad: 'x'.repeat(FAST_MAX_PAYLOAD_BYTES - 40) }));
  assert.ok(fits.length <= FAST_MAX_PAYLOAD_BYTES);
  await fast.translate(chain, fits);
  assert.deepEqual([pool.calls.length, fast.stats.compiled], [0, 1]);
  const over = Buffer.from(JSON.stringify({ email: 'e@x', pad: 'x'.repeat(FAST_MAX_PAYLOAD_BYTES) }));
  await fast.translate(chain, over);
  assert.deepEqual([pool.calls.length, fast.stats.compiled, fast.stats.handedOver], [1, 1, 0]);
  assert.equal(pool.calls[0]?.payload, over.toString());
  // Never above TURNOUT_MAX_MESSAGE_BYTES, and adjustable for tests.
  const small = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144, maxPayloadBytes: 16 });
  await small.translate(chain, Buffer.from('{"email":"e@x","id":1}'));
  assert.equal(pool.calls.length, 2);
});

test('a deeply nested payload that overflows the stack on the compiled path goes to the pool, not up to the pipeline', async () => {
  const pool = fakePool();
  const fast = new FastTranslator(pool, { timeoutMs: 1000, maxBytes: 262_144, maxPayloadBytes: 262_144 });
  // Found by the hostile-input campaign (test/fuzz/amqp.test.ts): JSON.parse takes it, a recursive walk does not.
  const deep = Buffer.from(`{"email":"e@x","n":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}`);
  assert.ok(deep.length <= 262_144);
  const out = await fast.translate(chainOf(DESIGN, 1, 2), deep);
  assert.equal(out.toString(), '"from the pool"');
  assert.equal(pool.calls.length, 1);
  assert.equal(pool.calls[0]?.payload, deep.toString());
});
