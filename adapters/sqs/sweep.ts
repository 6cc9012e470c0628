// A bounded pass over one SQS queue for `turnout move`. It receives up to
// ten messages at a time and keeps every message it has not deleted
// invisible (extended at half time) until it ends, so it never receives one
// twice and no consumer takes it meanwhile; close() makes the skipped and
// kept ones visible again at once. It ends after the ApproximateNumberOfMessages
// the queue had at the start, or at the first empty long poll. On a FIFO
// queue SQS hands out nothing of a message group while one of its messages
// is invisible: what follows a skipped or kept message in its group is not
// reached by this pass (it is counted in unseen()).

import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message as SqsMessage,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { BrokerError, type Message, type Received, type Sweep, type SweepDisposition, type Taken } from '../broker.ts';
import { decode } from './codec.ts';
import { classify } from './errors.ts';
import type { QueueInfo } from './queues.ts';

/** Where the original sat, for a copy to a FIFO queue. */
export interface Placement {
  groupId: string | undefined;
  dedupId: string | undefined;
}

class SqsTaken implements Taken {
  readonly message: Received;
  readonly receipt: string;
  readonly placement: Placement;
  constructor(m: SqsMessage, queue: string) {
    this.message = decode(m, queue).received;
    this.receipt = m.ReceiptHandle ?? '';
    this.placement = { groupId: m.Attributes?.MessageGroupId, dedupId: m.Attributes?.MessageDeduplicationId };
  }
}

export interface SqsSweepDeps {
  client: SQSClient;
  queue: QueueInfo;
  /** Seconds a held message stays invisible per extension. */
  visibilitySeconds: number;
  /** Long-poll wait of the receive that decides the queue is empty. */
  waitSeconds: number;
  forward: (queue: string, message: Message, placement: Placement) => Promise<void>;
}

export class SqsSweep implements Sweep {
  private readonly d: SqsSweepDeps;
  private left: number;
  private readonly buffer: SqsTaken[] = [];
  /** Every receipt received and not deleted: kept invisible until close(). */
  private readonly held = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private ended = false;
  private closed = false;

  private constructor(deps: SqsSweepDeps, count: number) {
    this.d = deps;
    this.left = count;
    this.timer = setInterval(() => void this.extend(), Math.max(1000, (deps.visibilitySeconds * 1000) / 2));
    this.timer.unref();
  }

  static async open(deps: SqsSweepDeps): Promise<SqsSweep> {
    let count: number;
    try {
      const out = await deps.client.send(new GetQueueAttributesCommand({ QueueUrl: deps.queue.url, AttributeNames: ['ApproximateNumberOfMessages'] }));
      count = Number(out.Attributes?.ApproximateNumberOfMessages ?? '0') || 0;
    } catch (err) {
      throw classify(err, `reading the depth of queue "${deps.queue.name}"`);
    }
    return new SqsSweep(deps, count);
  }

  async next(): Promise<Taken | undefined> {
    if (this.closed) return undefined;
    if (this.buffer.length === 0 && !this.ended && this.left > 0) await this.receive();
    const taken = this.buffer.shift();
    if (!taken) return undefined;
    this.left = Math.max(0, this.left - 1);
    return taken;
  }

  private async receive(): Promise<void> {
    let messages: SqsMessage[];
    try {
      const out = await this.d.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.d.queue.url,
          MaxNumberOfMessages: Math.min(10, this.left),
          WaitTimeSeconds: this.d.waitSeconds,
          VisibilityTimeout: this.d.visibilitySeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'MessageGroupId', 'MessageDeduplicationId', 'SequenceNumber'],
        }),
      );
      messages = out.Messages ?? [];
    } catch (err) {
      throw classify(err, `receiving from queue "${this.d.queue.name}"`);
    }
    if (messages.length === 0) this.ended = true;
    for (const m of messages) {
      const taken = new SqsTaken(m, this.d.queue.name);
      this.held.add(taken.receipt);
      this.buffer.push(taken);
    }
  }

  forward(taken: Taken, queue: string, message: Message): Promise<void> {
    if (!(taken instanceof SqsTaken)) throw new BrokerError('invalid', 'forward() got a message of another sweep');
    return this.d.forward(queue, message, taken.placement);
  }

  async settle(taken: Taken, disposition: SweepDisposition): Promise<void> {
    if (!(taken instanceof SqsTaken)) throw new BrokerError('invalid', 'settle() got a message of another sweep');
    // skip and keep: stays held (invisible) until close().
    if (disposition !== 'ack') return;
    try {
      await this.d.client.send(new DeleteMessageCommand({ QueueUrl: this.d.queue.url, ReceiptHandle: taken.receipt }));
    } catch (err) {
      throw classify(err, `deleting message ${taken.message.id} from queue "${this.d.queue.name}"`);
    }
    this.held.delete(taken.receipt);
  }

  unseen(): number {
    return Math.max(this.left, this.buffer.length);
  }

  private async extend(): Promise<void> {
    await this.changeVisibility([...this.held], this.d.visibilitySeconds).catch(() => {
      // the next extension tries again; a lapse only lets a consumer take a message early
    });
  }

  private async changeVisibility(receipts: string[], seconds: number): Promise<void> {
    for (let i = 0; i < receipts.length; i += 10) {
      const chunk = receipts.slice(i, i + 10);
      await this.d.client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.d.queue.url,
          Entries: chunk.map((receipt, n) => ({ Id: String(n), ReceiptHandle: receipt, VisibilityTimeout: seconds })),
        }),
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const receipts = [...this.held];
    this.held.clear();
    this.buffer.length = 0;
    // Visible again now rather than after the visibility timeout (a SIGKILL leaves that to SQS).
    await this.changeVisibility(receipts, 0).catch(() => {});
  }
}
