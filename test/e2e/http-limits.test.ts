// The HTTP limits against the real process, with raw sockets: a client that
// is too slow (slow-loris headers, an idle connection, a dribbled body) gets
// 408, one with too many or too large headers 431, one past the connection
// cap 503, and each is disconnected; meanwhile everyone else is served,
// /healthz keeps answering, and every accepted publish is in the queue while
// no refused one is.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { depthOf, publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';
import { holdConnection, rawExchange, type HeldConnection, type RawResult } from '../support/raw-http.ts';
import { waitFor } from '../support/wait.ts';

const HEADERS_TIMEOUT = 1000;
const REQUEST_TIMEOUT = 2500;
/** How late the 408 may come: node checks every 100 ms here; the rest is a loaded machine. */
const SLACK = 3000;

const publishRequest = (extra: string[] = [], body = '{"n":1}'): string =>
  ['POST /v1/publish HTTP/1.1', 'Host: turnout', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, ...extra, 'Connection: close', '', body].join('\r\n');

describe('timeouts and header limits', () => {
  let t: TurnoutProcess;
  let accepted = 0;

  before(async () => {
    t = await startTurnout({
      TURNOUT_BLUE: 'blue',
      TURNOUT_HTTP_HEADERS_TIMEOUT: String(HEADERS_TIMEOUT),
      TURNOUT_HTTP_REQUEST_TIMEOUT: String(REQUEST_TIMEOUT),
      TURNOUT_HTTP_MAX_HEADERS: '20',
      TURNOUT_HTTP_MAX_HEADER_BYTES: '4096',
    });
  });
  after(async () => {
    assert.equal(await t.stop(), 0);
  });

  test('slow-loris clients (headers a byte every 100 ms) get 408 and are cut off after the headers timeout, while others are served and /healthz answers', async () => {
    const loris = Array.from({ length: 6 }, () =>
      rawExchange(t.port, { send: 'POST /v1/publish HTTP/1.1\r\nHost: turnout\r\n', dribble: 'X-Slow: aaaaaaaaaaaaaaaa\r\n', everyMs: 100 }));
    const idle = rawExchange(t.port, {});
    let done = false;
    const settled = Promise.all([...loris, idle]).finally(() => (done = true));
    let healthy = 0;
    let slowest = 0;
    while (!done) {
      const started = Date.now();
      assert.equal((await fetch(`${t.baseUrl}/healthz`)).status, 200);
      slowest = Math.max(slowest, Date.now() - started);
      healthy++;
      const r = await publishVia(t.baseUrl, `{"during":${healthy}}`);
      assert.equal(r.status, 202);
      accepted++;
      await sleep(50);
    }
    for (const r of [...(await settled)]) {
      assert.equal(r.status, 408, JSON.stringify(r.text));
      assert.match(r.text, /\r\nConnection: close\r\n/i);
      assert.ok(r.closed, 'the server closed the connection');
      assert.ok(r.ms >= HEADERS_TIMEOUT - 100 && r.ms <= HEADERS_TIMEOUT + SLACK, `closed after ${r.ms} ms`);
    }
    assert.ok(healthy >= 3, `only ${healthy} health checks while the slow clients were connected`);
    assert.ok(slowest < 1000, `/healthz took ${slowest} ms during the attack`);
  });

  test('a body dribbled slower than the request timeout: 408, disconnected, nothing published', async () => {
    const before = await depthOf(t.baseUrl, 'blue');
    const r = await rawExchange(t.port, {
      send: 'POST /v1/publish HTTP/1.1\r\nHost: turnout\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"slow":"',
      dribble: 'x',
      everyMs: 200,
    });
    assert.equal(r.status, 408, JSON.stringify(r.text));
    assert.ok(r.closed);
    assert.ok(r.ms >= REQUEST_TIMEOUT - 100 && r.ms <= REQUEST_TIMEOUT + SLACK, `closed after ${r.ms} ms`);
    assert.equal(await depthOf(t.baseUrl, 'blue'), before);
  });

  test('more header lines than TURNOUT_HTTP_MAX_HEADERS: 431 and disconnected; exactly the cap is served', async () => {
    // Host, Content-Type, Content-Length and Connection count too: 16 more make 20.
    const atCap = await rawExchange(t.port, { send: publishRequest(Array.from({ length: 16 }, (_, i) => `x-h${i}: ${i}`)) });
    assert.equal(atCap.status, 202, atCap.text);
    accepted++;
    for (const extra of [17, 1000, 5000]) {
      const r = await rawExchange(t.port, { send: publishRequest(Array.from({ length: extra }, (_, i) => `x-h${i}: ${i}`)) });
      assert.equal(r.status, 431, `${extra} extra headers: ${JSON.stringify(r.text.slice(0, 200))}`);
      assert.ok(r.closed && r.ms < SLACK, `${extra}: closed after ${r.ms} ms`);
    }
  });

  test('headers larger than TURNOUT_HTTP_MAX_HEADER_BYTES: 431 and disconnected; large ones under it are served', async () => {
    const under = await rawExchange(t.port, { send: publishRequest([`x-big: ${'a'.repeat(3000)}`]) });
    assert.equal(under.status, 202, under.text);
    accepted++;
    for (const size of [5000, 100_000]) {
      const r = await rawExchange(t.port, { send: publishRequest([`x-big: ${'a'.repeat(size)}`]) });
      assert.equal(r.status, 431, `${size}: ${JSON.stringify(r.text.slice(0, 200))}`);
      assert.ok(r.closed && r.ms < SLACK, `${size}: closed after ${r.ms} ms`);
    }
    // Spread over many lines, under the count cap.
    const many = await rawExchange(t.port, { send: publishRequest(Array.from({ length: 10 }, (_, i) => `x-h${i}: ${'b'.repeat(500)}`)) });
    assert.equal(many.status, 431);
  });

  test('afterwards the process serves as before, and the queue holds exactly the accepted messages', async () => {
    assert.equal((await fetch(`${t.baseUrl}/healthz`)).status, 200);
    assert.equal((await publishVia(t.baseUrl, '{"after":1}')).status, 202);
    accepted++;
    assert.equal(await depthOf(t.baseUrl, 'blue'), accepted);
    assert.equal(t.child.exitCode, null, 'still running');
  });
});

