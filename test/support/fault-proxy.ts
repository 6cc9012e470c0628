// A TCP fault proxy the tests own: it sits on loopback between turnout and a
// broker and, on command, passes bytes through, delays them, cuts every
// connection, black-holes (accepts and swallows, never answers) or refuses
// connections. Fault tests point turnout at it instead of the broker.

import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  /** Every chunk, both ways, is forwarded `ms` later (order kept). */
  | { kind: 'delay'; ms: number }
  /** New and existing connections: bytes are read and dropped, nothing is forwarded or answered. */
  | { kind: 'blackhole' }
  /** The listener is closed (connection refused) and existing connections are cut. */
  | { kind: 'refuse' };

export interface FaultProxy {
  host: string;
  port: number;
  mode(): FaultMode;
  /**
   * Switches mode. Leaving `blackhole` cuts the connections that swallowed
   * bytes (their streams are broken); entering `refuse` cuts all.
   */
  set(mode: FaultMode): Promise<void>;
  /** Destroys every open connection now (both sides); the mode stays. */
  cut(): number;
  /** Connections open right now. */
  open(): number;
  stats: { accepted: number; cut: number; swallowedBytes: number };
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** Swallowed bytes at some point: the byte stream is no longer intact. */
  broken: boolean;
  destroy(): void;
}

export async function startFaultProxy(target: { host: string; port: number }, options: { port?: number } = {}): Promise<FaultProxy> {
  let mode: FaultMode = { kind: 'pass' };
  const pairs = new Set<Pair>();
  const stats = { accepted: 0, cut: 0, swallowedBytes: 0 };

  /** Forwards src → dst under the current mode; a delayed chunk keeps its place in line. */
  const forward = (pair: Pair, src: Socket, dst: () => Socket | undefined): void => {
    let tail: Promise<void> = Promise.resolve();
    let queued = 0;
    const write = (chunk: Buffer): void => {
      const d = dst();
      if (!d || d.destroyed) return;
      if (!d.write(chunk)) {
        src.pause();
        d.once('drain', () => src.resume());
      }
    };
    src.on('data', (chunk: Buffer) => {
      if (mode.kind === 'blackhole' || mode.kind === 'refuse') {
        pair.broken = true;
        stats.swallowedBytes += chunk.length;
        return;
      }
      const delay = mode.kind === 'delay' ? mode.ms : 0;
      if (delay === 0 && queued === 0) return write(chunk);
      const due = Date.now() + delay;
      queued++;
      tail = tail.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        queued--;
        write(chunk);
      });
    });
    // A half-close is passed on once what was queued before it went out.
    src.on('end', () => void tail.then(() => dst()?.end()));
  };

  const onConnection = (client: Socket): void => {
    stats.accepted++;
    const pair: Pair = {
      client,
      upstream: undefined,
      broken: false,
      destroy() {
        client.destroy();
        pair.upstream?.destroy();
      },
    };
    pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pairs.delete(pair);
      pair.upstream?.destroy();
    });
    forward(pair, client, () => pair.upstream);
    if (mode.kind === 'blackhole') {
      // Accepted but never connected on: the client waits for an answer that does not come.
      pair.broken = true;
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    pair.upstream = upstream;
    client.setNoDelay(true);
    upstream.on('error', () => {});
    upstream.on('close', () => client.destroy());
    // Bytes the client sent before the upstream connected wait in the socket's write buffer.
    forward(pair, upstream, () => client);
  };

  let server: Server = createServer({ pauseOnConnect: false }, onConnection);
  const listen = (srv: Server, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        resolve();
      });
    });
  await listen(server, options.port ?? 0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let listening = true;

  const cutWhere = (which: (p: Pair) => boolean): number => {
    let n = 0;
    for (const p of [...pairs]) {
      if (!which(p)) continue;
      pairs.delete(p);
      p.destroy();
      n++;
    }
    stats.cut += n;
    return n;
  };

  return {
    host: '127.0.0.1',
    port,
    mode: () => mode,
    stats,
    open: () => pairs.size,
    cut: () => cutWhere(() => true),
    async set(next) {
      const prev = mode;
      mode = next;
      if (next.kind === 'refuse') {
        cutWhere(() => true);
        if (listening) {
          listening = false;
          await new Promise<void>((r) => server.close(() => r()));
        }
        return;
      }
      if (prev.kind === 'blackhole') cutWhere((p) => p.broken);
      if (!listening) {
        // The same port again, so the client's configured address works once more.
        server = createServer(onConnection);
        await listen(server, port);
        listening = true;
      }
    },
    async close() {
      cutWhere(() => true);
      if (listening) {
        listening = false;
        await new Promise<void>((r) => server.close(() => r()));
      }
    },
  };
}
