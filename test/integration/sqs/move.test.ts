// The move suite against the fauxqs SQS emulator.

import { randomUUID } from 'node:crypto';
import { capabilities } from '../../../adapters/sqs/capabilities.ts';
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
  teardown: () => emu.stop(),
});
