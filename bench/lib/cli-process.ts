// The turnout CLI as a separate process, for the benchmark case that measures
// the real sidecar rather than turnout assembled inside a benchmark child: the
// same entry point, module graph, node flags and environment as the image
// (BENCH_CLI_ENTRY names the bundle's cli.js when the benchmark built one;
// else the CLI next to this module's tree). The embedded broker lives inside that process, so messages go
// in through its own POST /v1/publish/{queue}.

import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { freePort } from '../../test/support/ports.ts';
import { peakRssMiB } from './proc.ts';
import { cliEntryFor } from './runtime.ts';

export interface CliOptions {
  appUrl: string;
  source: string;
  dlq: string;
  accept: string;
  concurrency: number;
  translatorsFile: string;
  /** Messages allowed to wait in the embedded broker before the producer pauses. */
  backlog: number;
}

export interface CliProcess {
  /** Publishes n messages with ids `${prefix}-${i}` through turnout's HTTP API, `width` at a time. */
  publish(prefix: string, n: number, payload: Buffer, headers: Record<string, string>, width: number): Promise<void>;
  /** The process's peak resident set so far (VmHWM), MiB. */
  peakRssMiB(): number;
  /** SIGTERM, then what turnout left behind: messages dead-lettered, and its exit code. */
  stop(): Promise<{ deadLettered: number; exitCode: number | null }>;
}

/** Starts `node <this process's node flags> cli run` with this process's environment plus the TURNOUT_ variables, and waits until /readyz answers 200. */
export async function startCli(o: CliOptions): Promise<CliProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, process.env.BENCH_CLI_ENTRY ?? cliEntryFor(import.meta.url, '../../src/cli'), 'run'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      TURNOUT_BROKER: 'memory',
      TURNOUT_SOURCE: o.source,
      TURNOUT_DLQ: o.dlq,
      TURNOUT_APP_URL: o.appUrl,
      TURNOUT_ACCEPT: o.accept,
      TURNOUT_CONCURRENCY: String(o.concurrency),
      TURNOUT_TRANSLATORS: o.translatorsFile,
      TURNOUT_PORT: String(port),
      TURNOUT_HOST: '127.0.0.1',
      TURNOUT_LOG_LEVEL: 'warn',
    },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await pool.request({ path, method: 'GET' });
    const text = await r.body.text();
    return { status: r.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`turnout exited ${child.exitCode} before it was ready`);
    const ready = await get('/readyz').catch(() => undefined);
    if (ready?.status === 200) break;
    if (Date.now() > deadline) throw new Error('turnout was not ready within 30 s');
    await sleep(50);
  }
  const depth = async (queue: string): Promise<number> => Number((await get(`/v1/queues/${queue}`)).body.depth ?? 0);

  return {
    async publish(prefix, n, payload, headers, width) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < n) {
          const i = next++;
          // The embedded broker holds what a real broker would; keep it to a backlog.
          if (i % 250 === 0) while ((await depth(o.source)) > o.backlog) await sleep(2);
          const r = await pool.request({ path: `/v1/publish/${o.source}`, method: 'POST', headers: { ...headers, 'x-turnout-message-id': `${prefix}-${i}` }, body: payload });
          const text = await r.body.text();
          if (r.statusCode !== 202) throw new Error(`POST /v1/publish/${o.source} answered ${r.statusCode}: ${text}`);
        }
      };
      await Promise.all(Array.from({ length: width }, worker));
    },
    peakRssMiB: () => peakRssMiB(child.pid),
    async stop() {
      const deadLettered = await depth(o.dlq);
      await pool.close();
      child.kill('SIGTERM');
      return { deadLettered, exitCode: await exited };
    },
  };
}
