// A real HTTP app for the fault-under-load tests that can be slow, go down
// and come back on the same port (flapping), or answer garbage: retryable
// status codes, a response cut off in its status line or its body, a reset.
// Each turnout generation posts to its own path (/g<N>), so every delivery
// says which process made it. Ids for which `rejects` holds are always
// answered 400 (turnout dead-letters them at once, `rejected`).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type AppMode = { kind: 'ok' } | { kind: 'slow'; ms: number } | { kind: 'garbage' } | { kind: 'down' };

export interface ChaosDelivery {
  id: string;
  attempt: number;
  gen: number;
  redelivered: boolean;
  at: number;
  /** accepted = 2xx, rejected = 400, else the garbage answered. */
  answer: string;
}

export interface ChaosApp {
  port: number;
  urlFor(gen: number): string;
  set(mode: AppMode): Promise<void>;
  deliveries: ChaosDelivery[];
  /** 2xx answers by id. */
  accepted: Map<string, ChaosDelivery[]>;
  /** Answers given, by kind (accepted, rejected, 500, reset, …). */
  answers: Record<string, number>;
  /** Ids with a final answer (2xx, or 400 for those the app rejects). */
  finals: Set<string>;
  /** Requests that generation `gen` made. */
  fromGen(gen: number): number;
  close(): Promise<void>;
}

/** Garbage answers, in turn; the first attempts of a message get them, later ones are answered normally. */
const GARBAGE = ['500', '503', '429', '408', 'truncated-status', 'truncated-body', 'reset'] as const;
/** Attempts up to this one may get garbage, so retries inside TURNOUT_MAX_ATTEMPTS always get through. */
const GARBAGE_ATTEMPTS = 2;

export async function startChaosApp(options: { rejects: (id: string) => boolean }): Promise<ChaosApp> {
  let mode: AppMode = { kind: 'ok' };
  const deliveries: ChaosDelivery[] = [];
  const accepted = new Map<string, ChaosDelivery[]>();
  const answers: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const perGen = new Map<number, number>();
  const finals = new Set<string>();
  let turn = 0;

  const answer = (d: ChaosDelivery, kind: string): void => {
    d.answer = kind;
    answers[kind] = (answers[kind] ?? 0) + 1;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for await (const _ of req);
    const h = req.headers;
    const d: ChaosDelivery = {
      id: String(h['x-turnout-message-id'] ?? ''),
      attempt: Number(h['x-turnout-attempt'] ?? 0),
      gen: Number(/^\/g(\d+)/.exec(req.url ?? '')?.[1] ?? -1),
      redelivered: h['x-turnout-redelivered'] === 'true',
      at: Date.now(),
      answer: '',
    };
    perGen.set(d.gen, (perGen.get(d.gen) ?? 0) + 1);
    if (mode.kind === 'down') {
      // A request that was already on a kept-alive connection when the app went down.
      answer(d, 'down');
      deliveries.push(d);
      req.socket.destroy();
      return;
    }
    deliveries.push(d);
    if (mode.kind === 'slow') await new Promise((r) => setTimeout(r, (mode as { ms: number }).ms));
    if (mode.kind === 'garbage' && d.attempt <= GARBAGE_ATTEMPTS) {
      const kind = GARBAGE[turn++ % GARBAGE.length] as (typeof GARBAGE)[number];
      answer(d, kind);
      if (kind === 'truncated-status') {
        req.socket.end('HTTP/1.1 20');
        req.socket.destroySoon();
      } else if (kind === 'truncated-body') {
        res.writeHead(500, { 'content-length': '1000' });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 5);
      } else if (kind === 'reset') {
        req.socket.resetAndDestroy();
      } else {
        res.writeHead(Number(kind), { 'content-type': 'text/plain' });
        res.end('garbage');
      }
      return;
    }
    if (options.rejects(d.id)) {
      answer(d, 'rejected');
      finals.add(d.id);
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('no');
      return;
    }
    answer(d, 'accepted');
    finals.add(d.id);
    const list = accepted.get(d.id) ?? [];
    list.push(d);
    accepted.set(d.id, list);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  };

  const newServer = (): Server => {
    const s = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
    s.on('connection', (sock: Socket) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    return s;
  };
  const listen = (s: Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        const a = s.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  const stop = (s: Server): Promise<void> =>
    new Promise((r) => {
      s.close(() => r());
      for (const sock of sockets) sock.destroy();
    });

  let server = newServer();
  const port = await listen(server, 0);
  let up = true;

  return {
    port,
    urlFor: (gen) => `http://127.0.0.1:${port}/g${gen}`,
    deliveries,
    accepted,
    answers,
    finals,
    fromGen: (gen) => perGen.get(gen) ?? 0,
    async set(next) {
      mode = next;
      if (next.kind === 'down' && up) {
        up = false;
        await stop(server);
      } else if (next.kind !== 'down' && !up) {
        server = newServer();
        await listen(server, port);
        up = true;
      }
    },
    async close() {
      if (up) {
        up = false;
        await stop(server);
      }
    },
  };
}
