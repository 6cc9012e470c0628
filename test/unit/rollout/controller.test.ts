// The controller's state machine with fake routers and a fake analysis
// (real ones are in test/integration/rollout): failureLimit, noData
// pause | fail | pass, resume at a saved step, the weight-file order, and the
// HTTP API's 401/403.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createLogger } from '../../../lib/log.ts';
import { Controller } from '../../../src/rollout/controller.ts';
import { RolloutHttp } from '../../../src/rollout/http.ts';
import type { Measurement } from '../../../src/rollout/judge.ts';
import { parsePlan } from '../../../src/rollout/plan.ts';
import type { RouterState } from '../../../src/rollout/routers.ts';
import type { Status } from '../../../src/rollout/status.ts';
import type { HttpLimits } from '../../../src/http/limits.ts';
import { holdConnection, rawExchange } from '../../support/raw-http.ts';

const logger = createLogger('silent');
const planOf = (extra = ''): ReturnType<typeof parsePlan> =>
  parsePlan(`routers: ["http://r:1"]\nsteps: [10, 50, 100]\ninterval: 10ms\nanalysis:\n  scrape: ["http://g:1"]\n${extra}  checks:\n    - name: dl\n      metric: dead-letter-ratio\n      max: 0.1\n`);

function fakes(measure: (judgement: number) => Measurement) {
  const weights: number[] = [];
  let routerWeight = 0;
  let judgements = 0;
  const saved: Status[] = [];
  const written: number[] = [];
  const routers = {
    set: async (w: number): Promise<RouterState[]> => {
      weights.push(w);
      routerWeight = w;
      return [{ url: 'http://r:1', ok: true, weight: w }];
    },
    confirm: async (w: number): Promise<RouterState[]> => [{ url: 'http://r:1', ok: routerWeight === w, weight: routerWeight }],
  };
  const analysis = { open: async () => ({ measure: async () => [measure(++judgements)] }) };
  return { weights, saved, written, routers, analysis, persist: (s: Status) => saved.push(structuredClone(s)), writeWeight: (w: number) => written.push(w), judgements: () => judgements };
}

test('healthy: every step judged once, in order, promoted at 100', async () => {
  const f = fakes(() => ({ value: 0 }));
  const c = new Controller({ plan: planOf(), logger, ...f });
  assert.equal(await c.run(), 'promoted');
  assert.deepEqual(f.weights, [10, 50, 100, 100]);
  assert.deepEqual(f.written, [10, 50, 100, 100]);
  assert.equal(f.judgements(), 3);
  assert.deepEqual(c.status.history.filter((h) => h.event === 'passed').map((h) => h.weight), [10, 50, 100]);
});

test('failureLimit 1: a failure is re-judged at the same weight; the second failure rolls back to 0, naming the check', async () => {
  const f = fakes(() => ({ value: 0.5 }));
  const c = new Controller({ plan: planOf('  failureLimit: 1\n'), logger, ...f });
  assert.equal(await c.run(), 'rolled-back');
  assert.equal(f.judgements(), 2);
  assert.deepEqual(f.weights, [10, 10, 0]);
  assert.match(String(c.status.reason), /check dl 0\.5 > max 0\.1/);
  assert.equal(c.status.failedCheck?.name, 'dl');
});

test('noData fail counts a failure; noData pass goes on; noData pause holds and goes on when data is back', async () => {
  const none = (): Measurement => ({ noData: 'nothing received' });
  const a = fakes(none);
  assert.equal(await new Controller({ plan: planOf('  noData: fail\n'), logger, ...a }).run(), 'rolled-back');
  const b = fakes(none);
  assert.equal(await new Controller({ plan: planOf('  noData: pass\n'), logger, ...b }).run(), 'promoted');
  const p = fakes((n) => (n <= 3 ? { noData: 'Prometheus unreachable' } : { value: 0 }));
  const c = new Controller({ plan: planOf('  noData: pause\n'), logger, ...p });
  assert.equal(await c.run(), 'promoted');
  const pausedAt = p.saved.filter((s) => s.phase === 'paused').map((s) => s.weight);
  assert.ok(pausedAt.length > 0 && pausedAt.every((w) => w === 10), 'held at the first step while there was no data');
  assert.deepEqual(p.weights.slice(0, 4), [10, 10, 10, 10], 'the weight never rose during the pause');
  assert.ok(p.saved.some((s) => /no data: dl: Prometheus unreachable/.test(s.reason ?? '')));
});

