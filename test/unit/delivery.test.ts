// The status table of docs/reference.md, one test per row, against a real local HTTP
// server (test/support/app.ts), plus the headers turnout sends.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Message } from '../../adapters/broker.ts';
import { AppClient, classifyStatus, type AttemptResult, type DeliveryContext, type StatusClass } from '../../src/delivery.ts';
import { startApp, type Answer, type TestApp } from '../support/app.ts';
import { freePort } from '../support/ports.ts';

// The message tells the app how to answer (x-answer: status, x-delay: ms, x-retry-after: header value,
// x-body: the body, x-body-pad: that many more bytes of body).
const answer = (h: Record<string, string | string[] | undefined>): Answer => {
  const headers: Record<string, string> = {};
  if (typeof h['x-retry-after'] === 'string') headers['retry-after'] = h['x-retry-after'];
  return {
    status: Number(h['x-answer'] ?? 200),
    delayMs: Number(h['x-delay'] ?? 0),
    body: (typeof h['x-body'] === 'string' ? h['x-body'] : '') + 'y'.repeat(Number(h['x-body-pad'] ?? 0)),
    headers,
  };
};

let seq = 0;
const message = (headers: Record<string, string> = {}, over: Partial<Message> = {}): Message => ({
  id: `msg-${++seq}`,
  payload: Buffer.from('{"hello":"world"}'),
  headers,
  contentType: 'application/json',
  ...over,
});
const ctx: DeliveryContext = { attempt: 1, source: 'orders', redelivered: false };
const never = new AbortController().signal;

let app: TestApp;
let client: AppClient;

before(async () => {
  app = await startApp((d) => answer(d.headers));
  client = new AppClient({ url: app.url, timeoutMs: 5_000, connections: 4 });
});
after(async () => {
  await client.close();
  await app.close();
});

const deliveriesOf = (id: string) => app.deliveries.filter((d) => d.id === id);

/** Posts and checks the app saw the message exactly `seen` times. */
async function post(m: Message, c: AppClient = client, seen = 1, signal = never): Promise<AttemptResult> {
  const r = await c.post(m, ctx, signal);
  assert.equal(deliveriesOf(m.id).length, seen, `the app should have seen ${m.id} ${seen} time(s)`);
  return r;
}

