// TURNOUT_BROKER=sqs: Amazon SQS through @aws-sdk/client-sqs v3. Region,
// credentials and endpoint come from the SDK's own default chain (AWS_REGION,
// AWS_PROFILE, AWS_ACCESS_KEY_ID…, web identity, instance roles,
// AWS_ENDPOINT_URL_SQS); turnout adds no AWS settings of its own.
//
// The pieces live beside this file: codec (message <-> body + attributes),
// queues (name/URL lookup), publisher (SendMessage/SendMessageBatch),
// subscription (receive loop, leases, dispositions; fifo-groups for FIFO
// order), options (from the configuration), errors (classification).

import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { expandTarget } from '../../lib/targets.ts';
import type { Logger } from '../../lib/log.ts';
import { PUBLISH_FINISH_WAIT_MS, UnderWay } from '../../lib/settle.ts';
import {
  BrokerError,
  type AdapterContext,
  type BrokerAdapter,
  type ConsumeOptions,
  type Handler,
  type Message,
  type Backlog,
  type QueueDepth,
  type Subscription,
  type Sweep,
  type SweepOptions,
} from '../broker.ts';
import { Batcher } from './batcher.ts';
import { encode } from './codec.ts';
import { capabilities } from './capabilities.ts';
import { SqsSubscription, type Resend, type VisibilityEntry } from './subscription.ts';
import { classify } from './errors.ts';
import { dedupIdOf, groupIdOf } from './fifo-ids.ts';
import { resolveOptions, sqsOptions, type SqsOptions } from './options.ts';
import { Publisher } from './publisher.ts';
import { Queues, type QueueInfo } from './queues.ts';
import { RejectMemory } from './reject-memory.ts';
import { SqsSweep, type Placement } from './sweep.ts';

export type { SqsOptions } from './options.ts';

export function create(ctx: AdapterContext): SqsBroker {
  return new SqsBroker(ctx);
}

export class SqsBroker implements BrokerAdapter {
  readonly kind = 'sqs';
  readonly capabilities = capabilities;

  private readonly ctx: AdapterContext;
  private readonly logger: Logger;
  private readonly options: SqsOptions;
  private readonly client: SQSClient;
  private readonly queues: Queues;
  private readonly publisher: Publisher;
  private readonly deletes: Batcher<string>;
  private readonly visibility: Batcher<VisibilityEntry>;
  private readonly rejected: RejectMemory;
  private readonly subscriptions = new Set<SqsSubscription>();
  /** Publishes and deferred copies being sent: close() lets them finish before it destroys the client. */
  private readonly publishes = new UnderWay();
  private connected = false;
  private closed = false;
  private healthy = true;
  private probeTimer: NodeJS.Timeout | undefined;

  /** `overrides`: internal tunables a test shortens; the rest comes from the configuration. */
  constructor(ctx: AdapterContext, overrides: Partial<SqsOptions> = {}) {
    this.ctx = ctx;
    this.logger = ctx.logger;
    this.options = resolveOptions(sqsOptions(ctx.config), overrides);
    const emulator = Boolean(process.env.AWS_ENDPOINT_URL_SQS || process.env.AWS_ENDPOINT_URL);
    this.client = new SQSClient({
      ...(this.options.endpoint !== undefined ? { endpoint: this.options.endpoint } : {}),
      useQueueUrlAsEndpoint: this.options.useQueueUrlAsEndpoint ?? !emulator,
      // A long poll answers within WaitTimeSeconds; a request silent far longer than that is a dead connection.
      requestHandler: { requestTimeout: (this.options.waitTimeSeconds + 30) * 1000, connectionTimeout: 10_000 },
    });
    this.queues = new Queues(this.client);
    this.publisher = new Publisher(this.client);
    this.deletes = new Batcher<string>((url, handles) => this.deleteBatch(url, handles), this.options.batchLingerMs);
    this.visibility = new Batcher<VisibilityEntry>((url, entries) => this.visibilityBatch(url, entries), this.options.batchLingerMs);
    this.rejected = new RejectMemory(this.options.rejectMemory);
  }

  /**
   * Checks region and credentials, then looks up every queue the
   * configuration names, so a typo or a missing permission stops start-up
   * (BrokerError 'unknown-queue' / 'forbidden') instead of surfacing later.
   */
  async connect(): Promise<void> {
    if (this.closed) throw new BrokerError('unavailable', 'SQS adapter is closed');
    try {
      await this.client.config.region();
    } catch (err) {
      throw new BrokerError('forbidden', 'SQS: no AWS region configured: set AWS_REGION (or a profile with a region)', { cause: err });
    }
    try {
      await this.client.config.credentials();
    } catch (err) {
      throw classify(Object.assign(err instanceof Error ? err : new Error(String(err)), { name: 'CredentialsProviderError' }), 'finding AWS credentials');
    }
    for (const [variable, name] of this.configuredQueues()) {
      try {
        await this.queues.get(name);
      } catch (err) {
        const e = classify(err, `looking up queue "${name}"`);
        if (e.code === 'unknown-queue') throw new BrokerError('unknown-queue', `SQS queue "${name}" (${variable}) does not exist`, { cause: err });
        throw new BrokerError(e.code, `${e.message} (${variable})`, { cause: err });
      }
    }
    this.connected = true;
    this.healthy = true;
  }

