// Foreign messages with hostile header tables, published straight to the real
// RabbitMQ with amqplib and consumed by the real turnout process, while
// /healthz is probed the whole time. The regression of the hostile-input
// campaign's amqp.foreign stall (seed 1088384262): a message whose version
// header was 58 KiB of letters was dead-lettered, and the 'dead-lettered'
// log line quoting it held turnout's event loop for seconds (config/redact.ts
// was quadratic in a run of letters), after the copy had reached the
// dead-letter queue. Every message must end in its place, every probe must
// be answered, and the probing goes on until turnout has logged every end.

import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as amqp from 'amqplib';
import { startApp, type TestApp } from '../../support/app.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit } from './rabbit.ts';

/** Generous: an idle turnout answers in milliseconds; the stall held it for 2 s on a quiet machine and longer on a busy one. */
const PROBE_BOUND_MS = 2_000;
const PROBE_EVERY_MS = 100;
/** Probes after turnout logged the last end: the stall came after the dead-letter copy was confirmed. */
const PROBES_AFTER_END = 10;
/** Length of the long version headers: a foreign producer's 58 KiB one caused the stall. */
const LONG = 60_000;
/** An x-pad value that leaves the table just under amqplib's 64 KiB encoding buffer. */
const PAD = 65_536 - 60;

const deep = (n: number): Record<string, unknown> => {
  let v: Record<string, unknown> | string = 'leaf';
  for (let i = 0; i < n; i++) v = { d: v };
  return v as Record<string, unknown>;
};
/** A table as a foreign producer may send it, its "__proto__" key an own property (amqplib encodes it as a field). */
const protoTable = (): Record<string, unknown> => JSON.parse('{"__proto__":{"x-schema-version":"9"},"constructor":"c"}') as Record<string, unknown>;

interface Case {
  id: string;
  headers: Record<string, unknown>;
  answer: number;
  /** Where it must end. */
  end: { kind: 'app' } | { kind: 'dlq'; reason: string; appCalls: number; error?: RegExp };
}

