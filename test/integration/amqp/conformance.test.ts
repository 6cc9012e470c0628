// The adapter conformance suite against the real RabbitMQ, once on classic
// and once on quorum source queues (turnout must work with both as they exist).

import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { capabilities } from '../../../adapters/amqp/capabilities.ts';
import { conformance } from '../../conformance/broker.conformance.ts';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit, connectedBroker, type QueueType } from './rabbit.ts';

let release: () => void = () => {};
before(async () => {
  release = await rabbitShared();
});
after(() => release());

const rabbitAddress = new URL(AMQP_URL);

for (const type of ['classic', 'quorum'] as QueueType[]) {
  const rabbit = new TestRabbit(`conf-${type}`);
  const proxies: TcpProxy[] = [];
  conformance({
    name: `amqp (${type} queues)`,
    capabilities,
    quietMs: 300,
    timeoutMs: 15_000,
    create: () => connectedBroker(),
    newQueue: () => rabbit.queue(type),
    missingQueue: () => `turnout-test.missing.${randomUUID()}`,
    async deadLetteredQueue() {
      const dlq = await rabbit.queue(type, 'dlq');
      const queue = await rabbit.queue(type, 'src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq });
      return { queue, takeDeadLetters: async () => (await rabbit.drain(dlq)).map((m) => String(m.properties.messageId)) };
    },
    // Through a loopback proxy this test owns: the shared RabbitMQ is never restarted for this.
    async droppable() {
      const proxy = await startTcpProxy(rabbitAddress.hostname, Number(rabbitAddress.port || 5672));
      proxies.push(proxy);
      const url = new URL(AMQP_URL);
      url.port = String(proxy.port);
      const adapter = await connectedBroker({ url: url.toString(), reconnectMinMs: 50, reconnectMaxMs: 500 });
      return {
        adapter,
        async drop() {
          if (proxy.cutAll() === 0) throw new Error('the proxy had no connection to cut');
        },
      };
    },
    async teardown() {
      for (const proxy of proxies) await proxy.close();
      await rabbit.teardown();
    },
  });
}
