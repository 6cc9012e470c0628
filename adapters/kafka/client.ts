// kafkajs settings derived from turnout's configuration: brokers, SASL, TLS,
// timeouts, and kafkajs' own log lines routed into the pino logger.

import { readFileSync } from 'node:fs';
import { logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../config/errors.ts';
import type { Logger } from '../../lib/log.ts';

export interface KafkaSettings {
  client: KafkaConfig;
  idempotent: boolean;
  sessionTimeoutMs: number;
  /** Template for the deferral topic; may contain {source}. */
  deferTopic: string;
}

/**
 * kafkajs reports recoverable conditions (a retried metadata error, a group
 * rebalance) at ERROR and WARN, and its INFO is per-pause chatter. Shift
 * everything one step down so turnout's `info` shows what an operator acts on.
 */
const PINO_LEVEL: Record<number, 'warn' | 'info' | 'debug' | 'trace'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'info',
  [logLevel.INFO]: 'debug',
  [logLevel.DEBUG]: 'trace',
};

/** Messages that are expected with turnout's choices and say nothing to an operator. */
const QUIET = [
  // Retries are bounded on purpose so that publish() rejects instead of hanging.
  'Limiting retries for the idempotent producer',
  'KafkaJS v2.0.0 switched default partitioner',
];

function kafkajsLevel(pinoLevel: string): logLevel {
  switch (pinoLevel) {
    case 'trace':
      return logLevel.DEBUG;
    case 'debug':
      return logLevel.INFO;
    case 'info':
      return logLevel.WARN;
    case 'silent':
      return logLevel.NOTHING;
    default:
      return logLevel.ERROR;
  }
}

function logCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry): void => {
      const { message, timestamp: _ts, logger: _name, ...extra } = log;
      if (QUIET.some((q) => message.startsWith(q))) return;
      const at = PINO_LEVEL[level] ?? 'debug';
      logger[at]({ kafkajs: namespace, ...extra }, message);
    };
}

function readPem(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}=${path} cannot be read: ${(err as Error).message}`, variable);
  }
}

function tls(c: Config): ConnectionOptions | boolean {
  const files = c.kafkaTlsCaFile !== undefined || c.kafkaTlsCertFile !== undefined || c.kafkaTlsKeyFile !== undefined;
  if (!c.kafkaTls && !files) return false;
  if ((c.kafkaTlsCertFile === undefined) !== (c.kafkaTlsKeyFile === undefined)) {
    const missing = c.kafkaTlsCertFile === undefined ? 'TURNOUT_KAFKA_TLS_CERT_FILE' : 'TURNOUT_KAFKA_TLS_KEY_FILE';
    throw new ConfigError(`mutual TLS needs both TURNOUT_KAFKA_TLS_CERT_FILE and TURNOUT_KAFKA_TLS_KEY_FILE; ${missing} is not set`, missing);
  }
  const o: ConnectionOptions = {};
  if (c.kafkaTlsCaFile !== undefined) o.ca = [readPem(c.kafkaTlsCaFile, 'TURNOUT_KAFKA_TLS_CA_FILE')];
  if (c.kafkaTlsCertFile !== undefined) o.cert = readPem(c.kafkaTlsCertFile, 'TURNOUT_KAFKA_TLS_CERT_FILE');
  if (c.kafkaTlsKeyFile !== undefined) o.key = readPem(c.kafkaTlsKeyFile, 'TURNOUT_KAFKA_TLS_KEY_FILE');
  return Object.keys(o).length > 0 ? o : true;
}

function sasl(c: Config): SASLOptions | undefined {
  if (c.kafkaSaslMechanism === undefined) {
    if (c.kafkaUsername !== undefined || c.kafkaPassword !== undefined) {
      throw new ConfigError('TURNOUT_KAFKA_USERNAME/PASSWORD are set but TURNOUT_KAFKA_SASL_MECHANISM is not (plain, scram-sha-256 or scram-sha-512)', 'TURNOUT_KAFKA_SASL_MECHANISM');
    }
    return undefined;
  }
  if (c.kafkaUsername === undefined) throw new ConfigError(`TURNOUT_KAFKA_SASL_MECHANISM=${c.kafkaSaslMechanism} needs TURNOUT_KAFKA_USERNAME`, 'TURNOUT_KAFKA_USERNAME');
  if (c.kafkaPassword === undefined) throw new ConfigError(`TURNOUT_KAFKA_SASL_MECHANISM=${c.kafkaSaslMechanism} needs TURNOUT_KAFKA_PASSWORD`, 'TURNOUT_KAFKA_PASSWORD');
  return { mechanism: c.kafkaSaslMechanism, username: c.kafkaUsername, password: c.kafkaPassword };
}

export function kafkaSettings(c: Config, logger: Logger): KafkaSettings {
  if (c.broker.kind !== 'kafka') throw new Error(`kafka adapter created for broker kind ${c.broker.kind}`);
  const sources = c.source ?? [];
  if (sources.length > 1 && !c.kafkaDeferTopic.includes('{source}')) {
    throw new ConfigError(
      `TURNOUT_KAFKA_DEFER_TOPIC=${c.kafkaDeferTopic} would be shared by ${sources.length} sources; include {source}`,
      'TURNOUT_KAFKA_DEFER_TOPIC',
    );
  }
  for (const s of sources) {
    if (c.kafkaDeferTopic.replaceAll('{source}', s) === s) {
      throw new ConfigError(`TURNOUT_KAFKA_DEFER_TOPIC expands to the source "${s}" itself`, 'TURNOUT_KAFKA_DEFER_TOPIC');
    }
  }
  const client: KafkaConfig = {
    clientId: 'turnout',
    brokers: c.broker.brokers,
    ssl: tls(c),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    // Bounded, quick retries: a publish that cannot reach the broker rejects
    // within seconds, and the pipeline decides what to do with the message.
    retry: { initialRetryTime: 100, maxRetryTime: 3000, retries: 5 },
    logLevel: kafkajsLevel(c.logLevel),
    logCreator: logCreator(logger),
  };
  const s = sasl(c);
  if (s) client.sasl = s;
  return { client, idempotent: c.kafkaIdempotent, sessionTimeoutMs: c.kafkaSessionTimeout, deferTopic: c.kafkaDeferTopic };
}
