// AMQP 0-9-1 reports a queue's ready count but not its unacknowledged count.
// When RabbitMQ's management plugin answers (http://host:15672 by default,
// https://host:15671 for amqps://, or ?management=<url> on TURNOUT_BROKER),
// the broker-wide unacked count comes from its HTTP API; otherwise the
// adapter reports what this turnout holds. The plugin's figures lag by its
// statistics interval (5 s by default).

export interface ManagementTarget {
  base: string;
  vhost: string;
  authorization: string;
}

/** Splits the turnout-only `management` query parameter off the AMQP URL. */
export function managementTarget(amqpUrl: string): { amqpUrl: string; target: ManagementTarget | undefined } {
  const u = new URL(amqpUrl);
  const override = u.searchParams.get('management');
  u.searchParams.delete('management');
  const cleaned = u.toString();
  if (override === 'off') return { amqpUrl: cleaned, target: undefined };
  const base = override ?? (u.protocol === 'amqps:' ? `https://${u.hostname}:15671` : `http://${u.hostname}:15672`);
  const user = u.username ? decodeURIComponent(u.username) : 'guest';
  const pass = u.password ? decodeURIComponent(u.password) : u.username ? '' : 'guest';
  const path = u.pathname.replace(/^\//, '');
  const vhost = path === '' ? '/' : decodeURIComponent(path);
  return {
    amqpUrl: cleaned,
    target: { base: base.replace(/\/+$/, ''), vhost, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` },
  };
}

const RETRY_AFTER_FAILURE_MS = 60_000;

export class ManagementClient {
  private readonly target: ManagementTarget | undefined;
  private failedAt = -Infinity;

  constructor(target: ManagementTarget | undefined) {
    this.target = target;
  }

  /** The broker-wide unacked count, or undefined when the API does not answer (then not asked again for a minute). */
  async unacked(queue: string): Promise<number | undefined> {
    const t = this.target;
    if (!t || Date.now() - this.failedAt < RETRY_AFTER_FAILURE_MS) return undefined;
    try {
      const res = await fetch(`${t.base}/api/queues/${encodeURIComponent(t.vhost)}/${encodeURIComponent(queue)}`, {
        headers: { authorization: t.authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(2_000),
      });
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined; // the queue is not there (yet): the AMQP check decides
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { messages_unacknowledged?: unknown };
      return typeof body.messages_unacknowledged === 'number' ? body.messages_unacknowledged : undefined;
    } catch {
      this.failedAt = Date.now();
      return undefined;
    }
  }
}
