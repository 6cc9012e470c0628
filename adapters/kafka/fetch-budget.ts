// When a Kafka subscription fetches: the bounds on what it holds fetched and
// not yet finished. Each partition has its own bound, and the source's
// partitions together share one more, so a sidecar assigned hundreds of
// partitions of a backlog holds megabytes, not a mebibyte per partition.
// Under that shared bound a partition still fetches while it holds less than
// a small floor: a few partitions whose heads are stuck (an app failing on
// them, retried with backoff) slow the others down but never stop them.
// Deferral-topic partitions count only against their own bound: their
// records wait for their due time, and counting them would let deferred
// messages hold up the source.

/** What the rules read of a partition. */
export interface Buffered {
  readonly length: number;
  readonly bufferedBytes: number;
  readonly deferral: boolean;
}

export interface FetchLimits {
  /** One partition: fetching it pauses at this many records or bytes, and resumes below half. */
  partitionRecords: number;
  partitionBytes: number;
  /** The source's partitions together, in payload bytes: past it, a partition above the floor pauses. */
  totalBytes: number;
  /** Under the shared bound a partition still fetches below this (and resumes below half of it). */
  floorRecords: number;
  floorBytes: number;
}

export const FETCH_LIMITS: FetchLimits = {
  partitionRecords: 1000,
  partitionBytes: 1 << 20,
  totalBytes: 16 << 20,
  floorRecords: 64,
  floorBytes: 64 << 10,
};

export class FetchBudget {
  readonly limits: FetchLimits;
  private bytes = 0;
  /** The shared bound was reached and has not fallen to half since. */
  private pressed = false;

  constructor(limits: FetchLimits = FETCH_LIMITS) {
    this.limits = limits;
  }

  /** Payload bytes buffered over the source's partitions. */
  get total(): number {
    return this.bytes;
  }

  get underPressure(): boolean {
    return this.pressed;
  }

  /** Records entered the buffer; true when that began the shared bound's pressure. */
  added(p: Buffered, bytes: number): boolean {
    if (p.deferral) return false;
    this.bytes += bytes;
    if (this.pressed || this.bytes < this.limits.totalBytes) return false;
    this.pressed = true;
    return true;
  }

  /** Records left the buffer; true when the shared bound's pressure just ended (paused partitions may resume). */
  removed(p: Buffered, bytes: number): boolean {
    if (p.deferral) return false;
    this.bytes -= bytes;
    if (this.pressed && this.bytes <= this.limits.totalBytes / 2) {
      this.pressed = false;
      return true;
    }
    return false;
  }

  shouldPause(p: Buffered): boolean {
    const l = this.limits;
    if (p.length >= l.partitionRecords || p.bufferedBytes >= l.partitionBytes) return true;
    return !p.deferral && this.pressed && (p.length >= l.floorRecords || p.bufferedBytes >= l.floorBytes);
  }

  mayResume(p: Buffered): boolean {
    const l = this.limits;
    if (p.length > l.partitionRecords / 2 || p.bufferedBytes > l.partitionBytes / 2) return false;
    if (p.deferral || !this.pressed) return true;
    return p.length <= l.floorRecords / 2 && p.bufferedBytes <= l.floorBytes / 2;
  }
}

/** Larger backing stores are not kept alive by a buffered record (Node's Buffer pool, 64 KiB in Node 24, is not larger). */
const SHARED_STORE_BYTES = Math.max(64 << 10, Buffer.poolSize);

/**
 * The payload with memory of its own. kafkajs slices a record's value out of
 * its whole fetch response (up to its maxBytes, 10 MiB): buffered as it is,
 * one record of a partition whose head is stuck would keep the response
 * alive, and the bounds above would count a fraction of what is held.
 */
export function ownBytes(payload: Buffer): Buffer {
  return payload.buffer.byteLength > SHARED_STORE_BYTES && payload.byteLength < payload.buffer.byteLength ? Buffer.from(payload) : payload;
}
