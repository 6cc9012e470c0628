// HTTP over a bare TCP socket, for clients no HTTP library would be: one that
// dribbles its headers a byte at a time, sends thousands of them, never sends
// anything, or holds connections open. Loopback only.

import { connect, type Socket } from 'node:net';

export interface RawResult {
  /** Everything the server sent. */
  text: string;
  /** The status code of the first answer, if one came. */
  status: number | undefined;
  /** ms from connecting until the server closed the connection (or the timeout). */
  ms: number;
  /** Whether the server closed the connection (false: the timeout hit first). */
  closed: boolean;
}

const statusOf = (text: string): number | undefined => {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
  return m ? Number(m[1]) : undefined;
};

/**
 * Connects to 127.0.0.1:port, writes `send` at once, then `dribble` one
 * character every `everyMs` (over and over) until the server closes the
 * connection or `timeoutMs` passes.
 */
export function rawExchange(port: number, options: { send?: string | Buffer; dribble?: string; everyMs?: number; timeoutMs?: number }): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let dribbler: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      clearInterval(dribbler);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, status: statusOf(text), ms: Date.now() - started, closed });
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {}); // a reset after the answer is still a close
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      if (options.send !== undefined) socket.write(options.send);
      const dribble = options.dribble;
      if (dribble !== undefined && dribble !== '') {
        let i = 0;
        dribbler = setInterval(() => {
          if (!socket.destroyed && socket.writable) socket.write(dribble[i++ % dribble.length] ?? '');
        }, options.everyMs ?? 100);
      }
    });
    timer = setTimeout(() => {
      socket.removeAllListeners('close');
      socket.destroy();
      finish(false);
    }, options.timeoutMs ?? 15_000);
  });
}

/** A connection the test keeps open and may send requests on, one at a time. */
export interface HeldConnection {
  socket: Socket;
  /** Sends a request and reads one answer (headers and a content-length body); rejects after timeoutMs. */
  request(text: string, timeoutMs?: number): Promise<{ status: number | undefined; headers: string; body: string }>;
  /** Resolves when the connection is closed. */
  closed: Promise<void>;
  /** Resolves when the server closes the connection; rejects after timeoutMs. */
  closedWithin(timeoutMs: number): Promise<void>;
  close(): void;
}

export function holdConnection(port: number): Promise<HeldConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    let waiter: (() => void) | undefined;
    socket.on('data', (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      waiter?.();
    });
    const closed = new Promise<void>((r) => socket.once('close', () => {
      r();
      waiter?.();
    }));
    socket.on('error', () => {});
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({
        socket,
        closed,
        close: () => socket.destroy(),
        closedWithin: (timeoutMs) => {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error(`the server did not close the connection within ${timeoutMs} ms`)), timeoutMs);
          });
          return Promise.race([closed, late]).finally(() => clearTimeout(timer));
        },
        request: (text, timeoutMs = 10_000) => new Promise((res, rej) => {
          buffer = Buffer.alloc(0);
          const timer = setTimeout(() => {
            waiter = undefined;
            rej(new Error(`no whole answer within ${timeoutMs} ms: ${JSON.stringify(buffer.toString('latin1').slice(0, 200))}`));
          }, timeoutMs);
          const tryParse = (): void => {
            const end = buffer.indexOf('\r\n\r\n');
            if (end >= 0) {
              const headers = buffer.subarray(0, end).toString('latin1');
              const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
              if (buffer.length >= end + 4 + length) {
                waiter = undefined;
                clearTimeout(timer);
                res({ status: statusOf(headers), headers, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
                return;
              }
            }
            if (socket.destroyed) {
              waiter = undefined;
              clearTimeout(timer);
              rej(new Error(`connection closed before a whole answer: ${JSON.stringify(buffer.toString('latin1'))}`));
            }
          };
          waiter = tryParse;
          socket.write(text);
        }),
      });
    });
    socket.once('error', reject);
  });
}
