// The command line as an operator meets it: --help, exit code 2 on bad
// configuration (naming the variable), and `turnout check`.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { envName, schema } from '../../config/schema.ts';
import { runTurnout, startTurnout } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'turnout-cli-'));
});

describe('--help', () => {
  test('lists every variable of the schema and every command', async () => {
    const r = await runTurnout(['--help']);
    assert.equal(r.code, 0);
    for (const spec of Object.values(schema)) {
      assert.ok(r.stdout.includes(envName(spec.flag)), `--help does not mention ${envName(spec.flag)}`);
      assert.ok(r.stdout.includes(`--${spec.flag}`), `--help does not mention --${spec.flag}`);
    }
    for (const cmd of ['run', 'check', 'demo']) assert.match(r.stdout, new RegExp(`turnout ${cmd}`));
  });
});

describe('invalid configuration stops the process with exit code 2 naming the variable', () => {
  const cases: [string, Record<string, string>, string[], RegExp][] = [
    ['weight not a number', { TURNOUT_GREEN_WEIGHT: 'lots' }, [], /TURNOUT_GREEN_WEIGHT.*0 to 100/],
    ['weight above 100', { TURNOUT_GREEN_WEIGHT: '100.5' }, [], /TURNOUT_GREEN_WEIGHT/],
    ['unknown broker', { TURNOUT_BROKER: 'redis://x' }, [], /TURNOUT_BROKER.*memory, amqp/],
    ['bad kafka address', { TURNOUT_BROKER: 'kafka://nohostport' }, [], /TURNOUT_BROKER.*host:port/],
    ['bad route key', { TURNOUT_ROUTE_KEY: 'cookie' }, [], /TURNOUT_ROUTE_KEY.*header:NAME/],
    ['bad version', { TURNOUT_DEFAULT_VERSION: 'zero' }, [], /TURNOUT_DEFAULT_VERSION.*positive/],
    ['version 0', { TURNOUT_ACCEPT: '0,1' }, [], /TURNOUT_ACCEPT/],
    ['concurrency 0', { TURNOUT_CONCURRENCY: '0' }, [], /TURNOUT_CONCURRENCY.*1 to 10000/],
    ['negative attempts', { TURNOUT_MAX_ATTEMPTS: '-1' }, [], /TURNOUT_MAX_ATTEMPTS/],
    ['app url not http', { TURNOUT_APP_URL: 'ftp://x' }, [], /TURNOUT_APP_URL.*http/],
    ['service-link port', { TURNOUT_PORT: 'tcp://10.0.0.1:8787' }, [], /TURNOUT_PORT.*enableServiceLinks/],
    ['log level', { TURNOUT_LOG_LEVEL: 'loud' }, [], /TURNOUT_LOG_LEVEL/],
    ['flag is named when the flag is wrong', {}, ['--green-weight', 'x'], /--green-weight/],
    ['source without app or routes', { TURNOUT_SOURCE: 'q', TURNOUT_DLQ: 'd' }, [], /TURNOUT_SOURCE.*TURNOUT_APP_URL/],
    ['embedded broker consuming without DLQ', { TURNOUT_SOURCE: 'q', TURNOUT_APP_URL: 'http://127.0.0.1:1/' }, [], /TURNOUT_DLQ is required/],
    ['kafka consuming without DLQ', { TURNOUT_BROKER: 'kafka://127.0.0.1:9092', TURNOUT_SOURCE: 'q', TURNOUT_APP_URL: 'http://127.0.0.1:1/' }, [], /TURNOUT_DLQ is required/],
    ['DLQ is the source', { TURNOUT_SOURCE: 'q', TURNOUT_APP_URL: 'http://127.0.0.1:1/', TURNOUT_DLQ: '{source}' }, [], /TURNOUT_DLQ.*loop/],
    ['router target is the source', { TURNOUT_SOURCE: 'q', TURNOUT_BLUE: 'q', TURNOUT_GREEN: 'g', TURNOUT_DLQ: 'd' }, [], /TURNOUT_BLUE.*loop/],
    ['blue and green the same', { TURNOUT_BLUE: 'x', TURNOUT_GREEN: 'x' }, [], /TURNOUT_GREEN/],
    ['unknown flag', {}, ['--grean-weight', '5'], /Unknown argument/i],
  ];
  for (const [name, env, args, pattern] of cases) {
    test(name, async () => {
      const r = await runTurnout(['run', ...args], env);
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    });
  }

  test('translators file with a broken step: exit 2 naming the file and the step', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, '"1->2": \'$merge([$, {"a": 1}])\'\n"2->3": \'$merge([$, {"b": \'\n');
    const r = await runTurnout(['run'], { TURNOUT_TRANSLATORS: file });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
    assert.match(r.stderr, /TURNOUT_TRANSLATORS/);
  });

  test('translators file with a bad step name: exit 2 naming the step', async () => {
    const file = join(dir, 'badname.yaml');
    await writeFile(file, '"one->two": "$"\n');
    const r = await runTurnout(['run'], { TURNOUT_TRANSLATORS: file });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /step "one->two"/);
  });

  test('missing translators file: exit 2', async () => {
    const r = await runTurnout(['run'], { TURNOUT_TRANSLATORS: join(dir, 'nope.yaml') });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope\.yaml.*cannot be read/);
  });

  test('weight file with a bad value: exit 2', async () => {
    const file = join(dir, 'weight-bad');
    await writeFile(file, 'half\n');
    const r = await runTurnout(['run'], { TURNOUT_WEIGHT_FILE: file });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TURNOUT_WEIGHT_FILE/);
  });
});