describe('delivery: the status table, one test per row', () => {
  for (const status of [200, 201, 204]) {
    test(`${status} → delivered (ack)`, async () => {
      assert.deepEqual(await post(message({ 'x-answer': String(status) })), { kind: 'delivered', status });
    });
  }

  test('415 → unsupported (defer)', async () => {
    assert.deepEqual(await post(message({ 'x-answer': '415' })), { kind: 'unsupported', status: 415 });
  });

  for (const status of [408, 429, 500, 502, 503]) {
    test(`${status} → retry`, async () => {
      const r = await post(message({ 'x-answer': String(status), 'x-body': 'try \t later' }));
      assert.equal(r.kind, 'retry');
      assert.ok(r.kind === 'retry');
      assert.equal(r.error, `app answered ${status}: try later`, 'body whitespace flattened');
      assert.equal(r.retryAfterMs, undefined);
      assert.equal('retryAfterMs' in r, false);
    });
  }

  for (const status of [429, 503]) {
    test(`${status} with Retry-After seconds → retry, retryAfterMs honoured`, async () => {
      const r = await post(message({ 'x-answer': String(status), 'x-retry-after': '3' }));
      assert.deepEqual(r, { kind: 'retry', error: `app answered ${status}`, retryAfterMs: 3000 });
    });
  }

  test('503 with Retry-After as an HTTP date → retryAfterMs until then', async () => {
    const at = new Date(Date.now() + 10_000).toUTCString();
    const r = await post(message({ 'x-answer': '503', 'x-retry-after': at }));
    assert.ok(r.kind === 'retry' && r.retryAfterMs !== undefined);
    assert.ok(r.retryAfterMs > 7_000 && r.retryAfterMs <= 10_000, String(r.retryAfterMs));
    const past = await post(message({ 'x-answer': '503', 'x-retry-after': new Date(Date.now() - 60_000).toUTCString() }));
    assert.ok(past.kind === 'retry');
    assert.equal(past.retryAfterMs, 0);
  });

  test('503 with a Retry-After that is neither → plain retry', async () => {
    const r = await post(message({ 'x-answer': '503', 'x-retry-after': 'soon' }));
    assert.deepEqual(r, { kind: 'retry', error: 'app answered 503' });
  });

  for (const status of [400, 401, 404, 409, 422]) {
    test(`${status} → rejected (dead-letter at once)`, async () => {
      const r = await post(message({ 'x-answer': String(status), 'x-body': 'field "email" missing' }));
      assert.deepEqual(r, { kind: 'rejected', error: `app answered ${status}: field "email" missing` });
    });
  }

  test('the error keeps at most 200 characters of the body', async () => {
    const r = await post(message({ 'x-answer': '500', 'x-body': 'e'.repeat(5000) }));
    assert.ok(r.kind === 'retry');
    assert.equal(r.error, `app answered 500: ${'e'.repeat(200)}`);
  });

  test('timeout (the app answers slower than timeoutMs) → retry with a timeout error', async () => {
    const slow = new AppClient({ url: app.url, timeoutMs: 60, connections: 1 });
    try {
      const t0 = performance.now();
      // The app's delay is far past the timeout, so even timers late on a loaded
      // machine cannot see the answer first; the bound is the app's answer.
      const r = await post(message({ 'x-delay': '3000' }), slow);
      assert.deepEqual(r, { kind: 'retry', error: 'app did not answer within 60 ms' });
      assert.ok(performance.now() - t0 < 3000, 'gave up at the timeout, not when the app answered');
    } finally {
      await slow.close();
    }
  });

  test('attempts share one deadline timer: one started after an answered attempt still times out, an answered one beside it is not cut', async () => {
    const c = new AppClient({ url: app.url, timeoutMs: 200, connections: 4 });
    try {
      // Answered at once: it leaves the deadline list, and the timer set for its deadline stays set.
      assert.equal((await post(message(), c)).kind, 'delivered');
      // Started later, so the timer fires before their deadlines and must be set again for them.
      const slow = [message({ 'x-delay': '3000' }), message({ 'x-delay': '3000' })];
      const t0 = performance.now();
      const [a, b, fast] = await Promise.all([c.post(slow[0] as Message, ctx, never), c.post(slow[1] as Message, ctx, never), post(message(), c)]);
      assert.deepEqual(a, { kind: 'retry', error: 'app did not answer within 200 ms' });
      assert.deepEqual(b, { kind: 'retry', error: 'app did not answer within 200 ms' });
      assert.equal(fast.kind, 'delivered');
      assert.ok(performance.now() - t0 < 3000, 'gave up at the timeout, not when the app answered');
    } finally {
      await c.close();
    }
  });

  test('a timeout while waiting for a pool connection settles at the timeout; the pool stays usable', async () => {
    const one = new AppClient({ url: app.url, timeoutMs: 150, connections: 1 });
    try {
      const busy = message({ 'x-delay': '3000' });
      const queued = message();
      const t0 = performance.now();
      const [a, b] = await Promise.all([one.post(busy, ctx, never), one.post(queued, ctx, never)]);
      assert.deepEqual(a, { kind: 'retry', error: 'app did not answer within 150 ms' });
      // Both deadlines fall in the same timer tick, and the busy attempt's timeout
      // frees the only connection in it: the queued attempt either timed out
      // waiting or just got the connection and was answered. Which one comes first
      // is the event loop's choice (a loaded machine picks either), so the test
      // takes both; it never waits for the busy attempt's answer.
      assert.ok(
        (b.kind === 'retry' && b.error === 'app did not answer within 150 ms') || b.kind === 'delivered',
        `the queued attempt settles at the timeout (timed out, or answered on the freed connection), got ${JSON.stringify(b)}`,
      );
      assert.ok(performance.now() - t0 < 3000, 'both gave up at the timeout, not when the busy attempt was answered');
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(deliveriesOf(busy.id).length, 1);
      // The busy attempt's timeout frees the connection in the same timer tick as the
      // queued one times out, so the queued request may just have started (the app then
      // sees it once, as with any attempt that times out); it is never sent after.
      // The drain test below pins "never sent once ended" without that race.
      assert.ok(deliveriesOf(queued.id).length <= 1);
      assert.equal((await one.post(message(), ctx, never)).kind, 'delivered');
    } finally {
      await one.close();
    }
  });

  test('a drain while waiting for a pool connection → aborted at once, never sent', async () => {
    const one = new AppClient({ url: app.url, timeoutMs: 5_000, connections: 1 });
    const drain = new AbortController();
    try {
      const busy = message({ 'x-delay': '3000' });
      const queued = message();
      const first = one.post(busy, ctx, never);
      const second = one.post(queued, ctx, drain.signal);
      setTimeout(() => drain.abort(), 50);
      assert.deepEqual(await second, { kind: 'aborted' });
      assert.equal((await first).kind, 'delivered', 'an attempt under another drain signal is not affected');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(deliveriesOf(queued.id).length, 0);
    } finally {
      await one.close();
    }
  });

  test('a large error body is read to its end (the connection stays usable) but only its start is kept', async () => {
    const one = new AppClient({ url: app.url, timeoutMs: 5_000, connections: 1 });
    try {
      const r = await one.post(message({ 'x-answer': '500', 'x-body': 'x'.repeat(300), 'x-body-pad': '2000000' }), ctx, never);
      assert.deepEqual(r, { kind: 'retry', error: `app answered 500: ${'x'.repeat(200)}` });
      const big2xx = await one.post(message({ 'x-body-pad': '2000000' }), ctx, never);
      assert.equal(big2xx.kind, 'delivered', 'a 2xx body is read and dropped');
      assert.equal((await one.post(message(), ctx, never)).kind, 'delivered');
    } finally {
      await one.close();
    }
  });

  test('connection refused → retry', async () => {
    const port = await freePort();
    const refused = new AppClient({ url: `http://127.0.0.1:${port}/messages`, timeoutMs: 5_000, connections: 1 });
    try {
      const r = await refused.post(message(), ctx, never);
      assert.equal(r.kind, 'retry');
      assert.ok(r.kind === 'retry');
      assert.match(r.error, /^cannot reach the app: .*ECONNREFUSED/);
    } finally {
      await refused.close();
    }
  });

  test('drain abort mid-request → aborted', async () => {
    const drain = new AbortController();
    setTimeout(() => drain.abort(), 50);
    const t0 = performance.now();
    const r = await post(message({ 'x-delay': '3000' }), client, 1, drain.signal);
    assert.deepEqual(r, { kind: 'aborted' });
    assert.ok(performance.now() - t0 < 3000, 'cut short at the abort, not when the app answered');
  });

  test('drain already aborted → aborted, nothing sent', async () => {
    const drain = new AbortController();
    drain.abort();
    assert.deepEqual(await post(message(), client, 0, drain.signal), { kind: 'aborted' });
  });

  test('a header value with a newline → rejected, not retried, nothing sent', async () => {
    const r = await post(message({ 'x-bad': 'line one\r\nx-injected: yes' }), client, 0);
    assert.equal(r.kind, 'rejected');
    assert.ok(r.kind === 'rejected');
    assert.match(r.error, /^message cannot be sent over HTTP: .*x-bad/);
    assert.equal(app.deliveries.filter((d) => d.headers['x-injected'] !== undefined).length, 0);
  });

  test('header text beyond Latin-1 (and the id, key, content type) reaches the app as UTF-8 bytes', async () => {
    // Regression: a foreign producer's "x-city: 東京" used to be dead-lettered `rejected` as unsendable.
    const utf8 = (v: unknown): string => Buffer.from(String(v), 'latin1').toString('utf8');
    const m = message({ 'x-city': '東京', 'x-name': 'Müller 🎉' }, { key: 'ключ', contentType: 'text/plain; title=é' });
    assert.equal((await post(m)).kind, 'delivered');
    const d = deliveriesOf(m.id)[0];
    assert.ok(d);
    assert.equal(utf8(d.headers['x-city']), '東京');
    assert.equal(utf8(d.headers['x-name']), 'Müller 🎉', 'Latin-1 text travels as UTF-8 too: one rule for every value');
    assert.equal(utf8(d.headers['x-turnout-key']), 'ключ');
    assert.equal(utf8(d.headers['content-type']), 'text/plain; title=é');
    const before = app.deliveries.length;
    assert.equal((await client.post(message({}, { id: 'id-日本' }), ctx, never)).kind, 'delivered');
    assert.equal(utf8(app.deliveries[before]?.headers['x-turnout-message-id']), 'id-日本');
  });

  test('a header name HTTP cannot carry → rejected, nothing sent', async () => {
    const r = await post(message({ 'bad name': 'v' }), client, 0);
    assert.equal(r.kind, 'rejected');
    const k = await post(message({}, { key: 'key\nwith newline' }), client, 0);
    assert.equal(k.kind, 'rejected', 'the key travels as a header too');
  });

  test('unsendable messages do not use up the connection pool (later messages still go through)', async () => {
    // Regression: undici 8.12's Pool leaked a connection slot per request it refused for a
    // header; after `connections` of them every later request hung, ignoring its abort signal.
    const small = new AppClient({ url: app.url, timeoutMs: 2_000, connections: 2 });
    const m = message();
    const sequence = async (): Promise<AttemptResult[]> => {
      const out: AttemptResult[] = [];
      for (let i = 0; i < 5; i++) out.push(await small.post(message({ 'x-bad': 'a\nb' }), ctx, never));
      out.push(await small.post(m, ctx, never));
      return out;
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const results = await Promise.race([
        sequence(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('a post hung for 3 s')), 3_000))),
      ]);
      assert.deepEqual(results.map((r) => r.kind), ['rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'delivered']);
      assert.equal(deliveriesOf(m.id).length, 1);
    } finally {
      clearTimeout(timer);
      // A wedged pool never finishes closing; do not let that hang the suite.
      await Promise.race([small.close(), new Promise((r) => setTimeout(r, 500))]);
    }
  });
});

