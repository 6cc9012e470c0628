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
    const b = sqsAdapter();
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
