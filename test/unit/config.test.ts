import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../config/errors.ts';
import { loadConfig, type FlagValues } from '../../config/load.ts';
import { expandTarget } from '../../lib/targets.ts';
import { isSecretOption, redactUrls, shownValue } from '../../config/redact.ts';
import { envName, parseOption, schema, type OptionName } from '../../config/schema.ts';
import { scrubber, secretsOf } from '../../config/secrets.ts';

// A source needs somewhere to send messages (cross-checks); everything else loads alone.
const company = (name: OptionName): FlagValues => (name === 'source' ? { appUrl: 'http://127.0.0.1:1/m', dlq: 'dead' } : {});
/** Loads with only this option set (as a variable, or as a flag). */
const viaEnv = (name: OptionName, raw: string): unknown => loadConfig(company(name), { [envName(schema[name].flag)]: raw }).config[name];
const viaFlag = (name: OptionName, raw: string): unknown => loadConfig({ ...company(name), [name]: raw }, {}).config[name];

function assertConfigError(fn: () => unknown, variable: string, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `"${err.message}" should contain "${p}"`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

type Case = { good: [string, unknown][]; bad: [string, (string | RegExp)?][] };

// Every option's parser: good values (raw → parsed) and bad ones (with a bit of the reason).
// Options whose raw values only matter with TURNOUT_SOURCE set are fine here: cross-checks need a source.
const cases: Partial<Record<OptionName, Case>> = {
  broker: {
    good: [
      ['memory', { kind: 'memory' }],
      [' sqs ', { kind: 'sqs' }],
      ['amqp://guest:guest@rabbit:5672/vhost', { kind: 'amqp', url: 'amqp://guest:guest@rabbit:5672/vhost' }],
      ['amqps://rabbit.example', { kind: 'amqp', url: 'amqps://rabbit.example' }],
      ['kafka://k1:9092', { kind: 'kafka', brokers: ['k1:9092'] }],
      ['kafka://k1:9092, k2:9093', { kind: 'kafka', brokers: ['k1:9092', 'k2:9093'] }],
    ],
    bad: [['rabbit'], ['amqp://'], ['amqp://[::1'], ['kafka://'], ['kafka://k1', 'host:port'], ['kafka://k1:9092,k2', '"k2" must be host:port'], ['kafka://k1:abc'], ['Memory'], ['http://x']],
  },
  source: { good: [['orders', ['orders']], [' a, b ,,c ', ['a', 'b', 'c']]], bad: [[' , ', 'at least one']] },
  group: { good: [['g1', 'g1'], [' {source}-grp ', '{source}-grp']], bad: [['   ', 'must not be empty']] },
  appUrl: {
    good: [['http://127.0.0.1:8080/messages', 'http://127.0.0.1:8080/messages'], ['https://app.svc/x?y=1', 'https://app.svc/x?y=1']],
    bad: [['ftp://app/x'], ['app:8080'], ['not a url'], ['/messages']],
  },
  blue: { good: [['orders-blue', 'orders-blue'], ['{source}.v1', '{source}.v1']], bad: [[' ', 'must not be empty']] },
  green: { good: [['orders-green', 'orders-green']], bad: [['\t', 'must not be empty']] },
  greenWeight: { good: [['0', 0], ['12.5', 12.5], ['100', 100], [' 33.3 ', 33.3]], bad: [['-1'], ['101'], ['100.5'], ['abc'], ['50%'], ['.5'], ['1e2']] },
  weightFile: { good: [['/etc/turnout/weight', '/etc/turnout/weight']], bad: [['  ', 'must not be empty']] },
  routeKey: {
    good: [
      ['key', { kind: 'key' }],
      ['header:X-Tenant', { kind: 'header', name: 'x-tenant' }],
      ['json:customer.id', { kind: 'json', path: ['customer', 'id'] }],
      ['json:id', { kind: 'json', path: ['id'] }],
    ],
    bad: [['hash'], ['header:'], ['json:'], ['json:a..b', 'dotted names'], ['json:.a', 'dotted names'], ['Key']],
  },
  dlq: { good: [['{source}.dlq', '{source}.dlq']], bad: [[' ', 'must not be empty']] },
  versionHeader: { good: [['X-Schema-Version', 'x-schema-version'], ['x-v', 'x-v']], bad: [['  ', 'must not be empty']] },
  accept: {
    good: [['all', null], ['ALL', null], ['2', [2]], ['1, v2,V3', [1, 2, 3]]],
    bad: [['0', 'positive whole number'], ['x'], ['1,two'], [',', 'at least one'], ['1.5'], ['-2']],
  },
  defaultVersion: { good: [['1', 1], ['v3', 3], ['V12', 12]], bad: [['0'], ['-1'], ['x'], ['1.5'], ['v']] },
  produceVersion: { good: [['2', 2], ['v2', 2]], bad: [['two'], ['0']] },
  translators: { good: [['/etc/turnout/steps.yaml', '/etc/turnout/steps.yaml']], bad: [['  ', 'must not be empty']] },
  maxAttempts: { good: [['1', 1], ['1000', 1000], [' 7 ', 7]], bad: [['0', 'from 1 to 1000'], ['1001'], ['1.5'], ['x'], ['-1'], ['1e3']] },
  retryBackoff: { good: [['0', 0], ['30000', 30000]], bad: [['30001', 'from 0 to 30000'], ['-5'], ['fast']] },
  deferDelay: { good: [['0', 0], ['43200000', 43200000]], bad: [['43200001'], ['-1'], ['1s']] },
  maxDeferrals: { good: [['0', 0], ['100000', 100000]], bad: [['100001'], ['-1'], ['many']] },
  concurrency: { good: [['1', 1], ['10000', 10000]], bad: [['0', 'from 1 to 10000'], ['10001'], ['2.0']] },
  deliveryTimeout: { good: [['1', 1], ['43200000', 43200000]], bad: [['0'], ['43200001'], ['15m']] },
  maxMessageBytes: { good: [['1', 1], ['104857600', 104857600]], bad: [['0'], ['104857601'], ['1MB']] },
  drainTimeout: { good: [['0', 0], ['86400000', 86400000]], bad: [['86400001'], ['-1'], ['30s']] },
  port: { good: [['0', 0], ['8787', 8787], ['65535', 65535]], bad: [['65536', 'from 0 to 65535'], ['-1'], ['http'], ['tcp://10.0.0.1:8787', 'Kubernetes service link']] },
  host: { good: [['127.0.0.1', '127.0.0.1'], ['::', '::']], bad: [[' ', 'must not be empty']] },
  adminToken: { good: [['s3cret', 's3cret']], bad: [['  ', 'must not be empty']] },
  logLevel: { good: [['debug', 'debug'], ['WARN', 'warn'], ['silent', 'silent']], bad: [['verbose', 'must be one of'], ['']] },
};

describe('config: each option parser', () => {
  for (const [name, c] of Object.entries(cases) as [OptionName, Case][]) {
    const spec = schema[name];
    const variable = envName(spec.flag);

    test(`${variable} / --${spec.flag}: good values`, () => {
      for (const [raw, want] of c.good) {
        assert.deepEqual(viaEnv(name, raw), want, `${variable}=${JSON.stringify(raw)}`);
        assert.deepEqual(viaFlag(name, raw), want, `--${spec.flag}=${JSON.stringify(raw)}`);
      }
    });

    test(`${variable} / --${spec.flag}: bad values name the variable (or flag) and what is allowed`, () => {
      for (const [raw, why] of c.bad) {
        const extra = why === undefined ? [] : [why];
        // The value as written, except a secret's (never shown) and a URL's password (masked).
        const shown = shownValue(isSecretOption(name, (spec as { secret?: boolean }).secret), raw);
        if (raw !== '') {
          // An empty variable counts as unset, so '' is only tried as a flag.
          assertConfigError(() => viaEnv(name, raw), variable, `${variable}=${shown} `, spec.allowed, ...extra);
        }
        assertConfigError(() => viaFlag(name, raw), variable, `--${spec.flag}=${shown} `, spec.allowed, ...extra);
      }
    });
  }

  test('every whole-number option accepts exactly the range its allowed text names', () => {
    let checked = 0;
    for (const name of Object.keys(schema) as OptionName[]) {
      const range = /^(\d+)–(\d+)( (ms|s|bytes))?$/.exec(schema[name].allowed);
      if (!range) continue;
      checked++;
      const [lo, hi] = [Number(range[1]), Number(range[2])];
      assert.equal(parseOption(name, String(lo), 'test'), lo, name);
      assert.equal(parseOption(name, String(hi), 'test'), hi, name);
      assert.throws(() => parseOption(name, String(hi + 1), 'test'), ConfigError, name);
      if (lo > 0) assert.throws(() => parseOption(name, String(lo - 1), 'test'), ConfigError, name);
    }
    assert.equal(checked, 19);
  });

  test('the error message names the variable first and adds the allowed values once', () => {
    assertConfigError(() => viaEnv('maxAttempts', '0'), 'TURNOUT_MAX_ATTEMPTS', /^TURNOUT_MAX_ATTEMPTS="0" must be a whole number from 1 to 1000 \(allowed: 1–1000\)$/);
    // When the reason already lists what is allowed, it is not repeated.
    assert.throws(() => viaEnv('logLevel', 'loud'), (err: Error) => err.message.split('trace, debug, info, warn, error, fatal, silent').length === 2);
  });

  test('parseOption reports where the value came from', () => {
    assertConfigError(() => parseOption('concurrency', 'x', 'somewhere'), 'TURNOUT_CONCURRENCY', /^somewhere="x" /);
  });

  test('every option has a variable named TURNOUT_ + its flag in upper snake case', () => {
    assert.equal(envName('app-url'), 'TURNOUT_APP_URL');
    assert.equal(envName('max-message-bytes'), 'TURNOUT_MAX_MESSAGE_BYTES');
    for (const [name, spec] of Object.entries(schema)) {
      assert.match(spec.flag, /^[a-z]+(-[a-z]+)*$/, name);
      assert.equal(spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), name, 'the option name is the camelCase flag');
    }
  });
});

