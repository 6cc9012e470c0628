// The status page's recent errors: the logger's warn/error (and its
// children's) are kept, newest first, bounded, and scrubbed of secrets.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scrubber } from '../../config/secrets.ts';
import { createLogger } from '../../lib/log.ts';
import { RecentErrors, tapLogger } from '../../src/recent-errors.ts';
import { logSink as sink } from '../support/log-sink.ts';


test('warn and error are kept with their reason, id and error text; info is not; the log still gets every line', () => {
  const out = sink();
  const recent = new RecentErrors({ scrub: scrubber([]) });
  const logger = tapLogger(createLogger('info', out.stream), recent);
  logger.info('hello');
  logger.warn({ id: 'm1', source: 'orders', reason: 'max-attempts', error: 'app answered 500' }, 'dead-lettered');
  logger.child({ part: 'broker' }).error({ err: new Error('connection lost') }, 'broker trouble');
  const list = recent.list();
  assert.equal(list.length, 2);
  assert.deepEqual({ ...list[0], at: '' }, { at: '', level: 'error', msg: 'broker trouble', error: 'connection lost' });
  assert.deepEqual({ ...list[1], at: '' }, { at: '', level: 'warn', msg: 'dead-lettered', error: 'app answered 500', id: 'm1', source: 'orders', reason: 'max-attempts' });
  assert.equal(out.lines.length, 3);
});

test('secrets are scrubbed and the list keeps the last 20', () => {
  const recent = new RecentErrors({ scrub: scrubber(['hunter2-secret']) });
  const logger = tapLogger(createLogger('silent'), recent);
  for (let i = 0; i < 25; i++) logger.warn({ err: new Error(`refused amqp://u:hunter2-secret@rabbit token hunter2-secret #${i}`) }, `try ${i}`);
  const list = recent.list();
  assert.equal(list.length, 20);
  assert.equal(list[0]?.msg, 'try 24');
  assert.equal(list[19]?.msg, 'try 5');
  for (const e of list) assert.ok(!JSON.stringify(e).includes('hunter2'), JSON.stringify(e));
});