describe('the connection cap', () => {
  const CAP = 4;
  const RESERVE = 64; // src/http/limits.ts SHED_RESERVE
  let t: TurnoutProcess;
  const held: HeldConnection[] = [];
  const shed: HeldConnection[] = [];

  // Raw requests that close their connection: fetch would keep one open in its pool, and it would count.
  const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: turnout\r\n\r\n`;
  const once = (path: string): Promise<RawResult> => rawExchange(t.port, { send: get(path).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n') });
  const depth = async (): Promise<number> => {
    const r = await once('/v1/queues/blue');
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { depth: number }).depth;
  };

  before(async () => {
    // Long timeouts: the held connections must outlive the test.
    t = await startTurnout({ TURNOUT_BLUE: 'blue', TURNOUT_HTTP_MAX_CONNECTIONS: String(CAP), TURNOUT_HTTP_HEADERS_TIMEOUT: '30000', TURNOUT_HTTP_REQUEST_TIMEOUT: '30000' }, { waitReady: false });
    await waitFor('turnout to be ready', async () => (await once('/readyz')).status === 200);
    await sleep(100); // the server has seen those connections close
  });
  after(async () => {
    for (const c of [...held, ...shed]) c.close();
    assert.equal(await t.stop(), 0);
  });

  test('past the cap a connection gets 503 (retry-after, closed) and publishes nothing; probes are still answered; connections within the cap keep being served', async () => {
    for (let i = 0; i < CAP; i++) held.push(await holdConnection(t.port));
    for (const c of held) {
      const r = await c.request(get('/healthz'));
      assert.equal(r.status, 200);
      assert.doesNotMatch(r.headers, /\r\nconnection: close/i, 'within the cap, the connection is kept alive');
    }

    const refused = await rawExchange(t.port, { send: get('/v1/routes') });
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.text, /\r\nretry-after: 1\r\n/i);
    assert.match(refused.text, /\r\nconnection: close\r\n/i);
    assert.match(refused.text, /too many open connections \(TURNOUT_HTTP_MAX_CONNECTIONS=4\)/);
    assert.ok(refused.closed);

    const publish = await rawExchange(t.port, { send: publishRequest() });
    assert.equal(publish.status, 503);

    for (const probe of ['/healthz', '/readyz']) {
      const r = await rawExchange(t.port, { send: get(probe) });
      assert.equal(r.status, 200, `${probe}: ${r.text}`);
      assert.ok(r.closed, `${probe}: the connection past the cap is closed after the answer`);
    }

    const ok = await held[0]!.request(publishRequest().replace('Connection: close', 'X-Held: 1'));
    assert.equal(ok.status, 202, ok.body);
    assert.equal((await held[1]!.request(get('/v1/routes'))).status, 200);
    const warnings = t.logs().filter((l) => String(l.msg).startsWith('HTTP connection cap reached'));
    assert.equal(warnings.length, 1, 'one warning, not one per connection');
  });

  test(`${RESERVE} connections past the cap are kept to be answered; beyond those, new connections are closed at once`, async () => {
    await sleep(100); // the refused connections of the last test are closed on the server's side too
    for (let i = 0; i < RESERVE; i++) shed.push(await holdConnection(t.port));
    const dropped = await rawExchange(t.port, { send: get('/healthz'), timeoutMs: 5000 });
    assert.equal(dropped.text, '', 'no answer at all');
    assert.ok(dropped.closed, 'closed by the server');
    // One within the reserve still gets its probe answered, and is then closed.
    assert.equal((await shed[0]!.request(get('/healthz'))).status, 200);
    await shed[0]!.closedWithin(5000);
    assert.equal((await shed[1]!.request(get('/v1/routes'))).status, 503);
  });

  test('when connections close, new ones are served normally again; only the held connection\'s message was published', async () => {
    for (const c of [...held, ...shed]) c.close();
    await Promise.all([...held, ...shed].map((c) => c.closed));
    await waitFor('a new connection to be served', async () => (await once('/v1/routes')).status === 200);
    const r = await rawExchange(t.port, { send: publishRequest() });
    assert.equal(r.status, 202, r.text);
    assert.equal(await depth(), 2);
  });
});
