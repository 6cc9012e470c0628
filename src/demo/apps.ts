// The demo's two consumer apps: real HTTP servers on loopback. Blue is the
// legacy code (understands v1 only), green the new code (v2 only, with a bug
// on orders that carry a coupon).

import { hash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoApp {
  name: string;
  url: string;
  /** Message ids answered 2xx, with how often. */
  accepted: Map<string, number>;
  /** Requests answered with a failure status, by status. */
  failures: Map<number, number>;
  close(): Promise<void>;
}

type Verdict = (version: string, body: unknown, key: string) => number;

async function startApp(name: string, verdict: Verdict): Promise<DemoApp> {
  const accepted = new Map<string, number>();
  const failures = new Map<number, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      let status: number;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        status = verdict(String(req.headers['x-schema-version'] ?? ''), body, String(req.headers['x-customer'] ?? ''));
      } catch {
        status = 400; // cannot parse: a permanent verdict
      }
      const id = String(req.headers['x-turnout-message-id'] ?? '');
      if (status < 300) accepted.set(id, (accepted.get(id) ?? 0) + 1);
      else failures.set(status, (failures.get(status) ?? 0) + 1);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}/orders`,
    accepted,
    failures,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Legacy consumer: v1 payloads ({ email }) only; anything else is 415. */
export const startBlueApp = (): Promise<DemoApp> =>
  startApp('blue', (version, body) => (version === '1' && typeof (body as { email?: unknown }).email === 'string' ? 200 : 415));

/**
 * New consumer: v2 payloads ({ contact: { email } }) only; crashes (500) on
 * orders with a coupon. `failingKeys` (the rollout demo's bad release) makes
 * it also crash on the orders of 20 % of customers.
 */
export const startGreenApp = (options: { failingKeys?: boolean } = {}): Promise<DemoApp> =>
  startApp('green', (version, body, key) => {
    const b = body as { contact?: { email?: unknown }; coupon?: unknown };
    if (version !== '2' || typeof b.contact?.email !== 'string') return 415;
    if (options.failingKeys && failsFor(key)) return 500;
    return b.coupon !== undefined ? 500 : 200;
  });

/** One customer in five, picked by a hash unrelated to routing's, so green gets its share of them at every weight. */
function failsFor(key: string): boolean {
  return hash('md5', `fail:${key}`, 'buffer').readUInt32BE(0) % 10_000 < 2000;
}