describe('amqp: hostile foreign header tables, with /healthz probed throughout', () => {
  const rabbit = new TestRabbit('hostile');
  let release: () => void = () => {};
  let app: TestApp | undefined;
  let proc: TurnoutProcess | undefined;
  let conn: amqp.ChannelModel | undefined;

  before(async () => {
    release = await rabbitShared();
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await proc?.kill();
    await app?.close();
    await rabbit.teardown();
    release();
  });

  test('every message ends where it must (delivered, or dead-lettered with its reason) and every probe is answered', async () => {
    const source = await rabbit.queue('classic', 'src');
    const dlq = await rabbit.queue('classic', 'dlq');
    const cases: Case[] = [
      {
        // The counterexample's headers: a non-Latin-1 name with a null value, content-type and x-death as tables with __proto__/constructor keys.
        id: 'tables',
        headers: { 'x-日本': null, 'content-type': protoTable(), 'x-death': protoTable(), 'x-deep': deep(500), 'x-schema-version': '1' },
        answer: 200,
        end: { kind: 'app' },
      },
      // A header named __proto__ (an own key of the table; in a literal it would set the prototype).
      { id: 'arrays', headers: { 'x-a': Array.from({ length: 2000 }, (_, i) => i), ['__proto__']: protoTable(), 'x-schema-version': 1 }, answer: 200, end: { kind: 'app' } },
      { id: 'refused', headers: { 'x-t': protoTable(), 'x-deep': deep(500), 'x-schema-version': '1' }, answer: 400, end: { kind: 'dlq', reason: 'rejected', appCalls: 1 } },
      // The stall: the version header is not a version, and is long (amqplib encodes header tables up to 64 KiB).
      ...['h', '9', 'a-', 'h', '9', 'a-'].map((unit, i) => ({
        id: `long-version-${i}`,
        headers: { 'x-schema-version': unit.repeat(LONG / unit.length), 'x-death': protoTable() },
        answer: 200,
        end: { kind: 'dlq', reason: 'unsupported-version', appCalls: 0 },
      })),
      // A version to defer (no chain from 2 to 1) whose header table fits RabbitMQ's 64 KiB only without turnout's
      // deferral count: the deferred copy is refused for its shape, so it is dead-lettered at its next delivery
      // instead of being deferred in circles (found by the campaign, seed 554133760).
      { id: 'defer-refused', headers: { 'x-schema-version': '2', 'x-pad': 'p'.repeat(PAD) }, answer: 200, end: { kind: 'dlq', reason: 'unsupported-version', appCalls: 0, error: /the broker refused its deferred copy/ } },
    ].map((c) => ({ ...c, id: `hostile-${c.id}-${rabbit.prefix}` }) as Case);
    const planned = new Map(cases.map((c) => [c.id, c.answer]));

    app = await startApp((d) => planned.get(d.id) ?? 500);
    proc = await startTurnout({
      TURNOUT_BROKER: AMQP_URL,
      TURNOUT_SOURCE: source,
      TURNOUT_APP_URL: app.url,
      TURNOUT_DLQ: dlq,
      TURNOUT_ACCEPT: '1',
      TURNOUT_RETRY_BACKOFF: '10',
    });
    const p = proc;

    // The prober: one request at a time, each with its own bound; counts what it sent and what was answered in time.
    const probes = { sent: 0, answered: 0, failures: [] as string[] };
    let probing = true;
    const prober = (async () => {
      while (probing) {
        probes.sent++;
        const started = performance.now();
        try {
          const res = await fetch(`${p.baseUrl}/healthz`, { signal: AbortSignal.timeout(PROBE_BOUND_MS) });
          await res.text();
          if (res.status === 200) probes.answered++;
          else probes.failures.push(`probe ${probes.sent}: ${res.status}`);
        } catch (err) {
          probes.failures.push(`probe ${probes.sent}: no answer after ${(performance.now() - started).toFixed(0)} ms (${(err as Error).message})`);
        }
        await sleep(PROBE_EVERY_MS);
      }
    })();

    try {
      conn = await amqp.connect(AMQP_URL);
      const ch = await conn.createConfirmChannel();
      for (const c of cases) {
        await new Promise<void>((resolve, reject) => {
          ch.sendToQueue(source, Buffer.from(JSON.stringify({ id: c.id, n: 1 })), { persistent: true, messageId: c.id, contentType: 'application/json', headers: c.headers }, (err: unknown) => (err ? reject(err as Error) : resolve()));
        });
      }

      // Every end as turnout logged it (a dead-letter is logged after its copy is confirmed), and as the app saw it.
      const deadLogged = (id: string): boolean => p.logs().some((l) => l.msg === 'dead-lettered' && l.id === id);
      const ended = (c: Case): boolean => (c.end.kind === 'app' ? app?.accepted.has(c.id) === true : deadLogged(c.id));
      await waitFor('every message at its end', () => cases.every(ended), 60_000, 50).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; open: ${cases.filter((c) => !ended(c)).map((c) => c.id).join(', ')}\n${p.output().slice(-3000)}`);
      });
      const endedAt = probes.sent;
      await waitFor(`${PROBES_AFTER_END} probes after the last end`, () => probes.sent >= endedAt + PROBES_AFTER_END, 30_000, 50);
    } finally {
      probing = false;
      await prober;
    }

    const tally = new Tally();
    const dead = await rabbit.drain(dlq);
    for (const m of dead) tally.record('dlq', String(m.properties.messageId));
    for (const d of app.deliveries) tally.record(d.headers['x-turnout-attempt'] === '1' ? 'app' : 'app-again', d.id);
    assert.deepEqual(tally.missing(cases.map((c) => c.id)), []);
    assert.equal(await rabbit.ready(source), 0, 'nothing left on the source');
    for (const c of cases) {
      const places = tally.placesOf(c.id);
      if (c.end.kind === 'app') {
        assert.deepEqual(places, { app: 1 }, `${c.id}: delivered once, nothing else`);
      } else {
        assert.deepEqual(places, c.end.appCalls > 0 ? { app: c.end.appCalls, dlq: 1 } : { dlq: 1 }, `${c.id}: dead-lettered once after ${c.end.appCalls} app call(s)`);
        const copy = dead.find((m) => m.properties.messageId === c.id);
        const h = (copy?.properties.headers ?? {}) as Record<string, unknown>;
        assert.equal(String(h['x-turnout-dlq-reason']), c.end.reason, `${c.id}: reason`);
        if (c.end.error) assert.match(String(h['x-turnout-error']), c.end.error, `${c.id}: error`);
        assert.equal(copy?.content.toString(), JSON.stringify({ id: c.id, n: 1 }), `${c.id}: the original payload`);
      }
    }

    // The probes: enough of them to have covered the whole run, each answered within the bound.
    assert.ok(probes.sent >= PROBES_AFTER_END, `${probes.sent} probes`);
    assert.deepEqual(probes.failures, [], `${probes.failures.length} of ${probes.sent} probes of /healthz failed`);
    assert.equal(probes.answered, probes.sent);

    // What the app got for the hostile tables: rendered as JSON text (amqplib drops the table's own __proto__ key), the null-valued name left out.
    const headersOf = (id: string): IncomingHttpHeaders => app?.accepted.get(id)?.[0]?.headers ?? {};
    const tables = headersOf(cases[0]?.id ?? '');
    assert.equal(tables['x-death'], '{"constructor":"c"}');
    assert.equal(tables['content-type'], 'application/json', "the message's content type, not its content-type header");
    assert.equal(tables['x-deep'], JSON.stringify(deep(500)));
    assert.equal(Object.keys(tables).some((k) => k.includes('日本') || Buffer.from(k, 'latin1').toString('utf8').includes('日本')), false);
    assert.equal(headersOf(cases[1]?.id ?? '')['x-a'], JSON.stringify(Array.from({ length: 2000 }, (_, i) => i)));
    const letterCopy = dead.find((m) => m.properties.messageId === cases[3]?.id);
    const letterHeaders = (letterCopy?.properties.headers ?? {}) as Record<string, unknown>;
    assert.equal(String(letterHeaders['x-schema-version']), 'h'.repeat(LONG), 'the copy carries the header as it came');
    assert.match(String(letterHeaders['x-turnout-error']), new RegExp(`^x-schema-version "h{64}\\.\\.\\." \\(${LONG} characters\\) is not a version`));
  });
});
