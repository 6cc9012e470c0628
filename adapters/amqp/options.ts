// The RabbitMQ adapter's options, mapped from turnout's configuration.

import { hostname } from 'node:os';
import { backoffCeiling } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import type { AdapterContext } from '../broker.ts';

export interface AmqpOptions {
  url: string;
  logger: Logger;
  /** Shown by RabbitMQ (management UI, rabbitmqctl list_connections). */
  connectionName?: string;
  confirmTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap, ms (jittered between half the first delay and the ceiling; see AmqpBroker.backoff). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** RabbitMQ's default consumer_timeout (rabbitmq.conf), 30 min since 3.8.15. */
const RABBIT_CONSUMER_TIMEOUT_MS = 1_800_000;

export function amqpOptions(ctx: AdapterContext): AmqpOptions {
  const broker = ctx.config.broker;
  if (broker.kind !== 'amqp') throw new Error(`amqp adapter created for broker kind ${broker.kind}`);
  const logger = ctx.logger.child({ broker: 'amqp' });
  warnAboutConsumerTimeout(ctx, logger);
  return {
    url: broker.url,
    logger,
    connectionName: `turnout ${hostname()}${ctx.config.source ? ` ${ctx.config.source.join(',')}` : ''}`,
  };
}

/**
 * A message turnout holds unacked for longer than RabbitMQ's consumer_timeout
 * makes RabbitMQ close the whole channel: every unacked message on it is
 * redelivered (duplicates). Say so at start when the configuration allows it.
 */
function warnAboutConsumerTimeout(ctx: AdapterContext, logger: Logger): void {
  const config = ctx.config;
  if (config.source === undefined) return;
  let retries = 0;
  for (let attempt = 1; attempt < config.maxAttempts; attempt++) retries += backoffCeiling(attempt, config.retryBackoff);
  const worst = config.deliveryTimeout * config.maxAttempts + retries;
  const minutes = (ms: number): string => `${Math.round(ms / 60_000)} min`;
  if (config.deliveryTimeout >= RABBIT_CONSUMER_TIMEOUT_MS) {
    logger.warn(`TURNOUT_DELIVERY_TIMEOUT (${minutes(config.deliveryTimeout)}) reaches RabbitMQ's default consumer_timeout (30 min): raise consumer_timeout in rabbitmq.conf, or RabbitMQ closes the channel and redelivers every unacked message on it`);
  } else if (worst > RABBIT_CONSUMER_TIMEOUT_MS) {
    logger.info(`a message that times out on every attempt is held up to ~${minutes(worst)} (TURNOUT_DELIVERY_TIMEOUT x TURNOUT_MAX_ATTEMPTS + backoff), longer than RabbitMQ's default consumer_timeout (30 min); see docs/rabbitmq.md`);
  }
}
