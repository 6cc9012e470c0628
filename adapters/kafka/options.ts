// The Kafka adapter's options, mapped from turnout's configuration: kafkajs
// client settings (brokers, SASL, TLS, timeouts, kafkajs' own log lines
// routed into the pino logger), the group, the deferral topic. The
// configuration was checked by config/load.ts (SASL and TLS pairs, readable
// PEM files, the deferral topic template); nothing here is a ConfigError.

import { readFileSync } from 'node:fs';
import { logLevel, type KafkaConfig, type LogEntry, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../lib/log.ts';

export interface KafkaSettings {
  client: KafkaConfig;
  idempotent: boolean;
  sessionTimeoutMs: number;
  /** TURNOUT_KAFKA_FETCH_WAIT: the consumers' maxWaitTimeInMs. */
  fetchWaitMs: number;
  /** TURNOUT_GROUP: the consumer group template; may contain {source}. */
  groupTemplate: string;
  /** Template for the deferral topic; may contain {source}. */
  deferTopic: string;
}

/**
 * Bounded, quick retries, for the client and the producer alike (the
 * idempotent producer's own default is to retry forever): a publish that
 * cannot reach the broker rejects within seconds, and the pipeline decides
 * what to do with the message.
 */
export const RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 3000, retries: 5 };

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

function tls(config: Config): ConnectionOptions | boolean {
  const files = config.kafkaTlsCaFile !== undefined || config.kafkaTlsCertFile !== undefined || config.kafkaTlsKeyFile !== undefined;
  if (!config.kafkaTls && !files) return false;
  const options: ConnectionOptions = {};
  if (config.kafkaTlsCaFile !== undefined) options.ca = [readFileSync(config.kafkaTlsCaFile, 'utf8')];
  if (config.kafkaTlsCertFile !== undefined) options.cert = readFileSync(config.kafkaTlsCertFile, 'utf8');
  if (config.kafkaTlsKeyFile !== undefined) options.key = readFileSync(config.kafkaTlsKeyFile, 'utf8');
  return Object.keys(options).length > 0 ? options : true;
}

function sasl(config: Config): SASLOptions | undefined {
  const { kafkaSaslMechanism: mechanism, kafkaUsername: username, kafkaPassword: password } = config;
  // config/load.ts made sure that a mechanism comes with both, and neither without one.
  if (mechanism === undefined || username === undefined || password === undefined) return undefined;
  return { mechanism, username, password };
}

export function kafkaSettings(config: Config, logger: Logger): KafkaSettings {
  if (config.broker.kind !== 'kafka') throw new Error(`kafka adapter created for broker kind ${config.broker.kind}`);
  const client: KafkaConfig = {
    clientId: 'turnout',
    brokers: config.broker.brokers,
    ssl: tls(config),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: RETRY,
    logLevel: kafkajsLevel(config.logLevel),
    logCreator: logCreator(logger),
  };
  const credentials = sasl(config);
  if (credentials) client.sasl = credentials;
  return {
    client,
    idempotent: config.kafkaIdempotent,
    sessionTimeoutMs: config.kafkaSessionTimeout,
    fetchWaitMs: config.kafkaFetchWait,
    groupTemplate: config.group,
    deferTopic: config.kafkaDeferTopic,
  };
}
