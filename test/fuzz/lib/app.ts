// The campaign's app: a real HTTP server that takes whatever turnout sends
// (headers up to 16 MiB, no header count limit, so that the app is never the
// reason a message fails) and answers each message as its case planned.
// Header values are read as the bytes that came over the wire, decoded as
// UTF-8 (turnout sends header text as UTF-8).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FuzzDelivery {
  id: string;
  source: string;
  attempt: number;
  /** [name, value] as sent, values decoded from their wire bytes as UTF-8. */
  headers: [string, string][];
  body: Buffer;
  status: number;
}

export interface FuzzApp {
  url: string;
  /** What to answer for a message id (default 200). */
  plan: Map<string, number>;
  /** Every delivery, by message id. */
  byId: Map<string, FuzzDelivery[]>;
  close(): Promise<void>;
}

export const fromWire = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');

export async function startFuzzApp(): Promise<FuzzApp> {
  const plan = new Map<string, number>();
  const byId = new Map<string, FuzzDelivery[]>();
  const server: Server = createServer({ maxHeaderSize: 16 * 1024 * 1024 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i] as string, fromWire(req.rawHeaders[i + 1] as string)]);
      const get = (n: string): string => headers.find(([k]) => k.toLowerCase() === n)?.[1] ?? '';
      const id = get('x-turnout-message-id');
      const status = plan.get(id) ?? 200;
      const d: FuzzDelivery = { id, source: get('x-turnout-source'), attempt: Number(get('x-turnout-attempt')), headers, body: Buffer.concat(chunks), status };
      const list = byId.get(id) ?? [];
      list.push(d);
      byId.set(id, list);
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? '' : `fuzz app answers ${status}`);
    });
  });
  server.maxHeadersCount = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/fuzz`,
    plan,
    byId,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
