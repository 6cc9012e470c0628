// The adapter conformance suite against a real Kafka-protocol broker
// (librdkafka's mock cluster), through the adapter factory as the CLI uses it.

import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { capabilities } from '../../../adapters/kafka/capabilities.ts';
import { KafkaBroker } from '../../../adapters/kafka/index.ts';
import { kafkaSettings } from '../../../adapters/kafka/options.ts';
import { conformance } from '../../conformance/broker.conformance.ts';
import { startMockCluster } from './cluster.ts';
import { kafkaAdapter, kafkaContext } from './env.ts';

const cluster = await startMockCluster();
// Marked before any client connects: the mock would otherwise create it on first mention.
const missing = `missing-${randomUUID().slice(0, 8)}`;
await cluster.markMissing(missing);

conformance({
  name: 'kafka (librdkafka mock cluster)',
  capabilities,
  quietMs: 500,
  // Group joins on the mock take 3 s, and a member leaving holds the group for session timeout − 1 s.
  timeoutMs: 25_000,
  create: () => kafkaAdapter(cluster),
  newQueue: () => cluster.newTopic(4, 'conf'),
  missingQueue: () => missing,
  // From the client side: kafkajs opens its sockets through this factory, and
  // the mock advertises its brokers' own addresses, so a proxy would be bypassed.
  async droppable() {
    const sockets = new Set<Socket>();
    const { config, logger: root } = kafkaContext(cluster);
    const logger = root.child({ broker: 'kafka' });
    const settings = kafkaSettings(config, logger);
    settings.client.socketFactory = ({ host, port, onConnect }) => {
      const socket = connect({ host, port }, onConnect);
      socket.setKeepAlive(true, 60_000);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      return socket;
    };
    const adapter = new KafkaBroker(settings, logger);
    await adapter.connect();
    return {
      adapter,
      async drop() {
        if (sockets.size === 0) throw new Error('no kafka connection to drop');
        // As a reset by the network looks to the client (a plain destroy() emits no 'error' or 'end', which kafkajs watches for).
        for (const socket of sockets) socket.destroy(Object.assign(new Error('read ECONNRESET (dropped by the test)'), { code: 'ECONNRESET' }));
      },
    };
  },
  teardown: () => cluster.stop(),
});
