// Secrets and payloads stay out of logs (issue 11, item 7). Real turnout
// processes run through a session with every secret set: the admin and
// publish tokens, broker passwords (inside the AMQP URL, the Kafka SASL
// password) and the AWS secret key; messages are published, delivered,
// rejected, retried to max-attempts, dead-lettered and fail to translate;
// the broker is unreachable, refuses the password, or the configuration is
// invalid. Every line of output of every run, `turnout check` included, is
// searched for each secret (as written, JSON-escaped and percent-encoded)
// and for a marker that every payload carries.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../support/app.ts';
import { freePort } from '../support/ports.ts';
import { depthOf, publishVia, runTurnout, startTurnout } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

const tag = randomBytes(4).toString('hex');
const SECRETS = {
  admin: `adm1n-t0ken-${tag}`,
  publish: `pub-t0ken-${tag}`,
  // Characters that JSON escapes and a URL percent-encodes.
  amqp: `amqp"pa\\ss/w0rd ${tag}`,
  kafka: `kafka-pa55-${tag}`,
  aws: `aws-secret-${tag}`,
};
const MARKER = `payload-marker-${tag}`;

/** Every form a secret could take in a log line or a message. */
function forms(s: string): string[] {
  return [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s)];
}

/** Asserts that no secret (in any form) and no payload marker occurs in `text`. */
function assertClean(what: string, text: string): void {
  assert.ok(text.length > 0, `${what}: no output to check`);
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const f of forms(secret)) {
      const at = text.indexOf(f);
      assert.equal(at, -1, `${what}: the ${name} secret appears: …${text.slice(Math.max(0, at - 200), at + 100)}…`);
    }
  }
  const at = text.indexOf(MARKER);
  assert.equal(at, -1, `${what}: payload bytes appear: …${text.slice(Math.max(0, at - 200), at + 100)}…`);
}

/** Every log line is JSON at info or above (TURNOUT_LOG_LEVEL=info): nothing below info is kept to be searched. */
function assertInfoAndAbove(output: string): void {
  for (const line of output.split('\n').filter((l) => l.startsWith('{'))) {
    const level = (JSON.parse(line) as { level?: string }).level;
    assert.ok(level === 'info' || level === 'warn' || level === 'error' || level === 'fatal', line);
  }
}

const SECRET_ENV = {
  TURNOUT_ADMIN_TOKEN: SECRETS.admin,
  // Not an option of this version (only warned about as unknown); its value must stay out of the warning.
  TURNOUT_PUBLISH_TOKEN: SECRETS.publish,
  TURNOUT_KAFKA_USERNAME: 'turnout',
  TURNOUT_KAFKA_PASSWORD: SECRETS.kafka,
  AWS_SECRET_ACCESS_KEY: SECRETS.aws,
};
const amqpUrl = (port: number): string => `amqp://guest:${encodeURIComponent(SECRETS.amqp)}@127.0.0.1:${port}/`;

