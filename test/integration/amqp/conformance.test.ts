// The adapter conformance suite against the real RabbitMQ, once on classic
// and once on quorum source queues (turnout must work with both as they exist).

import { randomUUID } from 'node:crypto';
import { conformance } from '../../conformance/broker.conformance.ts';
import { TestRabbit, connectedBroker, type QueueType } from './rabbit.ts';

for (const type of ['classic', 'quorum'] as QueueType[]) {
  const rabbit = new TestRabbit(`conf-${type}`);
  conformance({
    name: `amqp (${type} queues)`,
    durable: true,
    quietMs: 300,
    timeoutMs: 15_000,
    create: () => connectedBroker(),
    newQueue: () => rabbit.queue(type),
    missingQueue: () => `turnout-test.missing.${randomUUID()}`,
    teardown: () => rabbit.teardown(),
  });
}