describe('config: loadConfig', () => {
  test('defaults', () => {
    const { config, warnings } = loadConfig({}, {});
    assert.deepEqual(warnings, []);
    // The core options of docs/reference.md (broker-specific options appended later are not checked here).
    const expected: Record<string, unknown> = {
      broker: { kind: 'memory' },
      source: undefined,
      group: 'turnout-{source}',
      appUrl: undefined,
      blue: undefined,
      green: undefined,
      greenWeight: 0,
      weightFile: undefined,
      routeKey: { kind: 'key' },
      dlq: undefined,
      versionHeader: 'x-schema-version',
      accept: null,
      defaultVersion: 1,
      produceVersion: undefined,
      translators: undefined,
      maxAttempts: 5,
      retryBackoff: 200,
      deferDelay: 30000,
      maxDeferrals: 20,
      concurrency: 16,
      deliveryTimeout: 900000,
      maxMessageBytes: 262144,
      drainTimeout: 30000,
      port: 8787,
      host: '0.0.0.0',
      adminToken: undefined,
      logLevel: 'info',
    };
    const got = Object.fromEntries(Object.keys(expected).map((k) => [k, config[k as OptionName]]));
    assert.deepEqual(got, expected);
    for (const k of Object.keys(expected)) assert.ok(k in config, `${k} is an option`);
  });

  test('an empty variable counts as unset (the default applies)', () => {
    const { config } = loadConfig({}, { TURNOUT_MAX_ATTEMPTS: '', TURNOUT_PORT: '' });
    assert.equal(config.maxAttempts, 5);
    assert.equal(config.port, 8787);
  });

  test('flags win over variables, variables over defaults', () => {
    const { config } = loadConfig({ maxAttempts: '3', greenWeight: '40' }, { TURNOUT_MAX_ATTEMPTS: '7', TURNOUT_CONCURRENCY: '4', TURNOUT_GREEN_WEIGHT: '10' });
    assert.equal(config.maxAttempts, 3);
    assert.equal(config.greenWeight, 40);
    assert.equal(config.concurrency, 4);
    assert.equal(config.retryBackoff, 200);
  });

  test('a bad variable does not matter when a flag overrides it', () => {
    const { config } = loadConfig({ maxAttempts: '3' }, { TURNOUT_MAX_ATTEMPTS: 'lots' });
    assert.equal(config.maxAttempts, 3);
  });

  test('a bad flag names the flag even when the variable is fine', () => {
    assertConfigError(() => loadConfig({ maxAttempts: 'lots' }, { TURNOUT_MAX_ATTEMPTS: '3' }), 'TURNOUT_MAX_ATTEMPTS', /^--max-attempts="lots"/);
  });
});

