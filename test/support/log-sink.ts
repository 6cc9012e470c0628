// A log destination in memory, for tests that read what a logger wrote.

import { Writable } from 'node:stream';

export function logSink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  return { lines, stream: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done(); } }) };
}
