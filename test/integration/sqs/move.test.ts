// The move suite against the fauxqs SQS emulator.

import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { capabilities } from '../../../adapters/sqs/capabilities.ts';
import { cliSuite } from '../../migrate/cli.suite.ts';
import { moveSuite } from '../../migrate/move.suite.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator } from './fauxqs.ts';

const emu = await startEmulator();

moveSuite({
  name: 'sqs',
  capabilities,
  quietMs: 500,
  async create() {
    const b = sqsAdapter({}, { waitTimeSeconds: 1 });
    await b.connect();
    return b;
  },
  async newQueue() {
    const name = emu.name('move');
    await emu.createQueue(name);
    return name;
  },
  missingQueue: () => `missing-${randomUUID()}`,
});

cliSuite({
  name: 'sqs',
  env: { TURNOUT_BROKER: 'sqs', ...emu.env },
  async create() {
    const b = sqsAdapter({}, { waitTimeSeconds: 1 });
    await b.connect();
    return b;
  },
  // A short visibility timeout: what the killed move held is visible again 5 s later.
  async newQueue() {
    const name = emu.name('move-cli');
    await emu.createQueue(name, { VisibilityTimeout: '5' });
    return name;
  },
  heldBackMs: 5500,
});

after(() => emu.stop());