test('resume from a saved state: the step it was in is set and judged afresh; nothing past it before that', async () => {
  const first = fakes(() => ({ value: 0 }));
  // Stop as soon as step 2 is in the state (as a SIGKILL would find it).
  const stopAt = first.persist;
  let saved: Status | undefined;
  const c1b = new Controller({ plan: planOf(), logger, ...first, persist: (s) => { stopAt(s); if (s.step === 2 && !saved) { saved = structuredClone(s); c1b.stop(); } } });
  await c1b.run();
  assert.ok(saved);
  assert.equal(saved.step, 2);
  const second = fakes(() => ({ value: 0 }));
  const c2 = new Controller({ plan: planOf(), logger, ...second, resume: { status: saved, manualPause: false } });
  assert.equal(await c2.run(), 'promoted');
  assert.equal(second.weights[0], 50, 'the first weight after the restart is the step it was in');
  assert.equal(second.judgements(), 2, 'steps 2 and 3 judged');
});

const LIMITS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, maxHeaders: 100, maxHeaderBytes: 16_384, maxConnections: 1024 };

test('HTTP limits as the sidecar\'s: 431 past the header cap, 408 for a slow-loris client, 503 past the connection cap while probes are answered', async () => {
  const f = fakes(() => ({ value: 0 }));
  const c = new Controller({ plan: planOf(), logger, ...f });
  const http = new RolloutHttp({ status: () => c.status, command: (cmd) => c.command(cmd), registry: new Registry(), adminToken: 'secret-token', logger,
    limits: { headersTimeoutMs: 500, requestTimeoutMs: 1000, maxHeaders: 10, maxHeaderBytes: 2048, maxConnections: 2 } });
  const port = await http.listen(0, '127.0.0.1');
  const get = (extra: string[] = []): string => ['GET /v1/rollout HTTP/1.1', 'Host: c', ...extra, 'Connection: close', '', ''].join('\r\n');
  try {
    assert.equal((await rawExchange(port, { send: get() })).status, 200);
    assert.equal((await rawExchange(port, { send: get(Array.from({ length: 20 }, (_, i) => `x-h${i}: ${i}`)) })).status, 431);
    assert.equal((await rawExchange(port, { send: get([`x-big: ${'a'.repeat(4096)}`]) })).status, 431);
    const loris = await rawExchange(port, { send: 'GET /v1/rollout HTTP/1.1\r\nHost: c\r\n', dribble: 'X-Slow: a\r\n', everyMs: 100 });
    assert.equal(loris.status, 408, loris.text);
    assert.ok(loris.closed);
    const held = [await holdConnection(port), await holdConnection(port)];
    try {
      for (const h of held) assert.equal((await h.request('GET /healthz HTTP/1.1\r\nHost: c\r\n\r\n')).status, 200);
      assert.equal((await rawExchange(port, { send: get() })).status, 503, 'past the cap');
      assert.equal((await rawExchange(port, { send: 'GET /healthz HTTP/1.1\r\nHost: c\r\n\r\n' })).status, 200, 'a probe past the cap is answered');
    } finally {
      for (const h of held) h.close();
    }
  } finally {
    await http.close();
  }
});

test('HTTP: 403 without a configured token, 401 with a wrong one, 202 with the right one; 409 once ended', async () => {
  const f = fakes(() => ({ value: 0 }));
  const c = new Controller({ plan: planOf(), logger, ...f });
  for (const [token, given, want] of [[undefined, 'x', 403], ['secret-token', 'wrong', 401], ['secret-token', 'secret-token', 202]] as const) {
    const http = new RolloutHttp({ status: () => c.status, command: (cmd) => c.command(cmd), registry: new Registry(), adminToken: token, logger, limits: LIMITS });
    const port = await http.listen(0, '127.0.0.1');
    const res = await fetch(`http://127.0.0.1:${port}/v1/rollout/pause`, { method: 'POST', headers: { authorization: `Bearer ${given}` } });
    assert.equal(res.status, want);
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/rollout`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    await http.close();
  }
  assert.equal(c.status.phase, 'paused');
  c.command('abort');
  assert.equal(await c.run(), 'aborted');
  assert.deepEqual(f.weights, [0]);
  assert.equal(c.command('resume').status, 409);
});
