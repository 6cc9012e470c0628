import { randomUUID } from 'node:crypto';
import { capabilities } from '../../adapters/memory/capabilities.ts';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { conformance } from '../conformance/broker.conformance.ts';

// Each embedded broker is its own world; queues made by newQueue() exist on all of them.
const brokers: MemoryBroker[] = [];
const names: string[] = [];

conformance({
  name: 'memory',
  capabilities,
  quietMs: 100,
  async create() {
    const b = new MemoryBroker({ queues: names });
    brokers.push(b);
    await b.connect();
    return b;
  },
  // No connection to lose: the broker goes away and comes back (setUp, as in the core's tests).
  // The suite's first broker, since only it holds what the suite publishes.
  async droppable() {
    const b = brokers[0] as MemoryBroker;
    return {
      adapter: b,
      async drop() {
        b.setUp(false);
        b.setUp(true);
      },
    };
  },
  async newQueue() {
    const q = `q-${randomUUID()}`;
    names.push(q);
    for (const b of brokers) b.declare(q);
    return q;
  },
  missingQueue: () => `missing-${randomUUID()}`,
});
