import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  loadTranslatorsFile,
  parseTranslators,
  translate,
  TranslateError,
  TranslatorFileError,
  TranslatorSet,
  type Chain,
} from '../../src/translators.ts';

// Each step adds its own mark so a test can see exactly which steps ran, in which order.
const mark = (from: number, to: number): string => `"${from}->${to}": '$merge([$, {"path": [path, "${from}->${to}"]}])'`;
const set = (...pairs: [number, number][]): TranslatorSet => parseTranslators(pairs.map(([f, t]) => mark(f, t)).join('\n'), 'test.yaml');

const run = async (chain: Chain | null, value: unknown): Promise<unknown> => {
  assert.ok(chain, 'expected a chain');
  return JSON.parse((await translate(chain, Buffer.from(JSON.stringify(value)))).toString('utf8'));
};

const DESIGN_EXAMPLE = `# one step per adjacent pair; chains are composed from steps
"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'
`;

/** Asserts `fn` throws a TranslatorFileError for file/step whose message contains every `parts`. */
function assertFileError(fn: () => unknown, file: string, step: string | undefined, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TranslatorFileError, `expected TranslatorFileError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.equal(err.step, step);
    assert.match(err.message, new RegExp(`translators file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    if (step !== undefined) assert.ok(err.message.includes(`step "${step}"`), err.message);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `"${err.message}" should contain "${p}"`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

describe('translators: chain composition', () => {
  const ladder = set([1, 2], [2, 3], [3, 2], [2, 1]);

  test('shortest chain up: 1->2->3', async () => {
    const c = ladder.chainFor(1, [3]);
    assert.ok(c);
    assert.equal(c.label, '1->2->3');
    assert.deepEqual([c.from, c.to], [1, 3]);
    assert.deepEqual(c.steps.map((s) => [s.from, s.to]), [[1, 2], [2, 3]]);
    assert.deepEqual(await run(c, { path: [] }), { path: ['1->2', '2->3'] });
  });

  test('shortest chain down: 3->2->1', async () => {
    const c = ladder.chainFor(3, [1]);
    assert.ok(c);
    assert.equal(c.label, '3->2->1');
    assert.deepEqual(await run(c, { path: [] }), { path: ['3->2', '2->1'] });
  });

  test('a direct step beats a longer chain', () => {
    const s = set([1, 2], [2, 3], [1, 3]);
    assert.equal(s.chainFor(1, [3])?.label, '1->3');
    assert.equal(s.chainFor(1, [3])?.steps.length, 1);
  });

  test('the nearest accepted version wins over a farther one, whichever is higher', () => {
    const s = set([1, 2], [2, 3], [3, 4], [3, 2], [2, 1]);
    // From 1: 3 is two steps away, 4 three: the nearer one wins although 4 is higher.
    assert.equal(s.chainFor(1, [3, 4])?.label, '1->2->3');
    // From 3: 4 is one step away, 1 two: the nearer one wins.
    assert.equal(s.chainFor(3, [1, 4])?.label, '3->4');
    // From 3: 2 is one step away, 1 two: 2 wins, whatever the order of the list.
    assert.equal(s.chainFor(3, [1, 2])?.label, '3->2');
    assert.equal(s.chainFor(3, [1])?.label, '3->2->1');
  });

  test('ties at the same distance go to the higher version', () => {
    const s = set([2, 1], [2, 3]);
    assert.equal(s.chainFor(2, [1, 3])?.label, '2->3');
    assert.equal(s.chainFor(2, [3, 1])?.label, '2->3');
    const t = set([3, 2], [2, 1], [3, 4], [4, 5]);
    assert.equal(t.chainFor(3, [1, 5])?.label, '3->4->5');
  });

  test('unreachable → null (also with cycles, and for an empty set)', () => {
    const s = set([1, 2], [2, 1]);
    assert.equal(s.chainFor(1, [3]), null);
    assert.equal(s.chainFor(5, [1]), null);
    assert.equal(set([1, 2]).chainFor(2, [1]), null, 'steps are one-way');
    assert.equal(TranslatorSet.empty.chainFor(1, [2]), null);
  });

  test('chains are cached per (from, accept)', () => {
    const s = set([1, 2], [2, 3]);
    const a = s.chainFor(1, [3]);
    assert.ok(a);
    assert.equal(s.chainFor(1, [3]), a, 'same object on the second call');
    const b = s.chainFor(1, [2]);
    assert.notEqual(b, a);
    assert.equal(b?.label, '1->2');
    assert.equal(s.chainFor(1, [2]), b);
    // A cached miss stays a miss (and is not confused with a hit).
    assert.equal(s.chainFor(3, [1]), null);
    assert.equal(s.chainFor(3, [1]), null);
  });

  test('versions() lists every version a step touches, sorted', () => {
    assert.deepEqual(set([3, 2], [1, 2], [10, 3]).versions(), [1, 2, 3, 10]);
    assert.deepEqual(TranslatorSet.empty.versions(), []);
  });
});

describe('translators: parsing the file', () => {
  test("the reference's example parses into two steps", () => {
    const s = parseTranslators(DESIGN_EXAMPLE, 'design.yaml');
    assert.deepEqual(s.steps.map((x) => [x.from, x.to]), [[1, 2], [2, 1]]);
    assert.match(s.steps[0]?.text ?? '', /contact/);
  });

  test('keys may use a v prefix and spaces', () => {
    const s = parseTranslators(`"v1 -> V2": '$'\n" 3->v4 ": '$'`, 'f.yaml');
    assert.deepEqual(s.steps.map((x) => [x.from, x.to]), [[1, 2], [3, 4]]);
  });

  test('an empty file is an empty set', () => {
    assert.equal(parseTranslators('', 'e.yaml').steps.length, 0);
    assert.equal(parseTranslators('# only a comment\n', 'e.yaml').steps.length, 0);
  });

  test('a bad key names the file and the step', () => {
    assertFileError(() => parseTranslators(`"1-2": '$'`, 'bad.yaml'), 'bad.yaml', '1-2', 'FROM->TO');
    assertFileError(() => parseTranslators(`"a->b": '$'`, 'bad.yaml'), 'bad.yaml', 'a->b', 'FROM->TO');
    assertFileError(() => parseTranslators(`"1.5->2": '$'`, 'bad.yaml'), 'bad.yaml', '1.5->2', 'FROM->TO');
    assertFileError(() => parseTranslators(`"0->1": '$'`, 'bad.yaml'), 'bad.yaml', '0->1', 'positive');
  });

  test('a step that does not change the version', () => {
    assertFileError(() => parseTranslators(`"2->2": '$'`, 'same.yaml'), 'same.yaml', '2->2', 'must change the version');
    assertFileError(() => parseTranslators(`"v2->2": '$'`, 'same.yaml'), 'same.yaml', 'v2->2', 'must change the version');
  });

  test('a step defined twice after normalisation ("1->2" and "v1->v2")', () => {
    assertFileError(() => parseTranslators(`"1->2": '$'\n"v1->v2": '$'`, 'dup.yaml'), 'dup.yaml', 'v1->v2', 'step 1->2 is defined twice');
  });

  test('an expression that is not a string', () => {
    assertFileError(() => parseTranslators(`"1->2": 5`, 'ns.yaml'), 'ns.yaml', '1->2', 'must be a JSONata expression (a string)');
    assertFileError(() => parseTranslators(`"1->2": [a, b]`, 'ns.yaml'), 'ns.yaml', '1->2', 'must be a JSONata expression');
    assertFileError(() => parseTranslators(`"1->2": {a: 1}`, 'ns.yaml'), 'ns.yaml', '1->2', 'must be a JSONata expression');
    assertFileError(() => parseTranslators(`"1->2":`, 'ns.yaml'), 'ns.yaml', '1->2', 'must be a JSONata expression');
    assertFileError(() => parseTranslators(`"1->2": '  '`, 'ns.yaml'), 'ns.yaml', '1->2', 'must be a JSONata expression');
  });

  test('a JSONata syntax error names the step and the position', () => {
    assertFileError(
      () => parseTranslators(`"1->2": '$'\n"2->3": '$merge([$, {"a": 1}'`, 'syntax.yaml'),
      'syntax.yaml',
      '2->3',
      'JSONata does not compile',
      /at character \d+/,
    );
  });

  test('a file that is not a mapping', () => {
    assertFileError(() => parseTranslators(`- "1->2"\n- "2->3"`, 'list.yaml'), 'list.yaml', undefined, 'must be a mapping');
    assertFileError(() => parseTranslators(`just a string`, 'scalar.yaml'), 'scalar.yaml', undefined, 'must be a mapping');
    assertFileError(() => parseTranslators(`42`, 'num.yaml'), 'num.yaml', undefined, 'must be a mapping');
  });

  test('invalid YAML', () => {
    assertFileError(() => parseTranslators(`"1->2": '$\n  "unterminated`, 'broken.yaml'), 'broken.yaml', undefined, 'not valid YAML or JSON');
    assertFileError(() => parseTranslators(`{"1->2": "$",`, 'broken.json'), 'broken.json', undefined, 'not valid YAML or JSON');
  });

  describe('from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turnout-translators-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('a JSON file works too', async () => {
      const file = join(dir, 'steps.json');
      writeFileSync(file, JSON.stringify({ '1->2': '$merge([$, {"v": 2}])', '2->3': '$merge([$, {"v": 3}])' }));
      const s = loadTranslatorsFile(file);
      assert.deepEqual(s.steps.map((x) => [x.from, x.to]), [[1, 2], [2, 3]]);
      assert.deepEqual(await run(s.chainFor(1, [3]), { a: 1 }), { a: 1, v: 3 });
    });

    test('a YAML file works', () => {
      const file = join(dir, 'steps.yaml');
      writeFileSync(file, DESIGN_EXAMPLE);
      assert.equal(loadTranslatorsFile(file).steps.length, 2);
    });

    test('an error in a file on disk names that file and the step', () => {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, `"1->2": '$'\n"2->3": 7\n`);
      assertFileError(() => loadTranslatorsFile(file), file, '2->3', 'must be a JSONata expression');
    });

    test('a missing file names the file', () => {
      const file = join(dir, 'absent.yaml');
      assertFileError(() => loadTranslatorsFile(file), file, undefined, 'cannot be read');
    });
  });
});

