// The Kafka cross-checks of config/load.ts (they were thrown by the adapter
// before): every ConfigError comes from config/, before anything connects.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { capabilitiesOf } from '../../adapters/capabilities.ts';
import { ConfigError } from '../../config/errors.ts';
import { loadConfig, type FlagValues } from '../../config/load.ts';
import type { Kafka } from 'kafkajs';
import { kafkaSettings } from '../../adapters/kafka/options.ts';
import { KafkaSubscription } from '../../adapters/kafka/subscription.ts';
import { createLogger } from '../../lib/log.ts';

const dir = mkdtempSync(join(tmpdir(), 'turnout-config-kafka-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pem = join(dir, 'ca.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');

const kafka: FlagValues = { broker: 'kafka://k:9092', source: 'orders', appUrl: 'http://127.0.0.1:1/m', dlq: '{source}.dlq' };

function assertConfigError(flags: FlagValues, variable: string, ...parts: string[]): void {
  assert.throws(() => loadConfig(flags, {}), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" should contain "${p}"`);
    return true;
  });
}

describe('config: Kafka cross-checks', () => {
  test('a valid Kafka configuration loads', () => {
    const { config } = loadConfig({ ...kafka, kafkaSaslMechanism: 'plain', kafkaUsername: 'u', kafkaPassword: 'p', kafkaTlsCaFile: pem }, {});
    assert.deepEqual(config.broker, { kind: 'kafka', brokers: ['k:9092'] });
    assert.equal(config.kafkaTlsCaFile, pem);
  });

  test('the deferral topic must differ per source and from the source', () => {
    assertConfigError({ ...kafka, source: 'a,b', kafkaDeferTopic: 'shared' }, 'TURNOUT_KAFKA_DEFER_TOPIC', 'would be shared by 2 sources', '{source}');
    assertConfigError({ ...kafka, kafkaDeferTopic: '{source}' }, 'TURNOUT_KAFKA_DEFER_TOPIC', 'expands to the source "orders" itself');
    assert.equal(loadConfig({ ...kafka, source: 'a', kafkaDeferTopic: 'shared' }, {}).config.kafkaDeferTopic, 'shared', 'one source may use a fixed name');
  });

  test('mutual TLS needs both the certificate and the key', () => {
    assertConfigError({ ...kafka, kafkaTlsCertFile: pem }, 'TURNOUT_KAFKA_TLS_KEY_FILE', 'mutual TLS needs both');
    assertConfigError({ ...kafka, kafkaTlsKeyFile: pem }, 'TURNOUT_KAFKA_TLS_CERT_FILE', 'mutual TLS needs both');
  });

  test('a TLS file that cannot be read', () => {
    const missing = join(dir, 'nope.pem');
    assertConfigError({ ...kafka, kafkaTlsCaFile: missing }, 'TURNOUT_KAFKA_TLS_CA_FILE', `TURNOUT_KAFKA_TLS_CA_FILE=${missing} cannot be read`);
  });

  test('SASL needs a mechanism, a user name and a password together', () => {
    assertConfigError({ ...kafka, kafkaUsername: 'u', kafkaPassword: 'p' }, 'TURNOUT_KAFKA_SASL_MECHANISM', 'TURNOUT_KAFKA_SASL_MECHANISM is not');
    assertConfigError({ ...kafka, kafkaSaslMechanism: 'plain', kafkaPassword: 'p' }, 'TURNOUT_KAFKA_USERNAME', 'needs TURNOUT_KAFKA_USERNAME');
    assertConfigError({ ...kafka, kafkaSaslMechanism: 'scram-sha-256', kafkaUsername: 'u' }, 'TURNOUT_KAFKA_PASSWORD', 'needs TURNOUT_KAFKA_PASSWORD');
  });

  test('the fetch wait: 100 ms by default, handed to kafkajs, at most a third of the session timeout', async () => {
    const { config } = loadConfig(kafka, {});
    assert.equal(config.kafkaFetchWait, 100);
    assert.equal(kafkaSettings(loadConfig({ ...kafka, kafkaFetchWait: '250' }, {}).config, createLogger('silent')).fetchWaitMs, 250);
    assert.equal(loadConfig({ ...kafka, kafkaFetchWait: '2000', kafkaSessionTimeout: '6000' }, {}).config.kafkaFetchWait, 2000, 'a third exactly is allowed');
    assertConfigError({ ...kafka, kafkaFetchWait: '2001', kafkaSessionTimeout: '6000' }, 'TURNOUT_KAFKA_FETCH_WAIT', 'more than a third of TURNOUT_KAFKA_SESSION_TIMEOUT=6000');
    assertConfigError({ ...kafka, kafkaFetchWait: '5' }, 'TURNOUT_KAFKA_FETCH_WAIT');

    // The subscription's consumer gets it as maxWaitTimeInMs (the fake refuses to connect; nothing else runs).
    const seen: Record<string, unknown>[] = [];
    const fake = {
      consumer(o: Record<string, unknown>) {
        seen.push(o);
        return { events: { REBALANCING: 'r', GROUP_JOIN: 'j', CRASH: 'c' }, on() {}, connect: () => Promise.reject(new Error('no broker here')), disconnect: () => Promise.resolve() };
      },
    } as unknown as Kafka;
    const sub = new KafkaSubscription({
      kafka: fake, source: 'orders', deferTopic: 'orders.turnout-defer', group: 'g', prefetch: 1, handler: () => Promise.resolve({ kind: 'ack' }),
      defer: () => Promise.resolve(), sessionTimeoutMs: 30_000, fetchWaitMs: 250, logger: createLogger('silent'),
    });
    await assert.rejects(sub.start());
    assert.equal(seen[0]?.maxWaitTimeInMs, 250);
  });

  test('Kafka settings are not checked for another broker', () => {
    assert.equal(loadConfig({ ...kafka, broker: 'sqs', kafkaUsername: 'u' }, {}).config.kafkaUsername, 'u');
  });
});

describe('config: the dead-letter requirement follows the declared capability', () => {
  test('a broker without a dead-letter mechanism of its own needs TURNOUT_DLQ; one with it does not', () => {
    for (const broker of ['memory', 'amqp://r', 'sqs', 'kafka://k:9092']) {
      const { config } = loadConfig({ broker, source: 'orders', appUrl: 'http://a/m', dlq: 'd' }, {});
      const declared = capabilitiesOf(config.broker.kind);
      if (declared.nativeDeadLetter) {
        assert.equal(loadConfig({ broker, source: 'orders', appUrl: 'http://a/m' }, {}).config.dlq, undefined, broker);
      } else {
        assertConfigError({ broker, source: 'orders', appUrl: 'http://a/m' }, 'TURNOUT_DLQ', `TURNOUT_BROKER=${declared.setting}`, `${declared.name} has no dead-letter mechanism`);
      }
    }
  });
});
