// Shutdown as docs/reference.md says: /readyz 503 at once, no new message taken,
// in-flight messages finish (up to TURNOUT_DRAIN_TIMEOUT), exit 0 after a
// clean drain; unfinished work goes back to the broker; a second signal is safe.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { publishVia, startTurnout } from '../support/process.ts';
import { sleep, waitFor } from '../support/wait.ts';

test('SIGTERM with slow in-flight work: readyz 503, in-flight finish, nothing new taken, exit 0', async () => {
  const app = await startApp(() => ({ status: 200, delayMs: 1200 }));
  const t = await startTurnout({ TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '2', TURNOUT_DRAIN_TIMEOUT: '10000' });
  try {
    for (let i = 0; i < 6; i++) assert.equal((await publishVia(t.baseUrl, `{"i":${i}}`, { 'x-turnout-message-id': `d${i}` }, 'in')).status, 202);
    await waitFor('two in flight', () => app.active() === 2);
    t.child.kill('SIGTERM');
    await waitFor('readyz 503', async () => (await fetch(`${t.baseUrl}/readyz`)).status === 503, 2000);
    const r = await fetch(`${t.baseUrl}/readyz`);
    assert.deepEqual(await r.json(), { status: 'not ready', reason: 'draining' });
    assert.equal(r.headers.get('connection'), 'close', 'while draining, each answer ends its connection');
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(metrics, /turnout_draining 1/);
    // a second signal does not cut the drain short
    t.child.kill('SIGTERM');
    assert.equal(await t.exited, 0);
    assert.equal(app.accepted.size, 2, 'exactly the two in-flight messages finished');
    assert.equal(app.deliveries.length, 2, 'no new message was taken after SIGTERM');
    assert.ok(t.logs().some((l) => l.msg === 'already draining; waiting for in-flight messages (TURNOUT_DRAIN_TIMEOUT)'));
    assert.ok(t.logs().some((l) => l.msg === 'drained: every in-flight message finished'));
    // the other four stayed on the (embedded) broker; it says so as it ends
    const held = t.logs().find((l) => l.msg === 'the embedded broker still held messages; they end with this process');
    assert.equal(held?.heldInMemory, 4);
  } finally {
    await t.kill();
    await app.close();
  }
});

test('drain deadline passes: unfinished messages go back unacknowledged, exit 1', async () => {
  const app = await startApp(() => ({ status: 200, delayMs: 5000 }));
  const t = await startTurnout({ TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '3', TURNOUT_DRAIN_TIMEOUT: '300' });
  try {
    for (let i = 0; i < 3; i++) await publishVia(t.baseUrl, `{"i":${i}}`, {}, 'in');
    await waitFor('three in flight', () => app.active() === 3);
    const started = Date.now();
    const code = await t.stop('SIGINT');
    assert.equal(code, 1);
    assert.ok(Date.now() - started < 4000, 'did not wait for the slow app');
    assert.equal(app.accepted.size, 0);
    const stopped = t.logs().find((l) => l.msg === 'stopped');
    assert.deepEqual({ clean: stopped?.clean, released: stopped?.released }, { clean: false, released: 3 });
    const held = t.logs().find((l) => l.msg === 'the embedded broker still held messages; they end with this process');
    assert.equal(held?.heldInMemory, 3, 'the three are back on the broker, not acknowledged');
  } finally {
    await t.kill();
    await app.close();
  }
});

test('while draining, a failing app hands the message back instead of spending its attempts; publishes still work', async () => {
  const app = await startApp(() => 503);
  const t = await startTurnout({
    TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_BLUE: 'results',
    TURNOUT_MAX_ATTEMPTS: '10', TURNOUT_RETRY_BACKOFF: '400', TURNOUT_DRAIN_TIMEOUT: '10000',
  });
  try {
    await publishVia(t.baseUrl, '{"i":1}', { 'x-turnout-message-id': 'flaky' }, 'in');
    await waitFor('first attempt failed', () => app.deliveries.length === 1);
    t.child.kill('SIGTERM');
    await waitFor('draining', async () => (await fetch(`${t.baseUrl}/readyz`)).status === 503);
    // an app finishing its last job may still publish its result through the sidecar
    const r = await publishVia(t.baseUrl, '{"result":1}');
    assert.equal(r.status, 202, JSON.stringify(r.json));
    assert.equal(await t.exited, 0, 'the message was settled (handed back) within the drain');
    assert.equal(app.deliveries.length, 2, 'one more attempt after the backoff, then handed back');
    assert.deepEqual(t.logs().filter((l) => l.msg === 'dead-lettered'), [], 'nothing dead-lettered');
    const released = t.logs().find((l) => l.id === 'flaky' && String(l.msg).includes('goes back to the broker unacknowledged'));
    assert.ok(released, t.output());
    const stopped = t.logs().find((l) => l.msg === 'stopped');
    assert.equal(stopped?.released, 1);
    const held = t.logs().find((l) => l.msg === 'the embedded broker still held messages; they end with this process');
    assert.equal(held?.heldInMemory, 2, 'the handed-back message and the published result');
  } finally {
    await t.kill();
    await app.close();
  }
});

test('idle process exits 0 at once on SIGTERM', async () => {
  const t = await startTurnout({});
  const started = Date.now();
  assert.equal(await t.stop('SIGTERM'), 0);
  assert.ok(Date.now() - started < 3000);
  await sleep(0);
});

test('a client that never stops asking does not hold the shutdown: the server waits for a quiet moment at most 1 s', async () => {
  const t = await startTurnout({});
  let asking = true;
  let answered = 0;
  const ask = async (): Promise<void> => {
    while (asking) {
      try {
        await (await fetch(`${t.baseUrl}/healthz`)).arrayBuffer();
        answered++;
      } catch {
        return; // the server is gone
      }
    }
  };
  const clients = Array.from({ length: 4 }, ask);
  try {
    await waitFor('the clients to be answered', () => answered >= 100, 10_000, 5);
    const started = Date.now();
    assert.equal(await t.stop('SIGTERM'), 0);
    const took = Date.now() - started;
    // The bound is 1 s of waiting; process start-up noise aside, well under 5 s.
    assert.ok(took < 5000, `exit took ${took} ms`);
  } finally {
    asking = false;
    await Promise.all(clients);
    await t.kill();
  }
});
