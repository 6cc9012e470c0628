// rabbitmqctl for fault tests (needs root or password-less sudo, as the test setup does).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from '../../support/wait.ts';

const run = promisify(execFile);

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['rabbitmqctl', args] : ['sudo', ['-n', 'rabbitmqctl', ...args]];
  const { stdout } = await run(cmd, argv, { timeout: 60_000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/lib/rabbitmq/bin` } });
  return stdout;
}

/** Closes the broker side of every connection whose connection_name is `name` (a dropped connection, as a network fault would). */
export async function closeConnectionsNamed(name: string): Promise<number> {
  // Tab-separated: the pid in the form close_connection accepts, then the client properties (Erlang terms).
  const lines = (await rabbitmqctl('list_connections', 'pid', 'client_properties', '--quiet', '--no-table-headers')).split('\n');
  let n = 0;
  for (const line of lines) {
    const [pid, props] = line.split('\t');
    if (pid && props?.includes(`{"connection_name","${name}"}`)) {
      await rabbitmqctl('close_connection', pid, 'turnout fault test');
      n++;
    }
  }
  return n;
}

/** stop_app, hold it down for `downMs`, start_app; always leaves RabbitMQ running. */
export async function restartRabbit(downMs: number, whileDown?: () => Promise<void>): Promise<void> {
  await rabbitmqctl('stop_app');
  try {
    await new Promise((r) => setTimeout(r, downMs));
    await whileDown?.();
  } finally {
    await rabbitmqctl('start_app');
    await rabbitmqctl('await_startup').catch(() => {});
    await waitFor('RabbitMQ to accept connections', () => rabbitmqctl('status').then(() => true), 60_000, 500);
  }
}

/** Resource alarms in effect on the node, as rabbit_alarm lists them (e.g. `[]`, or one naming `memory`). */
export async function alarms(): Promise<string> {
  return (await rabbitmqctl('eval', 'rabbit_alarm:get_alarms().')).trim();
}

/**
 * Runs `fn` while RabbitMQ's memory alarm is in effect: the watermark set
 * far below what the node uses, so RabbitMQ blocks every connection that
 * publishes. Restores the watermark it found afterwards, whatever `fn` did.
 * Hold rabbitExclusive around it: the alarm is the whole node's.
 */
export async function withMemoryAlarm<T>(fn: () => Promise<T>): Promise<T> {
  const before = (await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().')).trim();
  // A fraction ("0.4") goes back as it is; anything else (an absolute limit) as the default fraction.
  const restore = /^0?\.\d+$|^1(\.0+)?$/.test(before) ? before : '0.4';
  await rabbitmqctl('set_vm_memory_high_watermark', '0.00001');
  try {
    await waitFor('the memory alarm in effect', async () => (await alarms()).includes('memory'), 30_000, 100);
    return await fn();
  } finally {
    await rabbitmqctl('set_vm_memory_high_watermark', restore);
    await waitFor('the memory alarm cleared', async () => !(await alarms()).includes('memory'), 30_000, 100);
  }
}
