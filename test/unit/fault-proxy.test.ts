// The fault proxy the broker fault tests put between turnout and the broker:
// each mode does what it says against a local echo server.

import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';

let echo: Server;
let proxy: FaultProxy;
const serverSockets = new Set<Socket>();

before(async () => {
  echo = createServer((s) => {
    serverSockets.add(s);
    s.on('close', () => serverSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  proxy = await startFaultProxy({ host: '127.0.0.1', port: (echo.address() as AddressInfo).port });
});
after(async () => {
  await proxy.close();
  for (const s of serverSockets) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
});

interface Client {
  socket: Socket;
  received(): string;
  closed: Promise<void>;
}

function client(): Promise<Client> {
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = connect({ host: proxy.host, port: proxy.port });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve({ socket, received: () => got, closed });
    });
  });
}

const until = async (what: string, check: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('pass: bytes go through both ways', async () => {
  const c = await client();
  c.socket.write('hello');
  await until('the echo', () => c.received() === 'hello');
  c.socket.destroy();
});

test('delay: each way is held back by the delay, and order is kept when the mode changes', async () => {
  const c = await client();
  await proxy.set({ kind: 'delay', ms: 150 });
  const t0 = Date.now();
  c.socket.write('a');
  c.socket.write('b');
  await new Promise((r) => setTimeout(r, 20));
  await proxy.set({ kind: 'pass' });
  c.socket.write('c');
  await until('the echo', () => c.received() === 'abc', 3000);
  assert.ok(Date.now() - t0 >= 150, `held back ${Date.now() - t0} ms`);
  c.socket.destroy();
});

test('cut: every open connection is closed, new ones work', async () => {
  const a = await client();
  const b = await client();
  await until('two open', () => proxy.open() === 2);
  assert.equal(proxy.cut(), 2);
  await a.closed;
  await b.closed;
  const c = await client();
  c.socket.write('again');
  await until('the echo', () => c.received() === 'again');
  c.socket.destroy();
});

test('blackhole: connections are accepted but never answered; leaving it cuts them', async () => {
  const old = await client();
  await proxy.set({ kind: 'blackhole' });
  const fresh = await client();
  old.socket.write('lost-1');
  fresh.socket.write('lost-2');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(old.received(), '');
  assert.equal(fresh.received(), '');
  assert.ok(proxy.stats.swallowedBytes >= 12);
  await proxy.set({ kind: 'pass' });
  await old.closed;
  await fresh.closed;
  const c = await client();
  c.socket.write('back');
  await until('the echo', () => c.received() === 'back');
  c.socket.destroy();
});

test('refuse: new connections are refused and open ones cut; pass listens on the same port again', async () => {
  const open = await client();
  await proxy.set({ kind: 'refuse' });
  await open.closed;
  await assert.rejects(client(), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  await proxy.set({ kind: 'pass' });
  const c = await client();
  c.socket.write('listening');
  await until('the echo', () => c.received() === 'listening');
  c.socket.destroy();
});
