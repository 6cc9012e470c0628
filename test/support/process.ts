// Starts the real `turnout` process (node src/cli.ts) with environment
// variables, for end-to-end tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

// The CLI of the same tree: its .ts source, or its .js when this module runs compiled (the benchmarks).
export const CLI = fileURLToPath(new URL(`../../src/cli.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url));

export interface TurnoutProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** stdout + stderr so far. */
  output(): string;
  /** JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  kill(): Promise<number | string>;
}

/** Runs a turnout command to completion (for --help, check, config errors). */
export function runTurnout(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`turnout ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    // 'close', not 'exit': at 'exit' the last of stdout and stderr may not be read yet.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The parent's environment without TURNOUT_* (tests say exactly what they set). */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TURNOUT_') && v !== undefined) env[k] = v;
  return env;
}

/**
 * Starts `turnout run` and waits until it listens (and, unless
 * waitReady is false, until /readyz says 200). TURNOUT_PORT defaults to 0;
 * the bound port is read from the log.
 */
export async function startTurnout(env: Record<string, string>, options: { waitReady?: boolean; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<TurnoutProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'run'], {
    env: { ...cleanEnv(), TURNOUT_PORT: '0', TURNOUT_HOST: '127.0.0.1', TURNOUT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  let ended: number | string | undefined;
  void exited.then((c) => (ended = c));
  const logs = (): Record<string, unknown>[] => jsonLines(out);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const port: number = await waitFor('turnout to listen', (): number | undefined => {
    if (ended !== undefined) throw new Error(`turnout exited with ${ended}:\n${out}`);
    const line = logs().find((l) => l.msg === 'HTTP listening');
    return line ? Number(line.port) : undefined;
  }, timeoutMs).then((p) => p as number, (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- output ---\n${out}`);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  if (options.waitReady ?? true) {
    await waitFor('turnout to be ready', async () => {
      if (ended !== undefined) throw new Error(`turnout exited with ${ended}:\n${out}`);
      return (await fetch(`${baseUrl}/readyz`)).status === 200;
    }, timeoutMs).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- output ---\n${out}`);
    });
  }
  return {
    child,
    port,
    baseUrl,
    output: () => out,
    logs,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (ended === undefined) child.kill(signal);
      return exited;
    },
    kill: async () => {
      if (ended === undefined) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** The depth turnout reports for a queue or topic (GET /v1/queues/{queue}; for Kafka, the group's lag). */
/** The JSON log lines of a process's output (other lines, e.g. a TTY view, are skipped). */
export function jsonLines(out: string): Record<string, unknown>[] {
  return out.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

export async function depthOf(baseUrl: string, queue: string): Promise<number> {
  const res = await fetch(`${baseUrl}/v1/queues/${encodeURIComponent(queue)}`);
  return ((await res.json()) as { depth: number }).depth;
}

/** POSTs a message through turnout's publish endpoint. */
export async function publishVia(baseUrl: string, body: string | Buffer, headers: Record<string, string> = {}, queue?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/v1/publish${queue !== undefined ? `/${encodeURIComponent(queue)}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}
