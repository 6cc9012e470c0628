// Broker benchmarks run only where their broker is reachable. A benchmark
// that cannot reach its broker exits with SKIP_EXIT; scripts/bench.sh reports
// it as skipped rather than failed.

import { connect } from 'node:net';

export const SKIP_EXIT = 3;

/** Whether a TCP connection to host:port opens within timeoutMs. */
export function tcpReachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Exits with SKIP_EXIT (and says why on stderr) unless host:port accepts connections. */
export async function skipUnlessReachable(what: string, host: string, port: number): Promise<void> {
  if (await tcpReachable(host, port)) return;
  process.stderr.write(`${what} is not reachable at ${host}:${port}; benchmark skipped\n`);
  process.exit(SKIP_EXIT);
}
