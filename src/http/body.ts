import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes (TURNOUT_MAX_MESSAGE_BYTES)`);
    this.name = 'BodyTooLarge';
  }
}

/** Past this much discarded body the connection is cut instead of read to the end. */
const DISCARD_CAP = 64 * 1024 * 1024;

/**
 * Reads a request body, refusing more than `limit` bytes without buffering
 * them. An over-long streamed body is read to its end and discarded (up to a
 * cap) so the client gets the 413 instead of a broken pipe.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      tooLarge = true;
      chunks.length = 0;
      if (size > DISCARD_CAP) {
        req.destroy();
        break;
      }
      continue;
    }
    chunks.push(buf);
  }
  if (tooLarge) throw new BodyTooLarge(limit);
  return Buffer.concat(chunks, size);
}
