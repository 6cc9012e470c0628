// Sends messages. Publishes that arrive in the same tick for the same queue
// go out as one SendMessageBatch (a router forwarding a received batch, the
// dead-letter path under load); a lone publish is a plain SendMessage. Each
// caller's promise resolves only once SQS confirmed its own entry.

import {
  SendMessageBatchCommand,
  SendMessageCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { unconfirmed, type BrokerError } from '../broker.ts';
import { classify } from './errors.ts';

export interface Outgoing {
  entry: Omit<SendMessageBatchRequestEntry, 'Id'>;
  /** Encoded size, to keep batches under SQS's request limit. */
  size: number;
  /** For error messages: the queue as configured. */
  queueName: string;
}

interface Pending {
  out: Outgoing;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Larger messages go alone; a batch stays below the smallest request limit SQS has had (256 KiB). */
const BATCH_ENTRY_MAX = 64 * 1024;
const BATCH_BYTES_MAX = 256 * 1024;

export class Publisher {
  private readonly waiting = new Map<string, Pending[]>();
  private scheduled = false;
  private readonly client: SQSClient;

  constructor(client: SQSClient) {
    this.client = client;
  }

  send(queueUrl: string, out: Outgoing): Promise<void> {
    if (out.size > BATCH_ENTRY_MAX) return this.sendOne(queueUrl, out);
    return new Promise<void>((resolve, reject) => {
      let list = this.waiting.get(queueUrl);
      if (!list) this.waiting.set(queueUrl, (list = []));
      list.push({ out, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const [url, list] of all) {
      let chunk: Pending[] = [];
      let bytes = 0;
      for (const p of list) {
        if (chunk.length === 10 || bytes + p.out.size > BATCH_BYTES_MAX) {
          this.sendChunk(url, chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(p);
        bytes += p.out.size;
      }
      if (chunk.length > 0) this.sendChunk(url, chunk);
    }
  }

  private sendChunk(url: string, chunk: Pending[]): void {
    if (chunk.length === 1) {
      const p = chunk[0] as Pending;
      this.sendOne(url, p.out).then(p.resolve, p.reject);
      return;
    }
    this.client
      .send(new SendMessageBatchCommand({ QueueUrl: url, Entries: chunk.map((p, i) => ({ ...p.out.entry, Id: String(i) })) }))
      .then(
        (res) => {
          const failed = new Map((res.Failed ?? []).map((f) => [f.Id, f]));
          chunk.forEach((p, i) => {
            const f = failed.get(String(i));
            if (!f) p.resolve();
            // SQS's own fault for this entry (not the message's): one more try alone, with the SDK's retries.
            else if (!f.SenderFault) this.sendOne(url, p.out).then(p.resolve, p.reject);
            else p.reject(classify(f, `sending to queue "${p.out.queueName}"`));
          });
        },
        (err: unknown) => {
          for (const p of chunk) p.reject(sendFailed(err, p.out));
        },
      );
  }

  private async sendOne(url: string, out: Outgoing): Promise<void> {
    try {
      await this.client.send(new SendMessageCommand({ QueueUrl: url, ...out.entry }));
    } catch (err) {
      throw sendFailed(err, out);
    }
  }
}

/**
 * A request that failed as a whole. Unless SQS refused it (a queue, size or
 * shape error), it may have been taken: the SDK retries on its own, and an
 * attempt whose answer was lost counts as failed.
 */
const sendFailed = (err: unknown, out: Outgoing): BrokerError => unconfirmed(classify(err, `sending to queue "${out.queueName}"`));
