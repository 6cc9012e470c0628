// One turnout consumer under test, on the embedded broker or on RabbitMQ, with
// the campaign's app and configuration, and a way to see every dead-lettered
// copy by message id (RabbitMQ: read off the dead-letter queue with amqplib;
// embedded broker: turnout's "dead-lettered" log lines, checked against the
// dead-letter queue's depth, as nothing else can read that queue).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTurnout, depthOf, type TurnoutProcess } from '../../support/process.ts';
import { startFuzzApp, type FuzzApp } from './app.ts';
import { FUZZ_CONFIG } from './oracle.ts';
import { TestRabbit, AMQP_URL } from '../../integration/amqp/rabbit.ts';
import { rabbitShared } from '../../integration/amqp/lock.ts';

export interface DeadLettered {
  count: number;
  reasons: string[];
  /** RabbitMQ only: the copy's payload equals the original's and it names its source. */
  copies: { payload: Buffer; source: string }[];
}

export interface Rig {
  broker: 'memory' | 'amqp';
  proc: TurnoutProcess;
  app: FuzzApp;
  blue: string;
  green: string;
  dlq: string;
  exists(queue: string): boolean;
  /** Reads what reached the dead-letter queue since the last call into `dead`. */
  collectDead(): Promise<void>;
  dead: Map<string, DeadLettered>;
  /** The dead-letter queue's depth agrees with what was collected (embedded broker). */
  checkDeadDepth(): Promise<void>;
  /** The live translators file (rewrite it to hot-reload). */
  translators: string;
  close(): Promise<void>;
}

export const DEFAULT_TRANSLATORS = Object.entries(FUZZ_CONFIG.steps).map(([k, v]) => `"${k}": '${v}'`).join('\n') + '\n';

function translatorsFile(dir: string, text = DEFAULT_TRANSLATORS): string {
  const file = join(dir, 'translators.yaml');
  writeFileSync(file, text);
  return file;
}

const common = (app: FuzzApp, file: string): Record<string, string> => ({
  TURNOUT_APP_URL: app.url,
  TURNOUT_ACCEPT: '1',
  TURNOUT_TRANSLATORS: file,
  TURNOUT_GREEN_WEIGHT: '50',
  TURNOUT_MAX_ATTEMPTS: String(FUZZ_CONFIG.maxAttempts),
  TURNOUT_RETRY_BACKOFF: '1',
  TURNOUT_DEFER_DELAY: '50',
  TURNOUT_MAX_DEFERRALS: String(FUZZ_CONFIG.maxDeferrals),
  TURNOUT_MAX_MESSAGE_BYTES: String(FUZZ_CONFIG.maxBytes),
  TURNOUT_CONCURRENCY: '16',
  TURNOUT_LOG_LEVEL: 'info',
});

export async function memoryRig(options: { translators?: string } = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'turnout-fuzz-'));
  const app = await startFuzzApp();
  const [blue, green, dlq] = ['fz.blue', 'fz.green', 'fz.dead'];
  const translators = translatorsFile(dir, options.translators);
  const proc = await startTurnout({ ...common(app, translators), TURNOUT_SOURCE: `${blue},${green}`, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_DLQ: dlq });
  const dead = new Map<string, DeadLettered>();
  let offset = 0;
  let total = 0;
  return {
    broker: 'memory',
    translators,
    proc,
    app,
    blue,
    green,
    dlq,
    exists: (q) => [blue, green, dlq].includes(q),
    dead,
    collectDead: async () => {
      const out = proc.output();
      const end = out.lastIndexOf('\n') + 1;
      for (const line of out.slice(offset, end).split('\n')) {
        if (!line.startsWith('{')) continue;
        const l = JSON.parse(line) as Record<string, unknown>;
        if (l.msg !== 'dead-lettered') continue;
        const d = dead.get(String(l.id)) ?? { count: 0, reasons: [], copies: [] };
        d.count++;
        d.reasons.push(String(l.reason));
        dead.set(String(l.id), d);
        total++;
      }
      offset = end;
    },
    checkDeadDepth: async () => {
      const depth = await depthOf(proc.baseUrl, dlq);
      if (depth !== total) throw new Error(`dead-letter queue holds ${depth} messages, turnout logged ${total} dead-letterings`);
    },
    close: async () => {
      await proc.kill();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function amqpRig(): Promise<Rig> {
  const release = await rabbitShared();
  const dir = mkdtempSync(join(tmpdir(), 'turnout-fuzz-'));
  const rabbit = new TestRabbit('fuzz');
  const app = await startFuzzApp();
  let proc: TurnoutProcess | undefined;
  try {
    const blue = await rabbit.queue('classic', 'blue');
    const green = await rabbit.queue('classic', 'green');
    const dlq = await rabbit.queue('classic', 'dead');
    const translators = translatorsFile(dir);
    proc = await startTurnout({ ...common(app, translators), TURNOUT_BROKER: AMQP_URL, TURNOUT_SOURCE: `${blue},${green}`, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_DLQ: dlq });
    const p = proc;
    const dead = new Map<string, DeadLettered>();
    return {
      broker: 'amqp',
      translators,
      proc: p,
      app,
      blue,
      green,
      dlq,
      exists: (q) => [blue, green, dlq].includes(q),
      dead,
      collectDead: async () => {
        for (const m of await rabbit.drain(dlq)) {
          const id = String(m.properties.messageId);
          const h = (m.properties.headers ?? {}) as Record<string, unknown>;
          const d = dead.get(id) ?? { count: 0, reasons: [], copies: [] };
          d.count++;
          d.reasons.push(String(h['x-turnout-dlq-reason']));
          d.copies.push({ payload: m.content, source: String(h['x-turnout-source']) });
          dead.set(id, d);
        }
      },
      checkDeadDepth: async () => {},
      close: async () => {
        await p.kill();
        await app.close();
        await rabbit.teardown();
        rmSync(dir, { recursive: true, force: true });
        release();
      },
    };
  } catch (err) {
    await proc?.kill();
    await app.close();
    await rabbit.teardown();
    release();
    throw err;
  }
}
