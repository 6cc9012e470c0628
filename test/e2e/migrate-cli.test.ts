// The migration commands' command line, whatever the broker: bad arguments
// and bad broker settings are exit 2 naming what to fix; a broker refusal is
// one line and exit 1.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTurnout } from '../support/process.ts';

test('exit 2 names the flag or variable; a missing queue is exit 1 with one line', async () => {
  // One after another: each is a Node start-up, and the machine is shared.
  const max = await runTurnout(['move', '--from', 'a', '--to', 'b', '--max', '0']);
  const where = await runTurnout(['move', '--from', 'a', '--to', 'b', '--where', 'colour=blue']);
  const broker = await runTurnout(['drained', 'a'], { TURNOUT_BROKER: 'kafka://nohost' });
  const to = await runTurnout(['move', '--from', 'a']);
  const wait = await runTurnout(['drained', 'a', '--wait', 'soon']);
  const missing = await runTurnout(['move', '--from', 'nowhere', '--to', 'b']);
  const fleet = await runTurnout(['check', '--fleet', 'ftp://x']);
  assert.equal(max.code, 2);
  assert.match(max.stderr, /--max 0 must be a positive whole number/);
  assert.equal(where.code, 2);
  assert.match(where.stderr, /--where "colour=blue"/);
  assert.equal(broker.code, 2);
  assert.match(broker.stderr, /TURNOUT_BROKER/);
  assert.equal(to.code, 2);
  assert.match(to.stderr, /to/);
  assert.equal(wait.code, 2);
  assert.match(wait.stderr, /--wait/);
  // The embedded broker of a separate process is empty: its queues do not exist.
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.match(missing.stderr, /turnout move: queue "nowhere" does not exist/);
  assert.equal(fleet.code, 2);
  assert.match(fleet.stderr, /--fleet/);
});
