// The embedded broker keeps one copy of each published message (its headers
// frozen) and hands that copy's headers to handlers: neither the publisher,
// after publish, nor a handler can change what is stored, hence what a
// redelivery or a deferral hands out.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Disposition, Message, Received } from '../../adapters/broker.ts';
import { MemoryBroker } from '../../adapters/memory/index.ts';
import { waitFor } from '../support/wait.ts';

async function broker(): Promise<MemoryBroker> {
  const b = new MemoryBroker({ queues: ['q'] });
  await b.connect();
  return b;
}

test('a publisher changing its message after publish does not change the stored one', async () => {
  const b = await broker();
  const sent: Message = { id: 'm1', payload: Buffer.from('{}'), headers: { 'x-schema-version': '1' } };
  await b.publish('q', sent);
  sent.headers['x-schema-version'] = '9';
  sent.headers['x-extra'] = 'added';
  sent.id = 'changed';
  const [got] = b.drainQueue('q');
  assert.equal(got?.id, 'm1');
  assert.deepEqual(got?.headers, { 'x-schema-version': '1' });
  assert.equal(b.held(), 0);
});

test('a handler cannot change the headers a redelivery hands out: writing them throws, the message is released and comes back intact', async () => {
  const errors: unknown[] = [];
  const withReport = new MemoryBroker({ queues: ['q'], onError: (err) => errors.push(err) });
  await withReport.connect();
  await withReport.publish('q', { id: 'm2', payload: Buffer.from('{}'), headers: { 'x-schema-version': '1' } });
  const seen: { headers: Record<string, string>; redelivered: boolean }[] = [];
  const sub = await withReport.consume('q', async (m: Received): Promise<Disposition> => {
    seen.push({ headers: { ...m.headers }, redelivered: m.redelivered });
    if (seen.length === 1) (m.headers as Record<string, string>)['x-schema-version'] = '9';
    return { kind: 'ack' };
  }, { prefetch: 1 });
  await waitFor('the redelivery', () => seen.length === 2, 5_000);
  await sub.stop();
  assert.deepEqual(seen, [
    { headers: { 'x-schema-version': '1' }, redelivered: false },
    { headers: { 'x-schema-version': '1' }, redelivered: true },
  ]);
  assert.equal(errors.length, 1, 'the failed first call is reported once');
  assert.ok(errors[0] instanceof TypeError);
  assert.equal(withReport.held(), 0);
  await withReport.close();
});

test('a deferral stores its own copy of the headers it was given', async () => {
  const b = await broker();
  await b.publish('q', { id: 'm3', payload: Buffer.from('{}'), headers: { 'x-schema-version': '1' } });
  const given = { 'x-schema-version': '1', 'x-turnout-deferrals': '1' };
  const seen: Record<string, string>[] = [];
  const sub = await b.consume('q', async (m: Received): Promise<Disposition> => {
    seen.push({ ...m.headers });
    if (seen.length > 1) return { kind: 'ack' };
    // After the broker took the disposition (its settle runs in the microtasks before this), before the copy is due.
    setImmediate(() => (given['x-turnout-deferrals'] = '99'));
    return { kind: 'defer', delayMs: 20, headers: given };
  }, { prefetch: 1 });
  await waitFor('the deferred copy', () => seen.length === 2, 5_000);
  await sub.stop();
  assert.deepEqual(seen, [{ 'x-schema-version': '1' }, { 'x-schema-version': '1', 'x-turnout-deferrals': '1' }]);
  assert.equal(b.held(), 0);
  await b.close();
});
