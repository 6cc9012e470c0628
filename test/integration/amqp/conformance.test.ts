// The adapter conformance suite against the real RabbitMQ, once on classic
// and once on quorum source queues (turnout must work with both as they exist).

import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { conformance } from '../../conformance/broker.conformance.ts';
import { rabbitShared } from './lock.ts';
import { TestRabbit, connectedBroker, type QueueType } from './rabbit.ts';

let release: () => void = () => {};
before(async () => {
  release = await rabbitShared();
});
after(() => release());

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
