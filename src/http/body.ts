import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes (TURNOUT_MAX_MESSAGE_BYTES)`);
    this.name = 'BodyTooLarge';
  }
}

/** Reads a request body, refusing more than `limit` bytes without buffering them. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new BodyTooLarge(limit);
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size);
}
