// Throttling and 5xx from SQS are retried with backoff: a proxy in front of
// fauxqs answers half of all first attempts with 503 or a ThrottlingException,
// and every message must still be published and consumed exactly once.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BrokerError, type BrokerAdapter, type Message } from '../../../adapters/broker.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator, type Emulator } from './fauxqs.ts';

interface Faulty {
  url: string;
  /** While true, every request is answered 503. */
  down: boolean;
  injected: { throttled: number; unavailable: number };
  retriesSeen: number;
  close(): Promise<void>;
}

async function faultyProxy(target: string): Promise<Faulty> {
  const t = new URL(target);
  const injected = { throttled: 0, unavailable: 0 };
  let retriesSeen = 0;
  let n = 0;
  const state = { down: false };
  const server: Server = createServer((req, res) => {
    if (state.down) {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#ServiceUnavailable', message: 'outage' }));
      return;
    }
    const attempt = /attempt=(\d+)/.exec(String(req.headers['amz-sdk-request'] ?? ''))?.[1] ?? '1';
    if (attempt !== '1') retriesSeen++;
    // Only first attempts fail, so the SDK's retry always gets through: what is tested is that it retries.
    if (attempt === '1' && n++ % 2 === 0) {
      req.resume();
      if (n % 4 === 1) {
        injected.unavailable++;
        res.writeHead(503, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#ServiceUnavailable', message: 'injected' }));
      } else {
        injected.throttled++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'ThrottlingException;Sender' });
        res.end(JSON.stringify({ __type: 'com.amazon.coral.availability#ThrottlingException', message: 'Rate exceeded' }));
      }
      return;
    }
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    injected,
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
    get retriesSeen() {
      return retriesSeen;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('sqs: throttling and 5xx are retried', () => {
  let emu: Emulator;
  let proxy: Faulty;
  let a: BrokerAdapter;

  before(async () => {
    emu = await startEmulator();
    proxy = await faultyProxy(emu.url);
    // The SDK reads its endpoint lazily, so the variable stays pointed at the proxy for this file.
    process.env.AWS_ENDPOINT_URL_SQS = proxy.url;
    a = sqsAdapter({}, { waitTimeSeconds: 1 });
    await a.connect();
  });
  after(async () => {
    await a.close();
    await proxy.close();
    await emu.stop();
  });

  test('every message published and consumed exactly once through injected failures', async () => {
    const q = emu.name('faulty');
    await emu.createQueue(q);
    const ids = new Set<string>();
    await Promise.all(
      Array.from({ length: 60 }, async () => {
        const m: Message = { id: randomUUID(), payload: Buffer.from('{}'), headers: { 'x-schema-version': '1' } };
        ids.add(m.id);
        await a.publish(q, m);
      }),
    );
    const tally = new Tally();
    const sub = await a.consume(q, async (m) => {
      tally.record('consumed', m.id);
      return { kind: 'ack' };
    }, { prefetch: 10 });
    await waitFor('60 consumed', () => tally.ids('consumed').size === 60, 30_000);
    await sleep(1_000);
    await sub.stop();
    assert.deepEqual(tally.missing(ids), []);
    assert.deepEqual(tally.duplicates(), []);
    await waitFor('the deletes to land', async () => {
      const c = await emu.counts(q);
      return c.visible === 0 && c.inflight === 0;
    }, 10_000);
    assert.ok(proxy.injected.throttled > 0 && proxy.injected.unavailable > 0, JSON.stringify(proxy.injected));
    assert.ok(proxy.retriesSeen >= proxy.injected.throttled + proxy.injected.unavailable, `retries ${proxy.retriesSeen}, injected ${JSON.stringify(proxy.injected)}`);
    assert.equal(a.isUp(), true);
  });

  test('an outage: publish fails with unavailable and isUp turns false; both recover, nothing lost', async () => {
    const q = emu.name('outage');
    await emu.createQueue(q);
    const tally = new Tally();
    const sub = await a.consume(q, async (m) => {
      tally.record('consumed', m.id);
      return { kind: 'ack' };
    }, { prefetch: 4 });
    proxy.down = true;
    const lost: Message = { id: randomUUID(), payload: Buffer.from('{}'), headers: {} };
    // Unconfirmed: which of the SDK's attempts reached SQS cannot be told from the last one's answer, so /v1/publish says 504 (it may be there).
    await assert.rejects(a.publish(q, lost), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable' && err.unconfirmed);
    await waitFor('isUp false', () => !a.isUp(), 15_000, 50);
    proxy.down = false;
    await waitFor('isUp true again', () => a.isUp(), 15_000, 50);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const m: Message = { id: randomUUID(), payload: Buffer.from('{}'), headers: {} };
      ids.push(m.id);
      await a.publish(q, m);
    }
    await waitFor('ten consumed', () => tally.ids('consumed').size === 10, 20_000);
    await sleep(500);
    await sub.stop();
    assert.deepEqual(tally.missing(ids), []);
    assert.deepEqual(tally.duplicates(), []);
    assert.deepEqual(tally.placesOf(lost.id), {}, 'the refused publish did not land');
  });
});
