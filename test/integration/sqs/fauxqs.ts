// Starts the fauxqs SQS emulator on a free port for the SQS tests, in this
// process (fast, for adapter tests) or as a child process (benchmarks, so
// the emulator does not share an event loop with what is measured). Sets the
// AWS SDK variables the product relies on (region, credentials, endpoint) in
// this process and hands them out for turnout child processes.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import type { Received } from '../../../adapters/broker.ts';
import { decode } from '../../../adapters/sqs/codec.ts';
import { waitFor } from '../../support/wait.ts';
import { freePort } from '../../support/ports.ts';

export interface Emulator {
  /** Endpoint URL (AWS_ENDPOINT_URL_SQS). */
  url: string;
  /** The emulator's process id when it runs as a child process. */
  pid: number | undefined;
  /** AWS SDK variables for a turnout child process. */
  env: Record<string, string>;
  /** A client pointed at the emulator, for setting up and inspecting queues. */
  client: SQSClient;
  /** Creates a queue (`.fifo` names become FIFO queues); returns its URL. */
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  /** A fresh queue name with this prefix. */
  name(prefix: string): string;
  arnOf(name: string): Promise<string>;
  /** Creates `dlq`, then `name` with a RedrivePolicy moving a message there after `maxReceiveCount` receives. */
  createQueueWithRedrive(name: string, dlq: string, maxReceiveCount: number): Promise<string>;
  /** Takes every message off a queue (deleting it) and decodes it as turnout would. */
  drain(name: string): Promise<Received[]>;
  counts(name: string): Promise<{ visible: number; inflight: number; delayed: number }>;
  stop(): Promise<void>;
}


export async function startEmulator(options: { mode?: 'in-process' | 'child' } = {}): Promise<Emulator> {
  let url: string;
  let pid: number | undefined;
  let stopServer: () => Promise<void>;
  if ((options.mode ?? 'in-process') === 'in-process') {
    const server = await startFauxqs({ port: 0, logger: false });
    url = server.address;
    stopServer = () => server.stop();
  } else {
    const port = await freePort();
    const cli = fileURLToPath(import.meta.resolve('fauxqs').replace(/app\.js$/, 'cli.js'));
    const child: ChildProcess = spawn(process.execPath, [cli], {
      env: { ...process.env, FAUXQS_PORT: String(port), FAUXQS_LOGGER: 'false' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    url = `http://127.0.0.1:${port}`;
    pid = child.pid;
    await waitFor('fauxqs to listen', async () => (await fetch(`${url}/health`)).ok, 15_000, 50);
    stopServer = async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    };
  }

  const env = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_SQS: url,
    // No instance-metadata lookups on a machine without AWS.
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  Object.assign(process.env, env);
  const client = new SQSClient({ endpoint: url, region: env.AWS_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, useQueueUrlAsEndpoint: false });

  const urlOf = async (name: string): Promise<string> =>
    (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;

  const emulator: Emulator = {
    url,
    pid,
    env,
    client,
    async createQueue(name, attributes = {}) {
      const attrs = name.endsWith('.fifo') ? { FifoQueue: 'true', ...attributes } : attributes;
      const out = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs }));
      return out.QueueUrl as string;
    },
    name(prefix) {
      return `${prefix}-${randomUUID().slice(0, 8)}`;
    },
    async arnOf(name) {
      const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: await urlOf(name), AttributeNames: ['QueueArn'] }));
      return out.Attributes?.QueueArn as string;
    },
    async createQueueWithRedrive(name, dlq, maxReceiveCount) {
      await this.createQueue(dlq);
      return this.createQueue(name, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await this.arnOf(dlq), maxReceiveCount: String(maxReceiveCount) }) });
    },
    async drain(name) {
      const queueUrl = await urlOf(name);
      const out: Received[] = [];
      for (let empty = 0; empty < 2; ) {
        const r = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
          }),
        );
        const ms = r.Messages ?? [];
        if (ms.length === 0) {
          empty++;
          continue;
        }
        empty = 0;
        for (const m of ms) out.push(decode(m, name).received);
        await client.send(
          new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: ms.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }),
        );
      }
      return out;
    },
    async counts(name) {
      const out = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: await urlOf(name),
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      const a = out.Attributes ?? {};
      return {
        visible: Number(a.ApproximateNumberOfMessages ?? 0),
        inflight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    },
    async stop() {
      client.destroy();
      await stopServer();
    },
  };
  return emulator;
}
