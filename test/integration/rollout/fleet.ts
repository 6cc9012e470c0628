// A blue/green fleet on the real RabbitMQ for the rollout tests: router
// replicas (ingress -> blue | green), a blue and a green consumer turnout
// with real HTTP apps (green dead-letters to blue), a producer publishing
// through the routers, and the accounting of every message.

import assert from 'node:assert/strict';
import { startApp, type TestApp } from '../../support/app.ts';
import { freePort } from '../../support/ports.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { AMQP_URL, TestRabbit } from '../amqp/rabbit.ts';

export const ADMIN_TOKEN = 'rollout-test-token';

export interface FleetOptions {
  routers?: number;
  /** Keys the green app fails (HTTP 500) — its failures fall back to blue. */
  greenFails?: (keyNumber: number) => boolean;
  /** Delay of the green app's answers (ms). */
  greenDelayMs?: number;
}

export interface Fleet {
  queues: { ingress: string; blue: string; green: string; dead: string };
  routers: (TurnoutProcess | undefined)[];
  routerUrls: string[];
  blue: TurnoutProcess;
  green: TurnoutProcess;
  blueApp: TestApp;
  greenApp: TestApp;
  /** Changes which keys the green app fails from now on. */
  setGreenFails(fails: ((keyNumber: number) => boolean) | undefined): void;
  /** host:port of every turnout process, for Prometheus. */
  targets(): string[];
  stopRouter(i: number): Promise<void>;
  startRouter(i: number): Promise<void>;
  /** Publishes until stop() (about `rate` per second), spreading over the live routers. */
  produce(rate: number): { stop(): Promise<string[]> };
  /** Waits until every id is accounted for, then asserts each was processed exactly once. */
  account(ids: string[]): Promise<{ blue: number; green: number }>;
  close(): Promise<void>;
}

export const keyOf = (n: number): string => `customer-${n % 200}`;

