// Each benchmark case runs in its own child process so that its peak RSS is
// its own. The child prints one result line; the parent collects it.

import { spawn } from 'node:child_process';

const MARK = '@@bench-result ';

/** What a case reports. Numbers only, so the parent can tabulate any case. */
export interface CaseResult {
  case: string;
  messages: number;
  perSecond: number;
  p50Ms?: number;
  p99Ms?: number;
  peakRssMiB: number;
  /** Case-specific figures (rounds, producer lag, …). */
  extra: Record<string, number>;
  /** Raw figures the parent pools across repeated runs of a case (per-round rates, latency samples). */
  samples?: number[];
  /** Correctness problems (lost, duplicated or dead-lettered messages): a run with any is invalid. */
  problems: string[];
}

/** In the child: hand the result to the parent. */
export function emitResult(result: CaseResult): void {
  process.stdout.write(`${MARK}${JSON.stringify(result)}\n`);
}

/** In the parent: run `env… node [nodeArgs] script args…` and return the result it emitted. */
export function runChild(script: string, args: string[], nodeArgs: string[] = [], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code === 0 && line) return resolve(JSON.parse(line.slice(MARK.length)) as CaseResult);
      reject(new Error(`${args.join(' ')}: exited ${signal ?? code} without a result${out ? `\n${out.trim()}` : ''}`));
    });
  });
}
