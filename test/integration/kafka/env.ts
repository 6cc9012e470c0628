// Configuration shared by the Kafka tests: what turnout needs to run against
// the mock cluster, and a connected adapter built by the real factory.

import { loadConfig } from '../../../config/load.ts';
import { createBroker } from '../../../adapters/index.ts';
import type { AdapterContext, BrokerAdapter } from '../../../adapters/broker.ts';
import { createLogger } from '../../../lib/log.ts';
import type { MockCluster } from './cluster.ts';

/** Session timeout for tests: the mock holds a rebalance for session timeout − 1 s. */
export const SESSION_TIMEOUT_MS = 4000;

/**
 * TURNOUT_* settings for the mock cluster. The mock reports no controller
 * broker, and kafkajs asks the controller for a producer id, so the
 * idempotent producer cannot start against it (see docs/kafka.md).
 */
export function kafkaEnv(cluster: MockCluster): Record<string, string> {
  return {
    TURNOUT_BROKER: cluster.brokerUrl,
    TURNOUT_KAFKA_IDEMPOTENT: 'false',
    TURNOUT_KAFKA_SESSION_TIMEOUT: String(SESSION_TIMEOUT_MS),
  };
}

/** What the adapter factory is given in the Kafka tests. */
export function kafkaContext(cluster: MockCluster, extra: Record<string, string> = {}): AdapterContext {
  const env = { ...kafkaEnv(cluster), TURNOUT_LOG_LEVEL: process.env.TURNOUT_TEST_LOG_LEVEL ?? 'error', ...extra };
  const { config } = loadConfig({}, env);
  return { config, logger: createLogger(config.logLevel, process.stderr) };
}

export async function kafkaAdapter(cluster: MockCluster, extra: Record<string, string> = {}): Promise<BrokerAdapter> {
  const adapter = await createBroker(kafkaContext(cluster, extra));
  await adapter.connect();
  return adapter;
}
