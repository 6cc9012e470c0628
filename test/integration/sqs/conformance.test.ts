// The adapter conformance suite against the fauxqs SQS emulator.

import { randomUUID } from 'node:crypto';
import { conformance } from '../../conformance/broker.conformance.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator } from './fauxqs.ts';

const emu = await startEmulator();

conformance({
  name: 'sqs',
  durable: true,
  quietMs: 500,
  async create() {
    // Shorter long polls than production's 20 s only so that close() (which
    // lets polls under way answer) does not add 20 s to the suite.
    const b = sqsAdapter({}, { waitTimeSeconds: 5 });
    await b.connect();
    return b;
  },
  async newQueue() {
    const name = emu.name('conf');
    await emu.createQueue(name);
    return name;
  },
  missingQueue: () => `missing-${randomUUID()}`,
  teardown: () => emu.stop(),
});
