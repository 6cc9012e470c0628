// The move suite against the real RabbitMQ (classic queues).

import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { capabilities } from '../../../adapters/amqp/capabilities.ts';
import { cliSuite } from '../../migrate/cli.suite.ts';
import { moveSuite } from '../../migrate/move.suite.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit, connectedBroker } from './rabbit.ts';

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

const rabbitCli = new TestRabbit('move-cli');
cliSuite({
  name: 'amqp',
  env: { TURNOUT_BROKER: AMQP_URL },
  create: () => connectedBroker(),
  newQueue: () => rabbitCli.queue('classic'),
});
after(() => rabbitCli.teardown());