describe('config: unknown variables', () => {
  test('an unknown TURNOUT_ variable is a warning with a "did you mean"', () => {
    const { warnings } = loadConfig({}, { TURNOUT_MAX_ATTEMPT: '3', TURNOUT_GREEN_WIEGHT: '5' });
    assert.deepEqual(warnings.sort(), [
      'unknown variable TURNOUT_GREEN_WIEGHT is ignored (did you mean TURNOUT_GREEN_WEIGHT?)',
      'unknown variable TURNOUT_MAX_ATTEMPT is ignored (did you mean TURNOUT_MAX_ATTEMPTS?)',
    ]);
  });

  test('no suggestion when nothing is close', () => {
    const { warnings } = loadConfig({}, { TURNOUT_SOMETHING_ELSE_ENTIRELY: '1' });
    assert.deepEqual(warnings, ['unknown variable TURNOUT_SOMETHING_ELSE_ENTIRELY is ignored']);
  });

  test('other variables, and known ones, are not warned about', () => {
    const { warnings } = loadConfig({}, { PATH: '/bin', turnout_lower: 'x', TURNOUTX: 'y', TURNOUT_CONCURRENCY: '2', TURNOUT_HOST: '::' });
    assert.deepEqual(warnings, []);
  });

  test('Kubernetes service-link variables (TURNOUT_SERVICE_HOST, TURNOUT_PORT_8787_TCP…) are not warned about', () => {
    const { warnings } = loadConfig({}, {
      TURNOUT_SERVICE_HOST: '10.0.0.1',
      TURNOUT_SERVICE_PORT: '8787',
      TURNOUT_SERVICE_PORT_HTTP: '8787',
      TURNOUT_PORT: '8787',
      TURNOUT_PORT_8787_TCP: 'tcp://10.0.0.1:8787',
      TURNOUT_PORT_8787_TCP_PROTO: 'tcp',
      TURNOUT_PORT_8787_TCP_PORT: '8787',
      TURNOUT_PORT_8787_TCP_ADDR: '10.0.0.1',
    });
    assert.deepEqual(warnings, []);
  });

  test('a service-link TURNOUT_PORT=tcp://… is a clear error naming the fix', () => {
    assertConfigError(
      () => loadConfig({}, { TURNOUT_SERVICE_HOST: '10.0.0.1', TURNOUT_PORT: 'tcp://10.0.0.1:8787', TURNOUT_PORT_8787_TCP: 'tcp://10.0.0.1:8787' }),
      'TURNOUT_PORT',
      'TURNOUT_PORT="tcp://10.0.0.1:8787"',
      'Kubernetes service link',
      'enableServiceLinks: false',
    );
    // The flag wins, so an explicit --port fixes it too.
    assert.equal(loadConfig({ port: '9000' }, { TURNOUT_PORT: 'tcp://10.0.0.1:8787' }).config.port, 9000);
  });
});

