// Starts the real `turnout rollout PLAN.yaml` process (node src/cli.ts) for
// end-to-end tests, and reads its HTTP status and JSON log.

import { spawn } from 'node:child_process';
import { CLI, jsonLines } from './process.ts';
import { waitFor } from './wait.ts';

export interface ControllerProcess {
  pid: number;
  baseUrl: string;
  output(): string;
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  status(): Promise<RolloutStatus>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface RolloutStatus {
  phase: string;
  step: number;
  weight: number;
  failures: number;
  reason?: string;
  held?: string;
  failedCheck?: { name: string; value: number; max: number | null; min: number | null };
  checks: { name: string; value: number | null; min: number | null; max: number | null; result: string; reason?: string }[];
  history: { event: string; step: number; weight: number; detail?: string }[];
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TURNOUT_') && v !== undefined) env[k] = v;
  return env;
}

export async function startController(args: string[], env: Record<string, string> = {}): Promise<ControllerProcess> {
  const child = spawn(process.execPath, [CLI, 'rollout', ...args], {
    env: { ...cleanEnv(), TURNOUT_PORT: '0', TURNOUT_HOST: '127.0.0.1', TURNOUT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let ended: number | string | undefined;
  // 'close', not 'exit': at 'exit' the child's last output may not be read yet, and a controller that
  // listens and ends at once (an ended rollout) was taken for one that exited before listening.
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve((ended = code ?? signal ?? -1))));
  const logs = (): Record<string, unknown>[] => jsonLines(out);
  const port = await waitFor('the controller to listen', () => {
    // The line first: a controller for an ended rollout listens and exits at once, maybe before the first look.
    const line = logs().find((l) => l.msg === 'HTTP listening');
    if (line) return Number(line.port);
    if (ended !== undefined) throw new Error(`turnout rollout exited with ${ended}:\n${out}`);
    return undefined;
    // Generous: on a loaded shared machine a node start-up alone can take many seconds.
  }, 60_000).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    pid: child.pid as number,
    baseUrl,
    output: () => out,
    logs,
    exited,
    status: async () => (await (await fetch(`${baseUrl}/v1/rollout`)).json()) as RolloutStatus,
    kill: async (signal = 'SIGKILL') => {
      if (ended === undefined) child.kill(signal);
      return exited;
    },
  };
}