  /** Every queue the configuration names, with the variable that names it. */
  private configuredQueues(): [string, string][] {
    const config = this.ctx.config;
    const sources = config.source ?? [];
    const out = new Map<string, string>();
    for (const source of sources) out.set(source, 'TURNOUT_SOURCE');
    for (const [variable, template] of [['TURNOUT_BLUE', config.blue], ['TURNOUT_GREEN', config.green], ['TURNOUT_DLQ', config.dlq]] as const) {
      if (template === undefined) continue;
      if (!template.includes('{source}')) {
        if (!out.has(template)) out.set(template, variable);
        continue;
      }
      for (const source of sources) {
        const name = expandTarget(template, source);
        if (!out.has(name)) out.set(name, variable);
      }
    }
    return [...out].map(([name, variable]) => [variable, name]);
  }

  isUp(): boolean {
    return this.connected && !this.closed && this.healthy;
  }

  private assertOpen(): void {
    if (this.closed || !this.connected) throw new BrokerError('unavailable', this.closed ? 'SQS adapter is closed' : 'SQS adapter is not connected');
  }

  async consume(source: string, handler: Handler, options: ConsumeOptions): Promise<Subscription> {
    this.assertOpen();
    const queue = await this.queues.get(source);
    this.describe(queue);
    const subscription = new SqsSubscription({
      client: this.client,
      queue,
      source,
      handler,
      prefetch: options.prefetch,
      options: this.options,
      logger: this.logger,
      deletes: this.deletes,
      visibility: this.visibility,
      resend: this.resend,
      rejected: this.rejected,
      onHealth: (ok) => this.markHealth(ok),
    });
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  /** Says at start what happens to refused messages on this queue. */
  private describe(q: QueueInfo): void {
    this.logger.info(
      { source: q.name, fifo: q.fifo, visibilityTimeout: q.visibilityTimeout, redrivePolicy: q.redrive ?? null },
      'consuming SQS queue (long polling; visibility is extended while the app works)',
    );
    if (this.ctx.config.dlq !== undefined) return;
    if (q.redrive) {
      this.logger.info(
        { source: q.name, deadLetterTargetArn: q.redrive.deadLetterTargetArn, maxReceiveCount: q.redrive.maxReceiveCount },
        "no TURNOUT_DLQ: messages that fail for good go back to SQS, and the queue's RedrivePolicy moves them to its dead-letter queue after maxReceiveCount receives",
      );
    } else {
      this.logger.error(
        { source: q.name },
        'no TURNOUT_DLQ and the queue has no RedrivePolicy: messages that fail for good come back after the visibility timeout until the retention period ends; set TURNOUT_DLQ or a RedrivePolicy',
      );
    }
  }

  async publish(queue: string, message: Message): Promise<void> {
    await this.publishes.run(() => this.place(queue, message, undefined));
  }

  /** A publish; to a FIFO queue with the group and deduplication id of `from` when it has them (a moved copy). */
  private async place(queue: string, message: Message, from: Placement | undefined): Promise<void> {
    this.assertOpen();
    const info = await this.queues.get(queue);
    // A dead-letter copy must land even if its headers do not fit as attributes: they ride inside x-turnout.
    const spill = message.headers['x-turnout-dlq-reason'] !== undefined;
    const enc = encode(message, { spill });
    if (enc.size > info.maxMessageSize) {
      throw new BrokerError(
        'too-large',
        `message is ${enc.size} bytes as SQS counts it (body${message.payload.length > 0 && enc.body !== message.payload.toString('utf8') ? ', base64-encoded because it is not UTF-8 text,' : ''} plus attributes); queue "${queue}" allows ${info.maxMessageSize}`,
      );
    }
    const entry = {
      MessageBody: enc.body,
      MessageAttributes: enc.attributes,
      ...(info.fifo
        ? {
            MessageGroupId: from?.groupId ?? groupIdOf(message, this.ctx.config.routeKey),
            MessageDeduplicationId: from?.dedupId ?? dedupIdOf(message),
          }
        : {}),
    };
    await this.send(info, { entry, size: enc.size, queueName: queue });
  }

  async sweep(queue: string, _options: SweepOptions): Promise<Sweep> {
    this.assertOpen();
    const info = await this.queues.get(queue);
    return SqsSweep.open({
      client: this.client,
      queue: info,
      visibilitySeconds: this.options.visibilityExtensionSeconds ?? Math.max(5, info.visibilityTimeout),
      waitSeconds: Math.min(2, this.options.waitTimeSeconds),
      forward: (to, message, placement) => this.publishes.run(() => this.place(to, message, placement)),
    });
  }

  async backlog(queue: string): Promise<Backlog> {
    const c = await this.counts(queue);
    return {
      queue,
      depth: c('ApproximateNumberOfMessages'),
      inflight: c('ApproximateNumberOfMessagesNotVisible'),
      deferred: c('ApproximateNumberOfMessagesDelayed'),
    };
  }

  private async counts(queue: string): Promise<(name: string) => number> {
    this.assertOpen();
    const info = await this.queues.get(queue);
    try {
      const out = await this.client.send(
        new GetQueueAttributesCommand({
          QueueUrl: info.url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      const attributes: Record<string, string | undefined> = out.Attributes ?? {};
      return (name: string): number => Number(attributes[name] ?? '0') || 0;
    } catch (err) {
      const e = classify(err, `reading the depth of queue "${queue}"`);
      if (e.code === 'unknown-queue') this.queues.forget(queue);
      throw e;
    }
  }

  /** A copy of a consumed message back into its own queue (deferrals). */
  private readonly resend: Resend = (queue, message, how) => this.publishes.run(async () => {
    const enc = encode(message, { spill: true, notBefore: how.notBefore });
    const entry = {
      MessageBody: enc.body,
      MessageAttributes: enc.attributes,
      ...(queue.fifo
        ? // A fresh deduplication id: the same id within 5 minutes would make SQS drop the copy.
          { MessageGroupId: how.groupId ?? groupIdOf(message, this.ctx.config.routeKey), MessageDeduplicationId: randomUUID() }
        : { DelaySeconds: how.delaySeconds }),
    };
    await this.send(queue, { entry, size: enc.size, queueName: queue.name });
  });

  private async send(info: QueueInfo, out: Parameters<Publisher['send']>[1]): Promise<void> {
    try {
      await this.publisher.send(info.url, out);
      this.markHealth(true);
    } catch (err) {
      const e = classify(err, `sending to queue "${info.name}"`);
      if (e.code === 'unknown-queue') this.queues.forget(info.name);
      if (e.code === 'unavailable') this.markHealth(false);
      throw e;
    }
  }

  /**
   * SQS answered (or did not). While down, a probe asks again every few
   * seconds: a publish-only sidecar that is not ready gets no traffic, so
   * traffic alone would never bring it back.
   */
  private markHealth(ok: boolean): void {
    this.healthy = ok;
    if (ok && this.probeTimer !== undefined) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
    } else if (!ok && this.probeTimer === undefined && !this.closed) {
      this.probeTimer = setInterval(() => void this.probe(), 5_000);
      this.probeTimer.unref();
    }
  }

  private async probe(): Promise<void> {
    const url = this.queues.anyUrl();
    try {
      if (url !== undefined) await this.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
      else await this.client.config.credentials();
      if (!this.closed) this.markHealth(true);
    } catch {
      // Still down; the next probe asks again.
    }
  }

  async depth(queue: string): Promise<QueueDepth> {
    const count = await this.counts(queue);
    // Delayed messages (deferrals) are waiting too; NotVisible ones are handed out and not yet deleted.
    return {
      queue,
      depth: count('ApproximateNumberOfMessages') + count('ApproximateNumberOfMessagesDelayed'),
      inflight: count('ApproximateNumberOfMessagesNotVisible'),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    await Promise.allSettled([...this.subscriptions].map((subscription) => subscription.close()));
    this.subscriptions.clear();
    await Promise.allSettled([this.deletes.flushAll(), this.visibility.flushAll()]);
    // Destroying the client cuts the sends under way: SQS may have taken one, and the SDK's
    // retry (or the publisher's caller) sends it again. New publishes fail from the start of close().
    if (!(await this.publishes.finish())) {
      this.logger.warn({ publishes: this.publishes.size, waitedMs: PUBLISH_FINISH_WAIT_MS }, 'closing with sends to SQS still unanswered; they fail, and may have reached SQS');
    }
    this.client.destroy();
  }

  private async deleteBatch(url: string, handles: string[]): Promise<(unknown | undefined)[]> {
    const out = await this.client.send(
      new DeleteMessageBatchCommand({ QueueUrl: url, Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })) }),
    );
    const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
    return handles.map((_, i) => failed.get(String(i)));
  }

  private async visibilityBatch(url: string, entries: VisibilityEntry[]): Promise<(unknown | undefined)[]> {
    const out = await this.client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: entries.map((e, i) => ({ Id: String(i), ReceiptHandle: e.receiptHandle, VisibilityTimeout: e.seconds })),
      }),
    );
    const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
    return entries.map((_, i) => failed.get(String(i)));
  }
}