describe('translators: translate()', () => {
  test("The reference's example steps round-trip email ↔ contact.email", async () => {
    const s = parseTranslators(DESIGN_EXAMPLE, 'design.yaml');
    const v1 = { id: 7, email: 'ada@example.com', name: 'Ada' };
    const v2 = await run(s.chainFor(1, [2]), v1);
    assert.deepEqual(v2, { id: 7, name: 'Ada', contact: { email: 'ada@example.com' } });
    assert.deepEqual(await run(s.chainFor(2, [1]), v2), v1);
  });

  test('a payload that is not JSON is a TranslateError', async () => {
    const c = set([1, 2]).chainFor(1, [2]);
    assert.ok(c);
    await assert.rejects(translate(c, Buffer.from('not json {')), (err: unknown) => {
      assert.ok(err instanceof TranslateError);
      assert.match(err.message, /not JSON/);
      assert.match(err.message, /v1->v2/);
      return true;
    });
    await assert.rejects(translate(c, Buffer.alloc(0)), TranslateError);
  });

  test('a step that throws is a TranslateError naming the step', async () => {
    const s = parseTranslators(`"1->2": '$'\n"2->3": '$error("boom")'`, 'x.yaml');
    await assert.rejects(translate(s.chainFor(1, [3]) as Chain, Buffer.from('{"a":1}')), (err: unknown) => {
      assert.ok(err instanceof TranslateError);
      assert.match(err.message, /step 2->3 failed/);
      assert.match(err.message, /boom/);
      return true;
    });
  });

  test('a step that fails at run time (type error) is a TranslateError', async () => {
    const s = parseTranslators(`"1->2": '$merge([$, {"n": a + 1}])'`, 'x.yaml');
    await assert.rejects(translate(s.chainFor(1, [2]) as Chain, Buffer.from('{"a":"text"}')), (err: unknown) => {
      assert.ok(err instanceof TranslateError);
      assert.match(err.message, /step 1->2 failed/);
      return true;
    });
  });

  test('a step yielding nothing is a TranslateError', async () => {
    const s = parseTranslators(`"1->2": 'nosuchfield'`, 'x.yaml');
    await assert.rejects(translate(s.chainFor(1, [2]) as Chain, Buffer.from('{"a":1}')), (err: unknown) => {
      assert.ok(err instanceof TranslateError);
      assert.match(err.message, /step 1->2 produced no value/);
      return true;
    });
  });

  test('a result too deep to write as JSON is a TranslateError, not an unexpected error', async () => {
    // Found by the hostile-input campaign: a v2 payload nested 10 000 levels deep got through the
    // step, JSON.stringify overflowed the stack, and the pipeline released the message for ever.
    const deep = Buffer.from('{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000));
    const s = parseTranslators(`"1->2": '$'`, 'x.yaml');
    await assert.rejects(translate(s.chainFor(1, [2]) as Chain, deep), (err: unknown) => {
      assert.ok(err instanceof TranslateError, String(err));
      assert.match(err.message, /1->v?2 cannot be written as JSON/);
      return true;
    });
  });

  test('the output is JSON; JSONata sequences become arrays', async () => {
    const s = parseTranslators(`"1->2": 'items.name'`, 'x.yaml');
    const out = await translate(s.chainFor(1, [2]) as Chain, Buffer.from('{"items":[{"name":"a"},{"name":"b"}]}'));
    assert.deepEqual(JSON.parse(out.toString('utf8')), ['a', 'b']);
  });
});