export async function startFleet(label: string, o: FleetOptions = {}): Promise<Fleet> {
  const rabbit = new TestRabbit(`rollout-${label}`);
  const queues = { ingress: await rabbit.queue('classic', 'ingress'), blue: await rabbit.queue('classic', 'blue'), green: await rabbit.queue('classic', 'green'), dead: await rabbit.queue('classic', 'dead') };
  const blueApp = await startApp(() => 200);
  let greenFails = o.greenFails;
  const produced = new Set<string>();
  const greenApp = await startApp((d) => {
    const n = Number(/customer-(\d+)/.exec(String(d.headers['x-key'] ?? ''))?.[1] ?? -1);
    const status = greenFails?.(n) ? 500 : 200;
    return o.greenDelayMs ? { status, delayMs: o.greenDelayMs } : status;
  });
  const common = { TURNOUT_BROKER: AMQP_URL, TURNOUT_RETRY_BACKOFF: '10', TURNOUT_CONCURRENCY: '8', TURNOUT_LOG_LEVEL: 'warn' };
  const routerPorts = await Promise.all(Array.from({ length: o.routers ?? 1 }, () => freePort()));
  const routerEnv = (port: number): Record<string, string> => ({
    ...common, TURNOUT_PORT: String(port), TURNOUT_SOURCE: queues.ingress, TURNOUT_BLUE: queues.blue, TURNOUT_GREEN: queues.green,
    TURNOUT_GREEN_WEIGHT: '0', TURNOUT_DLQ: queues.dead, TURNOUT_ADMIN_TOKEN: ADMIN_TOKEN, TURNOUT_LOG_LEVEL: 'info',
  });
  // Started together: each process spends most of its start-up compiling, which the machine's cores share.
  // Generous start-up time: the machine is shared, and a loaded one takes long to start node processes.
  const slow = { timeoutMs: 90_000 };
  const [blue, green, ...started] = await Promise.all([
    startTurnout({ ...common, TURNOUT_LOG_LEVEL: 'info', TURNOUT_SOURCE: queues.blue, TURNOUT_APP_URL: blueApp.url, TURNOUT_DLQ: queues.dead }, slow),
    startTurnout({ ...common, TURNOUT_LOG_LEVEL: 'info', TURNOUT_SOURCE: queues.green, TURNOUT_APP_URL: greenApp.url, TURNOUT_DLQ: queues.blue, TURNOUT_MAX_ATTEMPTS: '2' }, slow),
    ...routerPorts.map((p) => startTurnout(routerEnv(p), slow)),
  ]);
  const routers: (TurnoutProcess | undefined)[] = started;
  let next = 0;
  const publishOne = async (n: number): Promise<string> => {
    const id = `m-${String(n).padStart(6, '0')}`;
    for (let attempt = 0; ; attempt++) {
      const live = routers.filter((r): r is TurnoutProcess => r !== undefined);
      const r = live[(n + attempt) % Math.max(1, live.length)];
      if (r) {
        try {
          const res = await fetch(`${r.baseUrl}/v1/publish/${encodeURIComponent(queues.ingress)}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-turnout-message-id': id, 'x-turnout-key': keyOf(n), 'x-key': keyOf(n) },
            body: JSON.stringify({ n }),
          });
          if (res.status === 202) {
            produced.add(id);
            return id;
          }
        } catch {
          // that router just went away: the next one takes it
        }
      }
      assert.ok(attempt < 200, `could not publish ${id}`);
      await sleep(20);
    }
  };
  return {
    queues,
    routers,
    routerUrls: routerPorts.map((p) => `http://127.0.0.1:${p}`),
    blue,
    green,
    blueApp,
    greenApp,
    setGreenFails: (f) => {
      greenFails = f;
    },
    targets: () => [...routers.filter((r): r is TurnoutProcess => r !== undefined), blue, green].map((p) => `127.0.0.1:${p.port}`),
    stopRouter: async (i) => {
      const r = routers[i];
      routers[i] = undefined;
      await r?.stop('SIGTERM');
    },
    startRouter: async (i) => {
      routers[i] = await startTurnout(routerEnv(routerPorts[i] as number), { timeoutMs: 90_000 });
    },
    produce: (rate) => {
      const ids: string[] = [];
      let running = true;
      const loop = (async () => {
        const started = Date.now();
        while (running) {
          ids.push(await publishOne(next++));
          const due = started + (ids.length * 1000) / rate;
          if (due > Date.now()) await sleep(due - Date.now());
        }
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
          return ids;
        },
      };
    },
    account: async (ids) => {
      const done = (id: string): boolean => blueApp.accepted.has(id) || greenApp.accepted.has(id);
      await waitFor(`all ${ids.length} messages to be processed`, () => ids.every(done), 60_000, 100);
      // Let late duplicates (if any) show up before counting.
      await sleep(500);
      const dead = await rabbit.drain(queues.dead);
      assert.deepEqual(dead.map((m) => m.properties.messageId ?? m.properties.headers?.['x-turnout-message-id']), [], 'nothing dead-lettered');
      let b = 0;
      let g = 0;
      for (const id of ids) {
        const nb = blueApp.accepted.get(id)?.length ?? 0;
        const ng = greenApp.accepted.get(id)?.length ?? 0;
        assert.equal(nb + ng, 1, `${id} processed ${nb} times by blue and ${ng} by green`);
        b += nb;
        g += ng;
      }
      const unknown = [...blueApp.accepted.keys(), ...greenApp.accepted.keys()].filter((id) => !produced.has(id));
      assert.deepEqual(unknown, [], 'only produced messages were processed');
      for (const q of Object.values(queues)) assert.equal(await rabbit.ready(q), 0, `${q} is empty`);
      return { blue: b, green: g };
    },
    close: async () => {
      for (const p of [...routers, blue, green]) await p?.kill();
      await Promise.all([blueApp.close(), greenApp.close()]);
      await rabbit.teardown();
    },
  };
}

/** Weight every router reports now. */
export async function routerWeights(fleet: Fleet): Promise<number[]> {
  return Promise.all(fleet.routerUrls.map(async (u) => ((await (await fetch(`${u}/v1/routes`)).json()) as { greenWeight: number }).greenWeight));
}
