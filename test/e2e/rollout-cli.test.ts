// `turnout rollout` as a process: an invalid plan exits 2 naming the key
// (every invalid plan of the contract's list is in test/unit/rollout/plan.test.ts),
// and the client subcommands need --controller.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runTurnout } from '../support/process.ts';

test('turnout rollout: an invalid plan is exit 2 naming the key and what is allowed; a missing --controller is exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'turnout-rollout-cli-'));
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, 'routers: ["http://127.0.0.1:1"]\nsteps: [10, 100]\ninterval: 1m\nanalysis:\n  checks:\n    - name: app\n      query: "sum(up)"\n      max: 1\n');
    const [bad, noController] = await Promise.all([runTurnout(['rollout', plan]), runTurnout(['rollout', 'status'])]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /analysis\.checks\[0\]\.query: a query needs analysis\.prometheus/);
    assert.equal(noController.code, 2);
    assert.match(noController.stderr, /needs --controller URL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