describe('config: cross-field rules', () => {
  const consumer: FlagValues = { source: 'orders', appUrl: 'http://127.0.0.1:1/m', dlq: 'orders.dlq' };

  test('a valid consumer and a valid router load', () => {
    assert.deepEqual(loadConfig(consumer, {}).config.source, ['orders']);
    const router = loadConfig({ source: 'in', blue: '{source}-blue', green: '{source}-green', dlq: '{source}-dlq' }, {}).config;
    assert.equal(router.blue, '{source}-blue');
  });

  test('a source with nowhere to send its messages', () => {
    assertConfigError(() => loadConfig({ source: 'orders', dlq: 'dlq' }, {}), 'TURNOUT_SOURCE', 'TURNOUT_APP_URL', 'TURNOUT_BLUE/TURNOUT_GREEN');
    // No source: a publish-only sidecar needs neither.
    assert.equal(loadConfig({}, {}).config.source, undefined);
  });

  test('a source without TURNOUT_DLQ on the embedded broker or Kafka', () => {
    assertConfigError(() => loadConfig({ source: 'orders', appUrl: 'http://a/m' }, {}), 'TURNOUT_DLQ', 'TURNOUT_BROKER=memory', 'no dead-letter mechanism');
    assertConfigError(() => loadConfig({ source: 'orders', appUrl: 'http://a/m', broker: 'kafka://k:9092' }, {}), 'TURNOUT_DLQ', 'TURNOUT_BROKER=kafka://', 'Kafka');
    // Brokers with their own dead-letter mechanism do not need one.
    assert.equal(loadConfig({ source: 'orders', appUrl: 'http://a/m', broker: 'sqs' }, {}).config.dlq, undefined);
    assert.equal(loadConfig({ source: 'orders', appUrl: 'http://a/m', broker: 'amqp://r' }, {}).config.dlq, undefined);
  });

  test('a DLQ that expands to the source itself', () => {
    assertConfigError(() => loadConfig({ ...consumer, dlq: '{source}' }, {}), 'TURNOUT_DLQ', 'expands to the source "orders"', 'loop');
    assertConfigError(() => loadConfig({ ...consumer, source: 'a,orders', dlq: 'orders' }, {}), 'TURNOUT_DLQ', '"orders"');
  });

  test('a route target that expands to the source itself (router role)', () => {
    assertConfigError(() => loadConfig({ source: 'in', blue: '{source}', green: 'g', dlq: 'd' }, {}), 'TURNOUT_BLUE', 'expands to the source "in"', 'loop');
    assertConfigError(() => loadConfig({ source: 'in,x', blue: 'b', green: 'x', dlq: 'd' }, {}), 'TURNOUT_GREEN', 'expands to the source "x"');
    // In the consumer role the targets are only used by /v1/publish, so naming the source is fine.
    assert.equal(loadConfig({ ...consumer, blue: 'orders', green: 'g' }, {}).config.blue, 'orders');
  });

  test('blue and green naming the same target', () => {
    assertConfigError(() => loadConfig({ blue: 'q', green: 'q' }, {}), 'TURNOUT_GREEN', 'same target');
    assertConfigError(() => loadConfig({ source: 's', blue: '{source}-x', green: '{source}-x', dlq: 'd' }, {}), 'TURNOUT_GREEN', 'same target');
  });

  test('TURNOUT_ACCEPT with no version is refused (by the parser; the cross-check cannot be reached)', () => {
    assertConfigError(() => loadConfig({ accept: ' , ' }, {}), 'TURNOUT_ACCEPT', 'at least one');
  });
});

