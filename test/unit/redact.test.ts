// redactUrls runs over every log line turnout writes, and log lines quote
// what producers sent (a dead-letter line quotes the version header). The
// former expression was quadratic in a long run of letters: a 58 KiB version
// header held the event loop for two seconds (the hostile-input campaign's
// amqp.foreign stall). Here: the same masking as before, and linear work on
// texts the former expression could not finish within hours.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { redactUrls } from '../../config/redact.ts';

// The former expression: right, and the reference for short texts.
const FORMER = /([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s@/]*@/gi;

/**
 * Runs `code` (an async function body; `load(path)` imports a module of the
 * repository) in a worker and resolves with what it returns, or rejects when
 * it has not returned within `boundMs`; the worker is then terminated, so a
 * runaway expression fails the test instead of hanging it.
 */
function returnsWithin<T>(boundMs: number, code: string): Promise<T> {
  const root = new URL('../../', import.meta.url).href;
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const load = (path) => import(new URL(path, workerData.root).href);
     (async () => { ${code} })().then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ err: String(e?.stack ?? e) }));`,
    { eval: true, workerData: { root } },
  );
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`did not return within ${boundMs} ms`));
    }, boundMs);
    worker.once('message', (m: { ok?: T; err?: string }) => {
      clearTimeout(timer);
      void worker.terminate();
      if (m.err !== undefined) reject(new Error(m.err));
      else resolve(m.ok as T);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// A bound four orders of magnitude above what the linear expression needs
// (milliseconds for these texts, on a loaded machine too); the former one
// needed ~2 s for 40 000 letters and grows with the square: hours for a MiB.
const BOUND_MS = 60_000;

describe('redactUrls on hostile text', () => {
  test('masks exactly what the former expression masked (short texts, every mix of scheme characters, ":", "/", "@" and spaces)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', 'h', '9', '+', '.', '-', ':', '/', '@', ' ', '_'), maxLength: 40 });
    fc.assert(fc.property(text, (t) => redactUrls(t) === t.replace(FORMER, '$1***@')), { numRuns: 20_000 });
    for (const t of ['9amqp://u:p@h', '-x.amqp://u:p@h', 'amqp://u:p@h/9http://a:b@c', 'AMQPS://U:P@H', 'a:amqp://u:p@h']) {
      assert.equal(redactUrls(t), t.replace(FORMER, '$1***@'), t);
    }
  });

  test('a MiB of scheme characters, with and without "://" and a user, is scanned once; a password after it is still masked', async () => {
    const results = await returnsWithin<[string, number, boolean][]>(BOUND_MS, `
      const { redactUrls } = await load('config/redact.ts');
      const n = 1 << 20;
      const texts = {
        letters: 'h'.repeat(n),
        digits: '9'.repeat(n),
        'dashed words': 'a-'.repeat(n / 2),
        'after a scheme': 'amqp://' + 'h'.repeat(n),
        'after a user': 'amqp://u:' + 'h'.repeat(n),
        'between letters': 'h'.repeat(n) + ':' + 'h'.repeat(n),
      };
      return Object.entries(texts).map(([name, t]) => {
        const out = redactUrls(t + ' amqp://guest:hunter22@rabbit/');
        return [name, out.length - t.length, out.endsWith(' amqp://guest:***@rabbit/')];
      });
    `);
    assert.equal(results.length, 6);
    for (const [name, grew, masked] of results) {
      assert.equal(masked, true, `${name}: the trailing URL's password is masked`);
      assert.equal(grew, ' amqp://guest:***@rabbit/'.length, `${name}: the hostile part is unchanged`);
    }
  });

  test('a dead-letter log line quoting a MiB-long version header goes through the scrubbing logger (secrets still scrubbed)', async () => {
    const lines = await returnsWithin<string[]>(BOUND_MS, `
      const { Writable } = await import('node:stream');
      const { createLogger } = await load('lib/log.ts');
      const { scrubber } = await load('config/secrets.ts');
      const out = [];
      const sink = new Writable({ write(chunk, _enc, done) { out.push(chunk.toString()); done(); } });
      const logger = createLogger('info', sink, scrubber(['hunter22']));
      const raw = 'h'.repeat(1 << 20);
      logger.warn({ id: 'm-1', source: 'orders', reason: 'unsupported-version', error: 'x-schema-version "' + raw + '" is not a version', attempts: 0 }, 'dead-lettered');
      logger.warn({ err: new Error('connect amqp://guest:hunter22@rabbit/ ' + raw) }, 'failed');
      await new Promise((r) => setImmediate(r));
      return out;
    `);
    assert.equal(lines.length, 2);
    const dead = JSON.parse(lines[0] as string) as { msg: string; error: string };
    assert.equal(dead.msg, 'dead-lettered');
    assert.equal(dead.error.length, (1 << 20) + 'x-schema-version "" is not a version'.length);
    assert.doesNotMatch(lines[1] as string, /hunter22/);
  });
});
