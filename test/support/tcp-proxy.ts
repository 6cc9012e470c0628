// A TCP proxy on loopback that a test owns: forwards every connection to one
// target and can cut them all (both sides, as a network failure would look
// to the client), while still accepting new ones, so the client's reconnect
// is what is tested. Deliberately small; it only cuts connections.

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** Connections cut so far. */
  cuts: number;
  /** Destroys every open connection through the proxy; new ones are still accepted. */
  cutAll(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const track = (socket: Socket): void => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {}); // a cut or a refused target: the other side is destroyed with it
  };
  const server: Server = createServer((client) => {
    const upstream = connect({ host: targetHost, port: targetPort });
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const proxy: TcpProxy = {
    port: address.port,
    cuts: 0,
    cutAll() {
      const n = open.size;
      for (const socket of open) socket.destroy();
      proxy.cuts += n;
      return n;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
  return proxy;
}
