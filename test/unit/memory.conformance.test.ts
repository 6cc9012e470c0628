import { randomUUID } from 'node:crypto';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { conformance } from '../conformance/broker.conformance.ts';

// Each embedded broker is its own world; queues made by newQueue() exist on all of them.
const brokers: MemoryBroker[] = [];
const names: string[] = [];

conformance({
  name: 'memory',
  durable: false,
  quietMs: 100,
  async create() {
    const b = new MemoryBroker({ queues: names });
    brokers.push(b);
    await b.connect();
    return b;
  },
  async newQueue() {
    const q = `q-${randomUUID()}`;
    names.push(q);
    for (const b of brokers) b.declare(q);
    return q;
  },
  missingQueue: () => `missing-${randomUUID()}`,
});