describe('config: expandTarget', () => {
  test('replaces every {source}', () => {
    assert.equal(expandTarget('{source}.dlq', 'orders'), 'orders.dlq');
    assert.equal(expandTarget('{source}-{source}', 'a'), 'a-a');
    assert.equal(expandTarget('plain', 'a'), 'plain');
  });
});

describe('config: secrets are never shown', () => {
  test('a secret option is not echoed in its error; the admin token and Kafka password are marked, names like *Token/*Password count too', () => {
    assertConfigError(() => viaEnv('adminToken', ' '), 'TURNOUT_ADMIN_TOKEN', /^TURNOUT_ADMIN_TOKEN=\(a secret, not shown\) must not be empty/);
    assert.equal(isSecretOption('adminToken', (schema.adminToken as { secret?: boolean }).secret), true);
    assert.equal(isSecretOption('kafkaPassword', (schema.kafkaPassword as { secret?: boolean }).secret), true);
    assert.equal(isSecretOption('publishToken', undefined), true, 'an option added without the mark');
    assert.equal(isSecretOption('kafkaUsername', undefined), false);
  });

  test('URL passwords are masked in error texts; kafka:// with credentials is refused without echoing them', () => {
    assert.equal(redactUrls('connect amqp://u:p%40ss@h:5672/v and amqps://x:y@z/'), 'connect amqp://u:***@h:5672/v and amqps://x:***@z/');
    assert.equal(redactUrls('amqp://h:5672/ http://u@h/'), 'amqp://h:5672/ http://u@h/', 'no password: unchanged');
    assertConfigError(() => viaEnv('broker', 'amqp://u:hunter22@h:notaport/'), 'TURNOUT_BROKER', 'amqp://u:***@h:notaport/');
    assert.throws(() => viaEnv('broker', 'amqp://u:hunter22@h:notaport/'), (err: Error) => !err.message.includes('hunter22'));
    assert.throws(() => viaEnv('broker', 'kafka://u:hunter22@h:9092'), (err: Error) => !err.message.includes('hunter22') && /without user:password@/.test(err.message));
  });

  test('secretsOf() and scrubber(): every secret in every form a text may carry it', () => {
    const { config } = loadConfig({}, {
      TURNOUT_BROKER: `amqp://guest:${encodeURIComponent('p@ss "w"/1')}@127.0.0.1:5672/`,
      TURNOUT_ADMIN_TOKEN: 'admin-secret-1',
      TURNOUT_KAFKA_PASSWORD: 'kafka-secret-2',
      TURNOUT_APP_URL: 'http://app:app-pass-3@127.0.0.1:8080/m',
    });
    const secrets = secretsOf(config, { AWS_SECRET_ACCESS_KEY: 'aws-secret-4' });
    const scrub = scrubber(secrets);
    const text = JSON.stringify({ a: 'admin-secret-1', k: 'x kafka-secret-2 y', p: 'p@ss "w"/1', u: 'amqp://guest:p%40ss%20%22w%22%2F1@h', aws: 'aws-secret-4', app: 'app-pass-3' });
    const out = scrub(text);
    for (const s of ['admin-secret-1', 'kafka-secret-2', 'p@ss', 'p%40ss', 'aws-secret-4', 'app-pass-3']) assert.ok(!out.includes(s), `${s} left in ${out}`);
    assert.match(out, /\[redacted\]/);
    // Too short to scrub without erasing ordinary text: not taken.
    const short = secretsOf(loadConfig({}, { TURNOUT_ADMIN_TOKEN: 'abc' }).config, {});
    assert.deepEqual(short, []);
  });
});
