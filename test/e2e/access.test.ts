// Publish access from a peer that is really not on loopback: a network
// namespace of the test's own (test/support/netns.ts) reaches the sidecar
// over a veth pair. Publishing from there needs TURNOUT_PUBLISH_TOKEN (403
// otherwise, and 403 always when none is configured); loopback peers, in
// every spelling (127.0.0.1, ::1, ::ffff:127.0.0.1 on a dual-stack socket),
// publish without one; TURNOUT_PUBLISH_QUEUES limits /v1/publish/{queue} for
// everyone; probes, metrics and the read-only routes stay open; admin writes
// keep their own token. Every accepted message is counted in its queue, and
// every refused one is absent from all of them.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createNetns, fetchFromNetns, type Netns, type NsRequest, type NsResponse } from '../support/netns.ts';
import { depthOf, publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';

let ns: Netns;
before(() => {
  ns = createNetns();
});
after(() => {
  ns.remove();
});

const json = (body: string): Record<string, unknown> => JSON.parse(body) as Record<string, unknown>;
type Headers = Record<string, string>;

describe('with TURNOUT_PUBLISH_TOKEN and TURNOUT_PUBLISH_QUEUES, on a dual-stack socket (::)', () => {
  const publishToken = `pub-${randomBytes(12).toString('hex')}`;
  const adminToken = `adm-${randomBytes(12).toString('hex')}`;
  let t: TurnoutProcess;
  let remote: string;
  const accepted = { response_a: 0, response_b: 0, orders: 0 };

  before(async () => {
    t = await startTurnout({
      TURNOUT_HOST: '::',
      TURNOUT_BLUE: 'response_a',
      TURNOUT_GREEN: 'orders',
      TURNOUT_DLQ: 'response_b',
      TURNOUT_PUBLISH_TOKEN: publishToken,
      TURNOUT_ADMIN_TOKEN: adminToken,
      TURNOUT_PUBLISH_QUEUES: 'response_*',
    });
    remote = `http://${ns.hostAddress}:${t.port}`;
  });
  after(async () => {
    assert.equal(await t.stop(), 0);
  });

  const req = (path: string, headers: Headers = {}, method = 'POST', body = '{"n":1}'): NsRequest =>
    ({ url: `${remote}${path}`, method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'GET' ? undefined : body });
  const fromNs = async (...requests: NsRequest[]): Promise<NsResponse[]> => fetchFromNetns(ns, requests);

  test('from the namespace, publishing without the token, with a wrong one, or with the admin token is 403, and the answer does not echo a token', async () => {
    const tries: Headers[] = [{}, { authorization: `Bearer ${publishToken}x` }, { authorization: `Bearer ${publishToken.slice(0, -1)}` }, { authorization: publishToken }, { authorization: `Bearer ${adminToken}` }];
    const requests = tries.flatMap((headers) => ['/v1/publish', '/v1/publish/response_a'].map((path) => req(path, headers)));
    const answers = await fromNs(...requests);
    answers.forEach((r, i) => {
      assert.equal(r.status, 403, JSON.stringify(requests[i]));
      assert.match(String(json(r.body).error), /Authorization: Bearer <TURNOUT_PUBLISH_TOKEN>/);
      assert.ok(!r.body.includes(publishToken) && !r.body.includes(adminToken), r.body);
    });
    assert.equal(answers.length, 10);
  });

  test('from the namespace with the token: /v1/publish and an allowed queue are 202; a queue outside TURNOUT_PUBLISH_QUEUES is 403 naming it', async () => {
    const auth = { authorization: `Bearer ${publishToken}` };
    const [routed, direct, outside] = await fromNs(req('/v1/publish', auth), req('/v1/publish/response_b', auth), req('/v1/publish/orders', auth));
    assert.ok(routed && direct && outside);
    assert.equal(routed.status, 202, routed.body);
    assert.equal(json(routed.body).queue, 'response_a');
    accepted.response_a++;
    assert.equal(direct.status, 202, direct.body);
    accepted.response_b++;
    assert.equal(outside.status, 403);
    assert.equal(json(outside.body).error, 'queue "orders" is not one TURNOUT_PUBLISH_QUEUES lets POST /v1/publish/{queue} reach (response_*)');
  });

  test('loopback peers publish without a token: 127.0.0.1 (seen as ::ffff:127.0.0.1 here) and [::1]; the queue list still applies', async () => {
    for (const base of [t.baseUrl, `http://[::1]:${t.port}`]) {
      const r = await publishVia(base, '{"n":2}');
      assert.equal(r.status, 202, `${base}: ${JSON.stringify(r.json)}`);
      accepted.response_a++;
      const d = await publishVia(base, '{"n":3}', {}, 'response_b');
      assert.equal(d.status, 202, `${base}: ${JSON.stringify(d.json)}`);
      accepted.response_b++;
      const outside = await publishVia(base, '{"n":4}', {}, 'orders');
      assert.equal(outside.status, 403, base);
      assert.match(String(outside.json.error), /TURNOUT_PUBLISH_QUEUES/);
    }
  });

  test('health, readiness, metrics and the read-only routes answer the namespace without a token', async () => {
    const paths = ['/healthz', '/readyz', '/metrics', '/v1/routes', '/v1/queues/response_a'];
    const answers = await fromNs(...paths.map((p) => req(p, {}, 'GET')));
    assert.deepEqual(answers.map((r) => r.status), paths.map(() => 200), JSON.stringify(answers.map((r) => r.body.slice(0, 200))));
  });

  test('admin writes from the namespace keep their rules: 401 without the admin token (the publish token does not open them), 200 with it', async () => {
    const [none, publishOnly, ok] = await fromNs(
      req('/v1/routes/green-weight', {}, 'PUT', '{"weight":0}'),
      req('/v1/routes/green-weight', { authorization: `Bearer ${publishToken}` }, 'PUT', '{"weight":0}'),
      req('/v1/routes/green-weight', { authorization: `Bearer ${adminToken}` }, 'PUT', '{"weight":0}'),
    );
    assert.ok(none && publishOnly && ok);
    assert.equal(none.status, 401);
    assert.equal(publishOnly.status, 401);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(json(ok.body), { greenWeight: 0, previous: 0 });
  });

  test('every accepted message is in its queue and no refused one is anywhere', async () => {
    for (const [queue, n] of Object.entries(accepted)) assert.equal(await depthOf(t.baseUrl, queue), n, queue);
    assert.deepEqual(accepted, { response_a: 3, response_b: 3, orders: 0 });
  });
});

describe('without TURNOUT_PUBLISH_TOKEN, on 0.0.0.0: loopback peers only', () => {
  let t: TurnoutProcess;
  let remote: string;

  before(async () => {
    t = await startTurnout({ TURNOUT_HOST: '0.0.0.0', TURNOUT_BLUE: 'blue' });
    remote = `http://${ns.hostAddress}:${t.port}`;
  });
  after(async () => {
    assert.equal(await t.stop(), 0);
  });

  test('the namespace gets 403 for every publish, any bearer token or none, told how to open it', async () => {
    const tries: Headers[] = [{}, { authorization: 'Bearer anything' }];
    const requests = tries.flatMap((headers) => ['/v1/publish', '/v1/publish/blue'].map((path): NsRequest => ({ url: `${remote}${path}`, method: 'POST', headers, body: '{}' })));
    const answers = await fetchFromNetns(ns, requests);
    assert.equal(answers.length, 4);
    for (const r of answers) {
      assert.equal(r.status, 403, r.body);
      assert.match(String(json(r.body).error), /loopback peers only.*TURNOUT_PUBLISH_TOKEN/);
    }
  });

  test('the namespace still reads health, readiness, metrics and routes; admin writes are 403 (no admin token configured)', async () => {
    const paths = ['/healthz', '/readyz', '/metrics', '/v1/routes', '/v1/queues/blue'];
    const answers = await fetchFromNetns(ns, [
      ...paths.map((p): NsRequest => ({ url: `${remote}${p}` })),
      { url: `${remote}/v1/routes/green-weight`, method: 'PUT', headers: { authorization: 'Bearer x' }, body: '{"weight":5}' },
    ]);
    assert.deepEqual(answers.map((r) => r.status), [...paths.map(() => 200), 403]);
  });

  test('127.0.0.1 publishes; only that message is in the queue', async () => {
    const r = await publishVia(t.baseUrl, '{"n":1}');
    assert.equal(r.status, 202);
    assert.equal(await depthOf(t.baseUrl, 'blue'), 1);
  });
});
