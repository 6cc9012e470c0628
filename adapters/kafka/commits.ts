// The offset commits of one Kafka subscription: the position to commit per
// partition (the offset after its last finished record), sent one request
// at a time, each request carrying the latest position of every partition
// that moved since. A failed request is retried after a growing pause; a
// position that moved while its request was under way stays pending.

import { backoffCeiling, sleep } from '../../lib/backoff.ts';
import { partitionKey } from './partition.ts';

export interface CommitPosition {
  topic: string;
  partition: number;
  /** The next offset to consume: one past the last finished record. */
  offset: bigint;
}

export interface CommitDeps {
  /** The commit request of the current consumer; undefined while there is none (between runs). */
  sender(): ((positions: CommitPosition[]) => Promise<void>) | undefined;
  /** The subscription is closing: after a few failures, stop trying. */
  closing(): boolean;
  /** A request failed (it is retried). */
  failed(err: unknown): void;
  /**
   * Least time between two commit requests. This bounds commit traffic (one
   * request per finished message would cost the broker and turnout more
   * than the delivery) at the price of a few more redeliveries after a crash.
   */
  spacingMs: number;
}

/** Failed requests in a row while closing after which the commits are given up. */
const GIVE_UP_WHEN_CLOSING = 3;

export class OffsetCommits {
  private readonly deps: CommitDeps;
  private readonly pending = new Map<string, CommitPosition>();
  private committing: Promise<void> | undefined;
  private again = false;
  private failures = 0;

  constructor(deps: CommitDeps) {
    this.deps = deps;
  }

  /** Partitions with a position not yet committed. */
  get size(): number {
    return this.pending.size;
  }

  /** The partition's records up to `position.offset` are finished: commit that (later positions replace earlier ones). */
  advance(position: CommitPosition): void {
    this.pending.set(partitionKey(position.topic, position.partition), position);
  }

  /** The partition is no longer ours: commit nothing more for it. */
  forget(key: string): void {
    this.pending.delete(key);
  }

  /** Sends what is pending: now, or right after the request under way. */
  schedule(): void {
    if (this.committing) {
      this.again = true;
      return;
    }
    this.committing = this.loop().finally(() => {
      this.committing = undefined;
    });
  }

  /** Until every pending position is committed or the deadline passes; true when none is left. */
  async flush(deadline: number): Promise<boolean> {
    while (this.pending.size > 0 && Date.now() < deadline) {
      this.schedule();
      await Promise.race([this.committing, sleep(100)]);
    }
    return this.pending.size === 0;
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.again = false;
      const send = this.deps.sender();
      const batch = [...this.pending.values()];
      if (batch.length === 0 || !send) return;
      try {
        await send(batch);
        for (const sent of batch) {
          const key = partitionKey(sent.topic, sent.partition);
          if (this.pending.get(key)?.offset === sent.offset) this.pending.delete(key);
        }
        this.failures = 0;
      } catch (err) {
        this.failures++;
        this.deps.failed(err);
        if (this.deps.closing() && this.failures > GIVE_UP_WHEN_CLOSING) return;
        await sleep(backoffCeiling(this.failures + 1, 100, 2000));
        this.again = true;
      }
      if (!this.again) return;
      if (!this.deps.closing()) await sleep(this.deps.spacingMs);
    }
  }
}
