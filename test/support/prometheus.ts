// A real Prometheus server (Debian's package, installed by
// scripts/test-setup.d/40-prometheus.sh) for one test: its own loopback
// port, scrape configuration and storage directory; killed by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface TestPrometheus {
  url: string;
  port: number;
  /** Stops the server (SIGKILL by PID); start() brings it back on the same port and storage. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  output(): string;
}

/** Starts prometheus scraping `targets` (host:port) every second. */
export async function startPrometheus(targets: string[]): Promise<TestPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-prom-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: turnout',
    '    static_configs:',
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n'));
  let child: ChildProcess | undefined;
  let out = '';
  const url = `http://127.0.0.1:${port}`;
  const start = async (): Promise<void> => {
    const c = spawn('prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    let exited = false;
    c.on('exit', () => (exited = true));
    // Not installed (scripts/test-setup.d/40-prometheus.sh): say so at once, not after the 30 s wait.
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve);
      c.once('error', (err) => reject(new Error(`cannot start prometheus (${err.message}); scripts/test-setup.d/40-prometheus.sh installs it`)));
    });
    await waitFor('prometheus to be ready', async () => {
      if (exited) throw new Error(`prometheus exited:\n${out}`);
      return (await fetch(`${url}/-/ready`)).status === 200;
    }, 30_000, 100);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    output: () => out,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until Prometheus has scraped every target successfully at least once. */
export async function waitForTargets(prom: TestPrometheus, count: number): Promise<void> {
  await waitFor(`prometheus to scrape ${count} targets`, async () => {
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent('sum(up)')}`);
    const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
    return Number(body.data.result[0]?.value[1] ?? 0) >= count;
  }, 20_000, 200);
}
