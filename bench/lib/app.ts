// The tiny HTTP app the messages are delivered to, on loopback. It answers
// 200 to every POST, counts deliveries by message id, and computes each
// message's end-to-end latency from the producer's CLOCK_MONOTONIC stamp
// (header x-bench-sent, ns) — valid across processes of one machine.
//
// Control endpoints on the same port let a benchmark in another process
// drive it:
//   POST /_bench/reset?prefix=P[&groups=G,H] forget everything seen so far; from now on
//                                            count only ids starting with P (others are "stray"),
//                                            and tally apart those starting with P+G, P+H, …
//   GET  /_bench/wait?count=N&timeoutMs=T[&group=G]
//                                            answers once N deliveries were seen (of group G) (or T passed)
//   GET  /_bench/latencies                   {"samplesMs": [...]} for stamped messages

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monoNs } from './pace.ts';

export const SENT_HEADER = 'x-bench-sent';
export const ID_HEADER = 'x-turnout-message-id';
/** The version header the app tallies (what a translation sets). */
const VERSION = 'x-schema-version';

/** The deliveries of one group of ids (a phase of a run, e.g. warm-up and measured messages sent together). */
export interface GroupTally {
  count: number;
  /** CLOCK_MONOTONIC ns (decimal string) of the group's first and latest first delivery. */
  firstNs: string;
  lastNs: string;
}

export interface WaitAnswer {
  /** Deliveries seen (first deliveries; duplicates counted apart). */
  count: number;
  duplicates: number;
  /** Deliveries of ids outside the current prefix (left over from an earlier phase). */
  stray: number;
  /** CLOCK_MONOTONIC ns (decimal string) of the first and latest first delivery. */
  firstNs: string;
  lastNs: string;
  reached: boolean;
  /** Per group named at reset, as it stood when the answer was made (for a reached wait: at the delivery that reached it). */
  groups: Record<string, GroupTally>;
  /** First deliveries by the version header's value ('' when absent). */
  versions: Record<string, number>;
}

export interface BenchApp {
  /** Where messages go (TURNOUT_APP_URL). */
  url: string;
  /** Base of the control endpoints, e.g. http://127.0.0.1:1234 */
  base: string;
  close(): Promise<void>;
}

export async function startBenchApp(): Promise<BenchApp> {
  let seen = new Set<string>();
  let duplicates = 0;
  let stray = 0;
  let prefix = '';
  let firstNs = 0n;
  let lastNs = 0n;
  let latencies: number[] = [];
  let groups = new Map<string, { count: number; firstNs: bigint; lastNs: bigint }>();
  let versions: Record<string, number> = {};
  let waiters: { count: number; group: string | undefined; done: () => void }[] = [];

  const countOf = (group: string | undefined): number => (group === undefined ? seen.size : (groups.get(group)?.count ?? 0));
  const answer = (reached = false): WaitAnswer => ({
    count: seen.size, duplicates, stray, firstNs: String(firstNs), lastNs: String(lastNs), reached,
    groups: Object.fromEntries([...groups].map(([g, t]) => [g, { count: t.count, firstNs: String(t.firstNs), lastNs: String(t.lastNs) }])),
    versions: { ...versions },
  });

  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/_bench/')) {
      control(path, res);
      req.resume();
      return;
    }
    // Read the whole body, as a real app would, before answering.
    req.on('data', () => {});
    req.on('end', () => {
      const now = monoNs();
      const id = String(req.headers[ID_HEADER] ?? '');
      const sent = req.headers[SENT_HEADER];
      if (!id.startsWith(prefix)) stray++;
      else if (seen.has(id)) duplicates++;
      else {
        seen.add(id);
        if (typeof sent === 'string') latencies.push(Number(now - BigInt(sent)) / 1e6);
        if (seen.size === 1) firstNs = now;
        lastNs = now;
        const version = String(req.headers[VERSION] ?? '');
        versions[version] = (versions[version] ?? 0) + 1;
        for (const [g, t] of groups) {
          if (!id.startsWith(prefix + g)) continue;
          if (t.count++ === 0) t.firstNs = now;
          t.lastNs = now;
        }
        if (waiters.length > 0) {
          const ready = waiters.filter((w) => countOf(w.group) >= w.count);
          if (ready.length > 0) {
            waiters = waiters.filter((w) => countOf(w.group) < w.count);
            for (const w of ready) w.done();
          }
        }
      }
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
  });

  function control(path: string, res: ServerResponse): void {
    const u = new URL(path, 'http://x');
    const json = (body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    switch (u.pathname) {
      case '/_bench/reset':
        seen = new Set();
        duplicates = 0;
        stray = 0;
        prefix = u.searchParams.get('prefix') ?? '';
        groups = new Map((u.searchParams.get('groups') ?? '').split(',').filter((g) => g !== '').map((g) => [g, { count: 0, firstNs: 0n, lastNs: 0n }]));
        versions = {};
        firstNs = lastNs = 0n;
        latencies = [];
        json({ ok: true });
        return;
      case '/_bench/wait': {
        const count = Number(u.searchParams.get('count') ?? '0');
        const timeoutMs = Number(u.searchParams.get('timeoutMs') ?? '60000');
        const group = u.searchParams.get('group') ?? undefined;
        if (countOf(group) >= count) return json(answer(true));
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          json(answer());
        }, timeoutMs);
        // The answer is made now, at the delivery that reached the count, so the other groups' tallies are as they stood then.
        const waiter = { count, group, done: () => (clearTimeout(timer), json(answer(true))) };
        waiters.push(waiter);
        return;
      }
      case '/_bench/latencies':
        return json({ samplesMs: latencies });
      default:
        res.writeHead(404);
        res.end();
    }
  }

  // Match undici's pool keep-alive so idle connections are not cut mid-run.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/messages`,
    base,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The control client, for the benchmark process (fetch: a dispatcher apart from the one under test). */
export class BenchAppControl {
  private readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  /** Starts a phase: the app forgets what it saw and counts only ids starting with `prefix`, tallying apart those starting with prefix + each of `groups`. */
  async reset(prefix: string, groups: string[] = []): Promise<void> {
    const res = await fetch(`${this.base}/_bench/reset?prefix=${encodeURIComponent(prefix)}&groups=${encodeURIComponent(groups.join(','))}`, { method: 'POST' });
    await res.arrayBuffer();
  }

  /** Resolves once the app has seen `count` distinct messages (of `group`, when given); throws after timeoutMs. */
  async waitFor(count: number, timeoutMs = 60_000, group?: string): Promise<WaitAnswer> {
    const of = group === undefined ? '' : `&group=${encodeURIComponent(group)}`;
    const res = await fetch(`${this.base}/_bench/wait?count=${count}&timeoutMs=${timeoutMs}${of}`);
    const a = (await res.json()) as WaitAnswer;
    const seen = group === undefined ? a.count : (a.groups[group]?.count ?? 0);
    if (!a.reached) throw new Error(`the app saw ${seen} of ${count} messages${group === undefined ? '' : ` of group ${group}`} within ${timeoutMs} ms`);
    return a;
  }

  async latencies(): Promise<number[]> {
    const res = await fetch(`${this.base}/_bench/latencies`);
    return ((await res.json()) as { samplesMs: number[] }).samplesMs;
  }
}