describe('secrets and payloads stay out of logs and output', () => {
  let dir: string;
  let translators: string;
  let app: TestApp;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'turnout-secrets-'));
    translators = join(dir, 'translators.yaml');
    // 1->2 copies the payload into a JSONata error text (D3030 quotes the value); 3->2 throws; 4->2 loops.
    await writeFile(translators, `"1->2": '$merge([$, {"n": $number(card)}])'\n"3->2": '$error("no layout for this message")'\n"4->2": '($f := function($n){ $f($n+1) }; $f(0))'\n`);
    app = await startApp((d) => {
      if (d.id.startsWith('reject')) return { status: 400, body: 'the app does not take this one' };
      if (d.id.startsWith('fail')) return 503;
      return 200;
    });
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a whole session on the embedded broker: publish, deliver, reject, max-attempts, translate errors and timeout, too large, admin calls, drain', async () => {
    const t = await startTurnout({
      ...SECRET_ENV,
      TURNOUT_SOURCE: 'in',
      TURNOUT_DLQ: 'dead',
      TURNOUT_APP_URL: app.url,
      TURNOUT_ACCEPT: '2',
      TURNOUT_TRANSLATORS: translators,
      TURNOUT_TRANSLATE_TIMEOUT: '300',
      TURNOUT_MAX_ATTEMPTS: '2',
      TURNOUT_RETRY_BACKOFF: '1',
      TURNOUT_MAX_MESSAGE_BYTES: '2048',
    });
    let code: number | string = -1;
    try {
      const send = async (id: string, version: string, body: string): Promise<number> =>
        (await publishVia(t.baseUrl, body, { 'x-turnout-message-id': id, 'x-schema-version': version, 'x-note': MARKER, authorization: `Bearer ${SECRETS.publish}` }, 'in')).status;
      const payload = JSON.stringify({ card: MARKER, note: `${MARKER} "quoted" \\ ${MARKER}` });
      assert.equal(await send('ok', '2', payload), 202);
      assert.equal(await send('reject', '2', payload), 202);
      assert.equal(await send('fail', '2', payload), 202);
      assert.equal(await send('cast', '1', payload), 202);
      assert.equal(await send('throws', '3', payload), 202);
      assert.equal(await send('loops', '4', payload), 202);
      assert.equal(await send('not-json', '1', `{"card": ${MARKER}`), 202);
      assert.equal(await send('too-big', '2', `${MARKER}`.repeat(200)), 413);
      await waitFor('1 delivered, 6 dead-lettered', async () => app.accepted.size === 1 && (await depthOf(t.baseUrl, 'dead')) === 6, 20_000);
      const reasons = Object.fromEntries(t.logs().filter((l) => l.msg === 'dead-lettered').map((l) => [String(l.id), l.reason]));
      assert.deepEqual(reasons, { reject: 'rejected', fail: 'max-attempts', cast: 'translate-error', throws: 'translate-error', loops: 'translate-error', 'not-json': 'translate-error' });
      // Admin writes with a wrong and the right token (no routes here: only the answer's status matters).
      const wrong = await fetch(`${t.baseUrl}/v1/routes/green-weight`, { method: 'PUT', headers: { authorization: `Bearer ${SECRETS.admin}x` }, body: '{"weight": 5}' });
      assert.equal(wrong.status, 401);
      const right = await fetch(`${t.baseUrl}/v1/routes/green-weight`, { method: 'PUT', headers: { authorization: `Bearer ${SECRETS.admin}` }, body: '{"weight": 5}' });
      assert.notEqual(right.status, 401);
      await right.arrayBuffer();
    } finally {
      code = await t.stop();
    }
    assert.equal(code, 0);
    const out = t.output();
    // The publish token is an option (not an unknown variable), so it is scrubbed as a secret of the config.
    assert.ok(!t.logs().some((l) => String(l.msg).includes('unknown variable TURNOUT_PUBLISH_TOKEN')), 'TURNOUT_PUBLISH_TOKEN is an option of this version');
    assertInfoAndAbove(out);
    assertClean('the session log', out);
  });

  test('broker unreachable (AMQP URL with a password, Kafka with SASL): the retry logs', async () => {
    const runs: Record<string, string>[] = [
      { TURNOUT_BROKER: amqpUrl(await freePort()) },
      { TURNOUT_BROKER: `kafka://127.0.0.1:${await freePort()}`, TURNOUT_KAFKA_SASL_MECHANISM: 'plain' },
    ];
    for (const env of runs) {
      const t = await startTurnout({ ...SECRET_ENV, ...env }, { waitReady: false });
      try {
        await waitFor('two failed connection attempts logged', () => t.logs().filter((l) => l.level === 'warn' && /connect/.test(String(l.msg))).length >= 2, 30_000);
      } finally {
        await t.stop();
      }
      assertInfoAndAbove(t.output());
      assertClean(`unreachable ${String(env.TURNOUT_BROKER).split(':')[0]}`, t.output());
    }
  });

  test('RabbitMQ refuses the password: the error message and exit code 2', async () => {
    const r = await runTurnout(['run'], { ...SECRET_ENV, TURNOUT_BROKER: amqpUrl(5672), TURNOUT_PORT: '0', TURNOUT_HOST: '127.0.0.1' }, 60_000);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /invalid configuration: TURNOUT_BROKER: .*(ACCESS[-_]REFUSED|403)/);
    assertClean('the refused login', r.stdout + r.stderr);
  });

  test('configuration errors never echo a secret or a URL password', async () => {
    const cases: Record<string, string>[] = [
      { TURNOUT_BROKER: `amqp://guest:${encodeURIComponent(SECRETS.amqp)}@127.0.0.1:notaport/` },
      { TURNOUT_BROKER: `kafka://guest:${encodeURIComponent(SECRETS.amqp)}@127.0.0.1:9092` },
      { TURNOUT_ADMIN_TOKEN: ' \t ' },
      { TURNOUT_KAFKA_SASL_MECHANISM: SECRETS.kafka },
    ];
    for (const env of cases) {
      const r = await runTurnout(['run'], { ...SECRET_ENV, ...env });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /invalid configuration/);
      // The mechanism is no secret, so a value put there shows as written: proof that the check sees
      // what is there.
      if (env.TURNOUT_KAFKA_SASL_MECHANISM !== undefined) {
        assert.throws(() => assertClean('a value in a variable that is no secret', r.stderr), /the kafka secret appears/);
        continue;
      }
      assertClean(`config error ${Object.keys(env).join(',')}`, r.stdout + r.stderr);
    }
    const r = await runTurnout(['run'], { ...SECRET_ENV, TURNOUT_ADMIN_TOKEN: ' ' });
    assert.match(r.stderr, /TURNOUT_ADMIN_TOKEN=\(a secret, not shown\) must not be empty/);
  });

  test('turnout check, with a sample whose translation fails', async () => {
    const sample = join(dir, 'sample.json');
    await writeFile(sample, JSON.stringify({ card: MARKER }));
    const r = await runTurnout(['check', '--sample', sample, '--versions', '1,3'], { ...SECRET_ENV, TURNOUT_BROKER: amqpUrl(5672), TURNOUT_TRANSLATORS: translators, TURNOUT_ACCEPT: '2' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /sample → ERROR: step 1->2 failed: Unable to cast value to a number: …/);
    assert.match(r.stdout, /sample → ERROR: step 3->2 failed: no layout for this message/);
    assertClean('turnout check', r.stdout + r.stderr);
  });
});
