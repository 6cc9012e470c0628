// Queue names (or URLs) to queue URLs and the attributes the adapter needs,
// looked up once per queue. A failed lookup is not remembered: the queue may
// be created a moment later.

import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { classify } from './errors.ts';

export interface RedrivePolicy {
  deadLetterTargetArn: string;
  maxReceiveCount: number;
}

export interface QueueInfo {
  /** As configured: a name or a URL. */
  name: string;
  url: string;
  fifo: boolean;
  /** The queue's VisibilityTimeout, seconds. */
  visibilityTimeout: number;
  /** The queue's MaximumMessageSize, bytes. */
  maxMessageSize: number;
  redrive: RedrivePolicy | undefined;
}

const isUrl = (value: string): boolean => /^https?:\/\//i.test(value);

function parseRedrive(raw: string | undefined): RedrivePolicy | undefined {
  if (!raw) return undefined;
  try {
    const policy = JSON.parse(raw) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
    const max = Number(policy.maxReceiveCount);
    if (typeof policy.deadLetterTargetArn !== 'string' || !Number.isFinite(max)) return undefined;
    return { deadLetterTargetArn: policy.deadLetterTargetArn, maxReceiveCount: max };
  } catch {
    return undefined;
  }
}

export class Queues {
  private readonly cache = new Map<string, Promise<QueueInfo>>();
  private readonly resolved = new Map<string, string>();
  private readonly client: SQSClient;

  constructor(client: SQSClient) {
    this.client = client;
  }

  get(name: string): Promise<QueueInfo> {
    let p = this.cache.get(name);
    if (!p) {
      p = this.lookup(name);
      this.cache.set(name, p);
      p.catch(() => this.cache.delete(name));
    }
    return p;
  }

  /** Looks the queue up again (its attributes may have changed since). */
  refresh(name: string): Promise<QueueInfo> {
    this.cache.delete(name);
    return this.get(name);
  }

  /** Drops a queue that turned out to be gone. */
  forget(name: string): void {
    this.cache.delete(name);
    this.resolved.delete(name);
  }

  /** The URL of some queue looked up before (for health probes). */
  anyUrl(): string | undefined {
    return this.resolved.values().next().value;
  }

  private async lookup(name: string): Promise<QueueInfo> {
    let url = name;
    if (!isUrl(name)) {
      try {
        const out = await this.client.send(new GetQueueUrlCommand({ QueueName: name }));
        if (!out.QueueUrl) throw new Error('GetQueueUrl returned no URL');
        url = out.QueueUrl;
      } catch (err) {
        throw classify(err, `looking up queue "${name}"`);
      }
    }
    let attrs: Record<string, string>;
    try {
      const out = await this.client.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['VisibilityTimeout', 'MaximumMessageSize', 'FifoQueue', 'RedrivePolicy'],
        }),
      );
      attrs = out.Attributes ?? {};
    } catch (err) {
      throw classify(err, `reading the attributes of queue "${name}"`);
    }
    this.resolved.set(name, url);
    return {
      name,
      url,
      fifo: attrs.FifoQueue === 'true' || url.endsWith('.fifo'),
      visibilityTimeout: Number(attrs.VisibilityTimeout ?? '30'),
      maxMessageSize: Number(attrs.MaximumMessageSize ?? '262144'),
      redrive: parseRedrive(attrs.RedrivePolicy),
    };
  }
}
