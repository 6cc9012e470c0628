// Preloaded (--import) into a turnout child process by fault tests whose
// broker hands out its own address (Kafka's metadata names each broker's
// host:port, so a client would bypass a proxy it was only bootstrapped
// through): every TCP connection to port FAULT_REDIRECT_FROM goes to
// FAULT_REDIRECT_TO (host:port) instead. Only the test's own processes load it.

import net from 'node:net';

const from = Number(process.env.FAULT_REDIRECT_FROM);
const [toHost, toPort] = (process.env.FAULT_REDIRECT_TO ?? '').split(':');

if (from > 0 && toHost && toPort) {
  const original = net.connect;
  const redirected = function (this: unknown, ...args: unknown[]): net.Socket {
    const first = args[0];
    if (typeof first === 'object' && first !== null && Number((first as { port?: unknown }).port) === from) {
      args[0] = { ...(first as object), host: toHost, port: Number(toPort) };
    }
    // The overloads of net.connect cannot be named one by one here; the arguments go through unchanged but the first.
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  };
  net.connect = redirected as typeof net.connect;
  net.createConnection = redirected as typeof net.createConnection;
}
