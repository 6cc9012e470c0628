// The adapter conformance suite against the fauxqs SQS emulator.

import { randomUUID } from 'node:crypto';
import { capabilities } from '../../../adapters/sqs/capabilities.ts';
import { conformance } from '../../conformance/broker.conformance.ts';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator } from './fauxqs.ts';

const emu = await startEmulator();
const emulatorAddress = new URL(emu.url);
const proxies: TcpProxy[] = [];

conformance({
  name: 'sqs',
  capabilities,
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
  async deadLetteredQueue() {
    const queue = emu.name('conf-src');
    const dlq = emu.name('conf-dlq');
    // Moved to the dead-letter queue on the receive after the first.
    await emu.createQueueWithRedrive(queue, dlq, 1);
    return { queue, takeDeadLetters: async () => (await emu.drain(dlq)).map((m) => m.id) };
  },
  // Through a loopback proxy this test owns, so that only this adapter's connections are cut.
  async droppable() {
    const proxy = await startTcpProxy(emulatorAddress.hostname, Number(emulatorAddress.port));
    proxies.push(proxy);
    const adapter = sqsAdapter({}, { waitTimeSeconds: 5, endpoint: `http://127.0.0.1:${proxy.port}` });
    await adapter.connect();
    return {
      adapter,
      async drop() {
        // Connections come and go with requests; a long poll is under way while consuming an empty queue.
        if (proxy.cutAll() === 0) throw new Error('the proxy had no connection to cut');
      },
    };
  },
  // What a receive on the cut connection took comes back after the queue's visibility timeout
  // (fauxqs's default, 30 s, as on SQS): measured, 9 runs in 10 (docs/sqs.md, "Connection loss").
  lostDeliveryHiddenMs: 30_000,
  async teardown() {
    for (const proxy of proxies) await proxy.close();
    await emu.stop();
  },
});
