// The HTTP surface's status codes as docs/reference.md lists them.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { METRIC_NAMES } from '../../src/metrics.ts';
import { publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';

let t: TurnoutProcess;
before(async () => {
  t = await startTurnout({ TURNOUT_BLUE: 'blue', TURNOUT_MAX_MESSAGE_BYTES: '1024' });
});
after(async () => {
  assert.equal(await t.stop(), 0);
});

test('GET /healthz and /readyz answer 200', async () => {
  assert.equal((await fetch(`${t.baseUrl}/healthz`)).status, 200);
  const r = await fetch(`${t.baseUrl}/readyz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ready' });
});

test('GET /metrics: Prometheus text with every turnout metric and the process metrics', async () => {
  const r = await fetch(`${t.baseUrl}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
  const text = await r.text();
  for (const name of METRIC_NAMES) assert.match(text, new RegExp(`# TYPE ${name} `), `${name} missing`);
  assert.match(text, /process_resident_memory_bytes/);
  assert.match(text, /turnout_draining 0/);
});

test('POST /v1/publish → 202 {id, queue} to the one configured target; x-turnout-message-id is kept', async () => {
  const r = await publishVia(t.baseUrl, '{"a":1}', { 'x-turnout-message-id': 'given-id' });
  assert.equal(r.status, 202);
  assert.deepEqual(r.json, { id: 'given-id', queue: 'blue' });
  const generated = await publishVia(t.baseUrl, '{"a":2}');
  assert.match(String(generated.json.id), /^[0-9a-f-]{36}$/);
  const depth = (await (await fetch(`${t.baseUrl}/v1/queues/blue`)).json()) as Record<string, unknown>;
  assert.deepEqual(depth, { queue: 'blue', depth: 2, inflight: 0 });
});

test('413 for a body over the limit (declared or streamed); nothing is published', async () => {
  const big = 'x'.repeat(2000);
  const r = await publishVia(t.baseUrl, big);
  assert.equal(r.status, 413);
  // chunked, no content-length
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 4; i++) c.enqueue(new TextEncoder().encode('y'.repeat(400)));
      c.close();
    },
  });
  const chunked = await fetch(`${t.baseUrl}/v1/publish`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
  assert.equal(chunked.status, 413);
  const depth = (await (await fetch(`${t.baseUrl}/v1/queues/blue`)).json()) as { depth: number };
  assert.equal(depth.depth, 2, 'only the two earlier messages');
});

test('unknown queue: 404 for publish and depth', async () => {
  const r = await publishVia(t.baseUrl, '{}', {}, 'no-such-queue');
  assert.equal(r.status, 404);
  assert.match(String(r.json.error), /no-such-queue/);
  assert.equal((await fetch(`${t.baseUrl}/v1/queues/no-such-queue`)).status, 404);
});

test('wrong method 405, unknown path 404', async () => {
  assert.equal((await fetch(`${t.baseUrl}/v1/publish`)).status, 405);
  assert.equal((await fetch(`${t.baseUrl}/healthz`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`${t.baseUrl}/v2/anything`)).status, 404);
});

test('publish without any target configured → 400 naming the fix', async () => {
  const bare = await startTurnout({});
  try {
    const r = await publishVia(bare.baseUrl, '{}');
    assert.equal(r.status, 400);
    assert.match(String(r.json.error), /TURNOUT_BLUE/);
  } finally {
    assert.equal(await bare.stop(), 0);
  }
});
