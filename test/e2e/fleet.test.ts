// GET /v1/info and `turnout check --fleet` over real running sidecars.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { freePort } from '../support/ports.ts';
import { runTurnout, startTurnout, type TurnoutProcess } from '../support/process.ts';

const started: TurnoutProcess[] = [];
const start = async (env: Record<string, string>, waitReady = true): Promise<TurnoutProcess> => {
  const t = await startTurnout(env, { waitReady });
  started.push(t);
  return t;
};
after(async () => {
  for (const t of started) await t.kill();
});

const info = async (t: TurnoutProcess): Promise<{ text: string; json: Record<string, unknown> }> => {
  const res = await fetch(`${t.baseUrl}/v1/info`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, json: JSON.parse(text) as Record<string, unknown> };
};

const FIELDS = ['version', 'role', 'broker', 'sources', 'versionHeader', 'defaultVersion', 'accept', 'translators', 'routes', 'dlq'].sort();

describe('GET /v1/info', () => {
  test('a router on RabbitMQ: exactly the contract fields, no password, token or URL parameter in it', async () => {
    // Nothing listens on this port: the sidecar keeps retrying the broker and answers HTTP meanwhile.
    const port = await freePort();
    const t = await start({
      TURNOUT_BROKER: `amqp://alice:S3cr3tPw0rd@127.0.0.1:${port}/orders-vh?heartbeat=5&management=http://bob:MgmtPw9@127.0.0.1:1`,
      TURNOUT_SOURCE: 'in',
      TURNOUT_BLUE: '{source}.blue',
      TURNOUT_GREEN: '{source}.green',
      TURNOUT_GREEN_WEIGHT: '25',
      TURNOUT_ADMIN_TOKEN: 'Adm1nT0kenXyz',
      TURNOUT_PUBLISH_TOKEN: 'PubT0kenXyz',
      TURNOUT_ACCEPT: '1,2',
    }, false);
    const { text, json } = await info(t);
    assert.deepEqual(Object.keys(json).sort(), FIELDS);
    for (const secret of ['S3cr3tPw0rd', 'alice', 'MgmtPw9', 'bob', 'Adm1nT0kenXyz', 'PubT0kenXyz', 'heartbeat']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
    assert.deepEqual(json, {
      version: null,
      role: 'router',
      broker: `amqp://127.0.0.1:${port}/orders-vh`,
      sources: ['in'],
      versionHeader: 'x-schema-version',
      defaultVersion: 1,
      accept: [1, 2],
      translators: json.translators,
      routes: { blue: '{source}.blue', green: '{source}.green', weight: 25 },
      dlq: null,
    });
    assert.deepEqual((json.translators as { steps: unknown }).steps, []);
  });

  test('a producer on Kafka with SASL: role, the version it stamps, brokers without the credentials', async () => {
    const port = await freePort();
    const t = await start({
      TURNOUT_BROKER: `kafka://127.0.0.1:${port}`,
      TURNOUT_KAFKA_SASL_MECHANISM: 'plain',
      TURNOUT_KAFKA_USERNAME: 'kafkaUserQ',
      TURNOUT_KAFKA_PASSWORD: 'KafkaPassw0rdQ',
      TURNOUT_PRODUCE_VERSION: '3',
    }, false);
    const { text, json } = await info(t);
    assert.deepEqual(Object.keys(json).sort(), FIELDS);
    for (const secret of ['kafkaUserQ', 'KafkaPassw0rdQ']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
    assert.equal(json.role, 'producer');
    assert.equal(json.version, 3);
    assert.equal(json.broker, `kafka://127.0.0.1:${port}`);
    assert.equal(json.accept, 'all');
    assert.equal(json.routes, null);
  });
});

describe('turnout check --fleet', () => {
  let producer: TurnoutProcess;
  let v1v2: TurnoutProcess;
  let v2only: TurnoutProcess;
  let v2withDown: TurnoutProcess;
  let other: TurnoutProcess;
  const steps = async (text: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'turnout-fleet-'));
    const file = join(dir, 'translators.yaml');
    await writeFile(file, text);
    return file;
  };

  before(async () => {
    const app = await startApp(() => 200);
    after(() => app.close());
    const consumer = (source: string, accept: string, extra: Record<string, string> = {}): Promise<TurnoutProcess> =>
      start({ TURNOUT_SOURCE: source, TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_ACCEPT: accept, ...extra });
    [producer, v1v2, v2only, v2withDown, other] = await Promise.all([
      start({ TURNOUT_PRODUCE_VERSION: '3' }),
      consumer('orders', '1,2', { TURNOUT_TRANSLATORS: await steps(`"1->2": '$'\n"2->1": '$'\n`) }),
      consumer('orders', '2'),
      consumer('orders', '2', { TURNOUT_TRANSLATORS: await steps(`"3->2": '$sift($, function($v,$k){$k != "tier"})'\n`) }),
      consumer('invoices', 'all'),
    ]);
  });

  test('a skewed fleet: the producer emits v3 and no consumer of orders takes it: exit 1, the table names consumer and version', async () => {
    const port = (t: TurnoutProcess): number => t.port;
    // dns+http://localhost:… expands to every address localhost resolves to (loopback here).
    const fleet = [producer.baseUrl, `dns+http://localhost:${port(v1v2)}`, v2only.baseUrl, other.baseUrl].join(',');
    const r = await runTurnout(['check', '--fleet', fleet]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /versions emitted: v3/);
    assert.match(r.stdout, new RegExp(`source orders: 2 consumers`));
    assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${v1v2.port}`));
    assert.match(r.stdout, new RegExp(`v3 on orders: no consumer passes or translates it \\(.*${v2only.port}.*\\)`));
    assert.match(r.stdout, /source invoices: 1 consumer/);
    const row = r.stdout.split('\n').find((l) => /^\s+v3\s+defer\s+defer\s*$/.test(l));
    assert.ok(row, `no "v3 defer defer" row in:\n${r.stdout}`);
  });

  test('a compatible fleet (one consumer translates 3->2): exit 0; --versions checks other versions', async () => {
    const r = await runTurnout(['check', '--fleet', [producer.baseUrl, v2only.baseUrl, v2withDown.baseUrl].join(',')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /v3\s+defer\s+translate via 3->2/);
    assert.match(r.stdout, /fleet is compatible/);
    const v = await runTurnout(['check', '--fleet', [v1v2.baseUrl, v2only.baseUrl].join(','), '--versions', '1,2']);
    assert.equal(v.code, 0, v.stdout);
    assert.match(v.stdout, /v1\s+pass\s+defer/);
    assert.match(v.stdout, /v2\s+pass\s+pass/);
  });

  test('a sidecar that cannot be read is exit 1, naming it', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await runTurnout(['check', '--fleet', [v2withDown.baseUrl, dead].join(','), '--versions', '2']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`cannot read ${dead.replace(/\./g, '\\.')}`));
  });
});
