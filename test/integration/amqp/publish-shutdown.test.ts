// An app publishing through its sidecar while the sidecar stops (SIGTERM):
// every answer must be the truth. A 202 means the message is on the queue,
// once; any other answer (503 while closing, a refused connection after)
// means it is not, so the app's retry through another sidecar makes no
// duplicate. Before the adapters' close() let publishes finish, RabbitMQ
// took messages whose confirms the close cut off, and they were answered
// 503; before the HTTP server waited for a quiet moment to stop, requests
// already sent were reset unanswered ("other side closed").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit } from './rabbit.ts';

const PUBLISHERS = 64;

describe('amqp: publishing through a sidecar that stops', () => {
  const rabbit = new TestRabbit('pubstop');
  let release: () => void = () => {};
  let app: TestApp | undefined;
  let sidecar: TurnoutProcess | undefined;

  before(async () => {
    release = await rabbitShared();
  });
  after(async () => {
    await sidecar?.kill();
    await app?.close();
    await rabbit.teardown();
    release();
  });

  test('SIGTERM under 64 concurrent publishers: each 202 is on the queue once, nothing answered otherwise is', async () => {
    const source = await rabbit.queue('classic', 'source');
    // Quorum queues confirm later than classic ones: more publishes are awaiting their confirm when the close comes.
    const target = await rabbit.queue('quorum', 'target');
    app = await startApp(() => 200);
    const t = await startTurnout({ TURNOUT_BROKER: AMQP_URL, TURNOUT_SOURCE: source, TURNOUT_APP_URL: app.url });
    sidecar = t;
    const answers = new Map<string, string>();
    const publisher = async (p: number): Promise<void> => {
      for (let n = 0; ; n++) {
        const id = `p${p}-${n}`;
        let answer: string;
        try {
          const res = await fetch(`${t.baseUrl}/v1/publish/${encodeURIComponent(target)}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-turnout-message-id': id },
            body: JSON.stringify({ p, n }),
          });
          await res.arrayBuffer();
          answer = String(res.status);
        } catch (err) {
          answer = `error: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : String(err)}`;
        }
        answers.set(id, answer);
        // The first answer that is not a 202: this publisher's sidecar is gone (an app would go to another).
        if (answer !== '202') return;
      }
    };
    const publishers = Array.from({ length: PUBLISHERS }, (_, p) => publisher(p));
    await waitFor('1000 publishes answered', () => answers.size >= 1000, 30_000, 10);
    assert.equal(await t.stop('SIGTERM'), 0, t.output());
    await Promise.all(publishers);

    const accepted = [...answers].filter(([, a]) => a === '202').map(([id]) => id);
    const other = [...answers].filter(([, a]) => a !== '202');
    const tally = new Tally();
    for (const m of await rabbit.drain(target)) tally.record('queue', String(m.properties.messageId));
    assert.deepEqual(accepted.filter((id) => tally.placesOf(id).queue !== 1), [], 'every 202 is on the queue exactly once');
    assert.deepEqual(other.filter(([id]) => tally.placesOf(id).queue !== undefined).map(([id, a]) => `${id} (answered ${a})`), [], 'nothing answered otherwise reached the queue');
    assert.deepEqual([...tally.ids('queue')].filter((id) => !answers.has(id)), [], 'nothing on the queue that was not published');
    assert.equal(other.length, PUBLISHERS, 'each publisher stopped at its first answer that was not a 202');
    // Unambiguous answers only: a reset of a request already sent could mean either.
    assert.deepEqual(other.filter(([, a]) => a !== '503' && !a.includes('ECONNREFUSED')), [], 'every other answer is a 503 or a refused connection');
    assert.ok(accepted.length >= 1000 - PUBLISHERS, `${accepted.length} accepted`);
  });
});
