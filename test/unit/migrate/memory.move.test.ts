// The move suite on the embedded broker (in this process: `turnout move` as a
// separate process would find its queues empty; the suite runs it in place).

import { randomUUID } from 'node:crypto';
import { capabilities } from '../../../adapters/memory/capabilities.ts';
import { MemoryBroker } from '../../../adapters/memory/index.ts';
import { moveSuite } from '../../migrate/move.suite.ts';

const broker = new MemoryBroker();
moveSuite({
  name: 'memory',
  capabilities,
  quietMs: 50,
  async create() {
    await broker.connect();
    return broker;
  },
  async newQueue() {
    const q = `q-${randomUUID()}`;
    broker.declare(q);
    return q;
  },
  missingQueue: () => `missing-${randomUUID()}`,
});
