// Broker benchmarks run only where their broker is reachable. A benchmark
// that cannot reach its broker exits with SKIP_EXIT; scripts/bench.sh reports
// it as skipped rather than failed.

import { canConnect } from '../../src/net.ts';

export const SKIP_EXIT = 3;

/** Exits with SKIP_EXIT (and says why on stderr) unless host:port accepts connections. */
export async function skipUnlessReachable(what: string, host: string, port: number): Promise<void> {
  if (await canConnect(host, port, 2000)) return;
  process.stderr.write(`${what} is not reachable at ${host}:${port}; benchmark skipped\n`);
  process.exit(SKIP_EXIT);
}
