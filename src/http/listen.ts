// Opening a port, for every HTTP server turnout runs (the sidecar's and the
// rollout controller's): resolves with the port bound (port 0 picks one),
// rejects with the listen error (EADDRINUSE…) instead of throwing later.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
