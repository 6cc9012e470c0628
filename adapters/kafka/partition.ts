// One assigned partition (of the source or of its deferral topic) as a
// subscription works through it: the records fetched and not yet finished,
// in offset order. Only the head is ever handed out, so messages of one
// partition are handled one after another and the commit position is simply
// "after the last finished record".

import type { Message } from '../broker.ts';

export interface Rec {
  offset: bigint;
  message: Message;
  /** Deferral-topic records: not handed out before this time (epoch ms). */
  notBefore?: number;
  redelivered: boolean;
  /**
   * The broker refused this record's deferred copy for its size or shape
   * (MESSAGE_TOO_LARGE, INVALID_RECORD): handed out again with the refusal,
   * so the pipeline dead-letters it instead of deferring it again, which
   * would hold the partition's head for ever. Kept on the record only: a
   * record fetched anew (rebalance, restart) costs one more refused deferral.
   */
  deferRefused?: string;
  /** Payload bytes, for the buffer bound. */
  size: number;
}

export class PartitionWork {
  readonly topic: string;
  readonly partition: number;
  readonly deferral: boolean;
  private items: Rec[] = [];
  private head = 0;
  private bytes = 0;

  /** The head is with the handler. */
  running = false;
  /** Queued for a free handler slot. */
  inReady = false;
  /** Waiting: until the head is due (deferral) or for a release backoff. */
  timer: NodeJS.Timeout | undefined;
  /** Fetching stopped for this partition (buffer full, or head not due). */
  paused = false;
  /** Consecutive releases of the head, for the backoff. */
  releases = 0;
  /** Offset after the last record taken from kafkajs: where fetching continues after a rebalance. */
  fetchNext: bigint | undefined;
  /** No longer ours (revoked, crashed, closed): outcomes still arriving are not applied. */
  gone = false;

  constructor(topic: string, partition: number, deferral: boolean) {
    this.topic = topic;
    this.partition = partition;
    this.deferral = deferral;
  }

  get key(): string {
    return partitionKey(this.topic, this.partition);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  peek(): Rec | undefined {
    return this.items[this.head];
  }

  push(rec: Rec): void {
    this.items.push(rec);
    this.bytes += rec.size;
  }

  shift(): Rec | undefined {
    const rec = this.items[this.head];
    if (!rec) return undefined;
    this.items[this.head++] = undefined as unknown as Rec; // let the payload be collected
    this.bytes -= rec.size;
    if (this.head > 512 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return rec;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

export const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
