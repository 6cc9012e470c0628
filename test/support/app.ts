// A small real HTTP app for end-to-end tests: records every delivery (by
// x-turnout-message-id) and answers with whatever `behave` decides.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  id: string;
  attempt: number;
  source: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export type Answer = number | { status: number; delayMs?: number; body?: string; headers?: Record<string, string> };

export interface TestApp {
  url: string;
  port: number;
  deliveries: Delivery[];
  /** Deliveries answered with 2xx, by message id. */
  accepted: Map<string, Delivery[]>;
  /** Requests currently being answered. */
  active(): number;
  close(): Promise<void>;
}

export async function startApp(behave: (d: Delivery) => Answer | Promise<Answer> = () => 200, port = 0): Promise<TestApp> {
  const deliveries: Delivery[] = [];
  const accepted = new Map<string, Delivery[]>();
  let active = 0;
  const server: Server = createServer(async (req, res) => {
    active++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const h = req.headers;
    const d: Delivery = {
      id: String(h['x-turnout-message-id'] ?? ''),
      attempt: Number(h['x-turnout-attempt'] ?? 0),
      source: String(h['x-turnout-source'] ?? ''),
      headers: h,
      body: Buffer.concat(chunks),
      at: Date.now(),
    };
    deliveries.push(d);
    let a: Answer;
    try {
      a = await behave(d);
    } catch {
      a = 500;
    }
    const ans = typeof a === 'number' ? { status: a } : a;
    if (ans.delayMs) await new Promise((r) => setTimeout(r, ans.delayMs));
    if (ans.status >= 200 && ans.status < 300) {
      const list = accepted.get(d.id) ?? [];
      list.push(d);
      accepted.set(d.id, list);
    }
    active--;
    if (res.destroyed) return;
    res.writeHead(ans.status, { 'content-type': 'text/plain', ...ans.headers });
    res.end(ans.body ?? '');
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${p}/messages`,
    port: p,
    deliveries,
    accepted,
    active: () => active,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