test('an unknown TURNOUT_ variable is reported with a suggestion, and the process still runs', async () => {
  const t = await startTurnout({ TURNOUT_GREEN_WIEGHT: '10' });
  try {
    const warning = t.logs().find((l) => String(l.msg).includes('TURNOUT_GREEN_WIEGHT'));
    assert.ok(warning, t.output());
    assert.match(String(warning.msg), /did you mean TURNOUT_GREEN_WEIGHT/);
  } finally {
    assert.equal(await t.stop(), 0);
  }
});

test('process warnings are logged as JSON, not as a plain-text line on stderr', async () => {
  // A module preloaded into the real process raises a warning once turnout runs
  // (as kafkajs does on Node 24 with a negative setTimeout).
  const raise = "setTimeout(()=>process.emitWarning('raised-by-the-test','TestWarning'),300)";
  const t = await startTurnout({ NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(raise)}` });
  try {
    await waitFor('the warning in the log', () => t.logs().some((l) => l.warning === 'TestWarning'), 5_000);
    const entry = t.logs().find((l) => l.warning === 'TestWarning');
    assert.equal(entry?.level, 'warn');
    assert.match(String(entry?.msg), /raised-by-the-test/);
    const plain = t.output().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
    assert.deepEqual(plain, [], 'every line the process writes is a JSON log entry');
  } finally {
    assert.equal(await t.stop(), 0);
  }
});

describe('turnout check', () => {
  const steps = `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'
"2->3": '$merge([$, {"tier": "basic"}])'
`;

  test('prints pass / translate via chain for each version; exit 0 when all reach', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, steps);
    const r = await runTurnout(['check', '--versions', '1,v2'], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '1' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /v1\s+pass/);
    assert.match(r.stdout, /v2\s+translate via 2->1 \(delivered as v1\)/);
    assert.doesNotMatch(r.stdout, /v3/);
  });

  test('exit 1 when a produced version reaches no accepted version', async () => {
    const file = join(dir, 'ok2.yaml');
    await writeFile(file, steps);
    // without --versions, every version the steps name counts as produced, v3 included
    const r = await runTurnout(['check'], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '1' });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /v3\s+defer/);
  });

  test('--sample runs the payload through every chain and shows results and errors', async () => {
    const file = join(dir, 'ok3.yaml');
    await writeFile(file, steps);
    const sample = join(dir, 'sample.json');
    await writeFile(sample, JSON.stringify({ id: 7, email: 'a@b.c' }));
    const r = await runTurnout(['check', '--sample', sample], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '3' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /v1\s+translate via 1->2->3/);
    assert.match(r.stdout, /sample → \{"id":7,"contact":\{"email":"a@b\.c"\},"tier":"basic"\}/);
    const bad = join(dir, 'bad-sample.txt');
    await writeFile(bad, 'not json');
    const r2 = await runTurnout(['check', '--sample', bad], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '3' });
    assert.match(r2.stdout, /sample → ERROR: payload is not JSON/);
  });

  test('says which steps run compiled and which fall back to the reference evaluator, and why; the start log lists them', async () => {
    const file = join(dir, 'engines.yaml');
    // 1->2 and 3->4 are in the compiled subset; 2->3 uses $sort, 4->5 the ~> operator: both stay on the reference evaluator.
    await writeFile(file, `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'
"2->3": '$merge([$, {"tags": $sort(tags)}])'
"3->4": '$merge([$, {"v": 4}])'
"4->5": '$merge([$, {"name": name ~> $uppercase}])'
`);
    const sample = join(dir, 'engines-sample.json');
    await writeFile(sample, JSON.stringify({ email: 'a@b.c', tags: ['b', 'a'], name: 'x' }));
    const r = await runTurnout(['check', '--sample', sample], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '5' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const engines = r.stdout.split('\n').filter((l) => /^\s+step \d+->\d+:/.test(l)).map((l) => l.trim());
    assert.deepEqual(engines, [
      "step 1->2: compiled (runs in turnout's thread)",
      'step 2->3: reference evaluator (worker pool): $sort() at character 25 is outside the compiled subset',
      "step 3->4: compiled (runs in turnout's thread)",
      'step 4->5: reference evaluator (worker pool): operator ~> at character 27 is outside the compiled subset',
    ]);
    // A chain mixing both engines gives the reference evaluator's result.
    assert.match(r.stdout, /v1\s+translate via 1->2->3->4->5/);
    assert.match(r.stdout, /sample → \{"tags":\["a","b"\],"name":"X","contact":\{"email":"a@b\.c"\},"v":4\}/);

    const t = await startTurnout({ TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '5' });
    try {
      const loaded = t.logs().filter((l) => l.msg === 'translation steps loaded');
      assert.equal(loaded.length, 1, 'said once at start');
      assert.deepEqual(loaded[0]?.compiled, ['1->2', '3->4']);
      assert.deepEqual(loaded[0]?.reference, ['2->3', '4->5']);
      const fallbacks = t.logs().filter((l) => l.msg === 'translation step runs on the reference evaluator (worker pool), not compiled');
      assert.deepEqual(fallbacks.map((l) => [l.step, l.why]), [
        ['2->3', '$sort() at character 25 is outside the compiled subset'],
        ['4->5', 'operator ~> at character 27 is outside the compiled subset'],
      ]);
    } finally {
      assert.equal(await t.stop(), 0);
    }
  });

  test('an invalid translators file: exit 2', async () => {
    const file = join(dir, 'bad-check.yaml');
    await writeFile(file, '- just a list\n');
    const r = await runTurnout(['check'], { TURNOUT_TRANSLATORS: file });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mapping/);
  });
});
