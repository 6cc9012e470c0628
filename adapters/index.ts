// Picks the adapter for TURNOUT_BROKER. Each broker's client library is only
// loaded when that broker is configured; every adapter module has the same
// create(ctx), which maps its own options from the configuration.

import type { BrokerUrl } from '../config/schema.ts';
import type { AdapterContext, BrokerAdapter } from './broker.ts';

type AdapterModule = { create(ctx: AdapterContext): BrokerAdapter };

const modules: Record<BrokerUrl['kind'], () => Promise<AdapterModule>> = {
  memory: () => import('./memory/index.ts'),
  amqp: () => import('./amqp/index.ts'),
  sqs: () => import('./sqs/index.ts'),
  kafka: () => import('./kafka/index.ts'),
};

export async function createBroker(ctx: AdapterContext): Promise<BrokerAdapter> {
  return (await modules[ctx.config.broker.kind]()).create(ctx);
}
