// The README's first command: `turnout demo` runs a whole rollout and must
// account for every message.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { CLI, cleanEnv, runTurnout } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

test('turnout demo: ramp, version switch, poison messages, and lost = 0', async () => {
  const r = await runTurnout(['demo', '--messages', '300', '--rate', '300'], {}, 60_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const row = (label: string): number => {
    const m = new RegExp(`^\\s+${label.replace(/[()]/g, '\\$&')}\\s+(\\d+)`, 'm').exec(r.stdout);
    assert.ok(m, `row "${label}" missing:\n${r.stdout}`);
    return Number(m[1]);
  };
  const produced = row('produced');
  const blue = row('delivered to blue (v1 app)');
  const green = row('delivered to green (v2 app)');
  const dead = row('dead-lettered (orders.dead)');
  assert.equal(produced, 300);
  assert.equal(row('lost'), 0);
  assert.equal(row('delivered by both apps'), 0);
  assert.equal(row('delivered more than once'), 0);
  assert.equal(blue + green + dead, produced, 'each message in exactly one final place');
  assert.ok(green > 0 && blue > 0, 'both sides took traffic');
  assert.ok(row('translated (deliveries)') > 0);
  assert.ok(row('deferred (times)') > 0);
  assert.ok(dead > 0, 'the poison messages were dead-lettered');
  for (const marker of ['green weight 10%', 'green weight 50%', 'producer switches to v2', 'green weight 100%']) assert.ok(r.stdout.includes(marker), marker);
});

// `turnout demo --rollout`: the same demo, ramped by the controller (scrape provider).
const rowOf = (stdout: string, label: string): number => {
  const m = new RegExp(`^\\s+${label.replace(/[()]/g, '\\$&')}\\s+(\\d+)`, 'm').exec(stdout);
  assert.ok(m, `row "${label}" missing:\n${stdout}`);
  return Number(m[1]);
};

test('turnout demo --rollout: a healthy green is promoted by the controller, and lost = 0', async () => {
  const r = await runTurnout(['demo', '--rollout', '--messages', '300', '--rate', '300'], {}, 90_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}rollout: promoted at weight 100%/m);
  for (const w of [25, 50, 100]) assert.match(r.stdout, new RegExp(`rollout: step \\d/3: weight ${w}% on every router`));
  assert.equal(rowOf(r.stdout, 'lost'), 0);
  assert.equal(rowOf(r.stdout, 'delivered by both apps'), 0);
  assert.equal(rowOf(r.stdout, 'delivered more than once'), 0);
  const produced = rowOf(r.stdout, 'produced');
  assert.ok(produced >= 300);
  assert.equal(rowOf(r.stdout, 'delivered to blue (v1 app)') + rowOf(r.stdout, 'delivered to green (v2 app)') + rowOf(r.stdout, 'dead-lettered (orders.dead)'), produced);
});

test('turnout demo --rollout --failing-green: rolled back at the first judged step, nothing lost', async () => {
  const r = await runTurnout(['demo', '--rollout', '--failing-green', '--messages', '300', '--rate', '300'], {}, 90_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}rollout: rolled-back at weight 0% \(check green-fallbacks [\d.]+ > max 0\.15/m);
  assert.doesNotMatch(r.stdout, /rollout: step \d\/3: weight 50%/, 'never past the first step');
  assert.doesNotMatch(r.stdout, /rollout: step 1 \(25%\) passed/);
  assert.equal(rowOf(r.stdout, 'lost'), 0);
  assert.equal(rowOf(r.stdout, 'delivered by both apps'), 0);
  assert.equal(rowOf(r.stdout, 'delivered more than once'), 0);
  assert.ok(rowOf(r.stdout, 'green failures handed to blue') > 0, "green's failures fell back to blue");
  assert.equal(rowOf(r.stdout, 'delivered to blue (v1 app)') + rowOf(r.stdout, 'delivered to green (v2 app)') + rowOf(r.stdout, 'dead-lettered (orders.dead)'), rowOf(r.stdout, 'produced'));
});

test('turnout demo --hold: after the summary the status pages stay up until SIGINT, then it exits 0', async () => {
  const child = spawn(process.execPath, [CLI, 'demo', '--hold', '--messages', '100', '--rate', '300'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor('the hold line', () => out.includes('press Ctrl-C to end'), 60_000, 50);
    const url = /watch it live: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
    assert.ok(url, out);
    assert.equal(rowOf(out, 'lost'), 0);
    const page = await fetch(url);
    assert.equal(page.status, 200, 'the page is served after the summary');
    assert.match(await page.text(), /<html/i);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
