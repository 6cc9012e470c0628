// The move suite against the real RabbitMQ (classic queues).

import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { capabilities } from '../../../adapters/amqp/capabilities.ts';
import { moveSuite } from '../../migrate/move.suite.ts';
import { rabbitShared } from './lock.ts';
import { TestRabbit, connectedBroker } from './rabbit.ts';

let release: () => void = () => {};
before(async () => {
  release = await rabbitShared();
});
after(() => release());

const rabbit = new TestRabbit('move');
moveSuite({
  name: 'amqp',
  capabilities,
  create: () => connectedBroker(),
  newQueue: () => rabbit.queue('classic'),
  missingQueue: () => `turnout-test.missing.${randomUUID()}`,
  teardown: () => rabbit.teardown(),
});