describe('delivery: what is sent', () => {
  test('payload bytes, content type, every message header and the x-turnout- headers', async () => {
    const payload = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    const m = message({ 'x-schema-version': '2', 'x-tenant': 'acme', traceparent: '00-abc-def-01' }, { payload, contentType: 'application/x-thing', key: 'customer-7' });
    const r = await client.post(m, { attempt: 3, source: 'orders-v2', redelivered: false }, never);
    assert.deepEqual(r, { kind: 'delivered', status: 200 });
    const [d] = deliveriesOf(m.id);
    assert.ok(d);
    assert.deepEqual(d.body, payload);
    const h = d.headers;
    assert.equal(h['content-type'], 'application/x-thing');
    assert.equal(h['x-schema-version'], '2');
    assert.equal(h['x-tenant'], 'acme');
    assert.equal(h.traceparent, '00-abc-def-01');
    assert.equal(h['x-turnout-message-id'], m.id);
    assert.equal(h['x-turnout-attempt'], '3');
    assert.equal(h['x-turnout-source'], 'orders-v2');
    assert.equal(h['x-turnout-key'], 'customer-7');
    assert.equal(h['x-turnout-redelivered'], undefined);
    assert.equal(d.attempt, 3);
  });

  test('x-turnout-redelivered: true when redelivered; no x-turnout-key without a key', async () => {
    const m = message({}, { key: undefined });
    await client.post(m, { attempt: 1, source: 'orders', redelivered: true }, never);
    const [d] = deliveriesOf(m.id);
    assert.equal(d?.headers['x-turnout-redelivered'], 'true');
    assert.equal(d?.headers['x-turnout-key'], undefined);
  });

  test('no content type → application/octet-stream', async () => {
    const m = message({}, { contentType: undefined });
    await client.post(m, ctx, never);
    assert.equal(deliveriesOf(m.id)[0]?.headers['content-type'], 'application/octet-stream');
  });

  test("turnout's own headers win over same-named message headers", async () => {
    const m = message({ 'x-turnout-attempt': '99', 'x-turnout-message-id': 'forged', 'x-turnout-source': 'elsewhere', 'content-type': 'text/evil' });
    await client.post(m, ctx, never);
    const [d] = deliveriesOf(m.id);
    assert.ok(d, 'found by the real id, not the forged one');
    assert.equal(d.headers['x-turnout-attempt'], '1');
    assert.equal(d.headers['x-turnout-source'], 'orders');
    assert.equal(d.headers['content-type'], 'application/json');
  });

  test('hop-by-hop headers are not forwarded (any case), the rest is', async () => {
    const hop = {
      Host: 'evil.example', Connection: 'close', 'content-length': '99999', 'Transfer-Encoding': 'chunked', 'keep-alive': 'timeout=1',
      Upgrade: 'websocket', te: 'trailers', trailer: 'x-t', expect: '100-continue',
      'Proxy-Authorization': 'Basic c2VjcmV0', 'proxy-authenticate': 'Basic', 'proxy-connection': 'close',
    };
    const m = message({ ...hop, 'x-keep': 'yes' });
    const r = await client.post(m, ctx, never);
    assert.deepEqual(r, { kind: 'delivered', status: 200 });
    const [d] = deliveriesOf(m.id);
    assert.ok(d);
    const h = d.headers;
    assert.equal(h['x-keep'], 'yes');
    assert.equal(h.host, `127.0.0.1:${app.port}`);
    assert.notEqual(h.connection, 'close');
    assert.equal(h['content-length'], String(m.payload.length));
    assert.equal(h['transfer-encoding'], undefined);
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h.upgrade, undefined);
    assert.equal(h.te, undefined);
    assert.equal(h.trailer, undefined);
    assert.equal(h.expect, undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['proxy-authenticate'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    assert.deepEqual(d.body, m.payload);
  });

  test('posts to the path and query of the URL', async () => {
    // The test app records by header, not path: read the request line with a raw server.
    const seen: string[] = [];
    const raw = createServer((sock) => {
      sock.once('data', (b) => {
        seen.push(b.toString('latin1').split('\r\n')[0] ?? '');
        sock.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const c = new AppClient({ url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/hooks/in?token=abc`, timeoutMs: 5_000, connections: 1 });
    try {
      assert.deepEqual(await c.post(message(), ctx, never), { kind: 'delivered', status: 204 });
      assert.deepEqual(seen, ['POST /hooks/in?token=abc HTTP/1.1']);
    } finally {
      await c.close();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });
});

describe('delivery: classifyStatus', () => {
  const table: [number, StatusClass][] = [
    [200, 'delivered'], [201, 'delivered'], [202, 'delivered'], [204, 'delivered'], [299, 'delivered'],
    [415, 'unsupported'],
    [408, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry'], [504, 'retry'], [599, 'retry'],
    [400, 'rejected'], [401, 'rejected'], [403, 'rejected'], [404, 'rejected'], [405, 'rejected'], [409, 'rejected'],
    [410, 'rejected'], [413, 'rejected'], [414, 'rejected'], [416, 'rejected'], [422, 'rejected'], [499, 'rejected'],
    // Not answers an app should give: retried, ending in max-attempts, never a silent ack.
    [100, 'retry'], [199, 'retry'], [300, 'retry'], [301, 'retry'], [302, 'retry'], [304, 'retry'], [399, 'retry'],
  ];
  for (const [status, cls] of table) {
    test(`${status} → ${cls}`, () => assert.equal(classifyStatus(status), cls));
  }
});

