// Picks the adapter for TURNOUT_BROKER. Each broker's client library is only
// loaded when that broker is configured.

import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/log.ts';
import type { BrokerAdapter } from './broker.ts';
import { MemoryBroker } from './memory/index.ts';

export interface AdapterContext {
  config: Config;
  logger: Logger;
}

export async function createBroker(ctx: AdapterContext): Promise<BrokerAdapter> {
  const b = ctx.config.broker;
  switch (b.kind) {
    case 'memory':
      return new MemoryBroker({ onError: (err) => ctx.logger.error({ err }, 'embedded broker error') });
    case 'amqp':
      return (await import('./amqp/index.ts')).create(ctx);
    case 'sqs':
      return (await import('./sqs/index.ts')).create(ctx, {
        waitTimeSeconds: ctx.config.sqsWaitTime,
        ...(ctx.config.sqsVisibilityExtension !== undefined ? { visibilityExtensionSeconds: ctx.config.sqsVisibilityExtension } : {}),
      });
    case 'kafka':
      return (await import('./kafka/index.ts')).create(ctx);
    default:
      // Every broker kind has a case; this only runs on a config the schema never produces.
      throw new Error(`broker ${(b as { kind: string }).kind} is not implemented`);
  }
}
