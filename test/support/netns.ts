// A network namespace of the test's own, joined to the root namespace by a
// veth pair with a /30 of 10.231.0.0/16: a peer that is not on loopback and
// not on any of the machine's real interfaces. Requests are sent from inside
// it with `ip netns exec`. Needs root and iproute2 (scripts/test-setup.d).
//
// Names carry the test process' pid, so parallel runs never collide, and a
// namespace left by a run that was killed before its `after` hook is removed
// by the next run (only ours: the prefix and a pid that no longer runs).

import { spawn, spawnSync } from 'node:child_process';

const PREFIX = 'turnout-test-';

export interface Netns {
  name: string;
  /** The root namespace's end of the veth pair: what the namespace reaches. */
  hostAddress: string;
  /** The namespace's end: the peer address the sidecar sees. */
  peerAddress: string;
  /** Removes the namespace (and with it both veth ends). Idempotent. */
  remove(): void;
}

function ip(args: string[], allowFailure = false): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`ip ${args.join(' ')}: ${r.error.message} (is iproute2 installed?)`);
  if (r.status !== 0 && !allowFailure) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Namespaces of earlier runs of these tests whose process is gone (killed before cleaning up). */
function removeStale(): void {
  for (const line of ip(['netns', 'list'], true).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-\\d+$`).exec(name);
    if (m && !alive(Number(m[1]))) ip(['netns', 'del', name], true);
  }
}

let seq = 0;

/** Creates a namespace with a veth pair; the caller removes it in an `after` hook. */
export function createNetns(): Netns {
  removeStale();
  const n = seq++;
  const name = `${PREFIX}${process.pid}-${n}`;
  // Interface names are at most 15 characters.
  const tag = `${process.pid.toString(36)}${n.toString(36)}`;
  const hostIf = `tvh${tag}`;
  const peerIf = `tvp${tag}`;
  const inUse = ip(['-o', '-4', 'addr', 'show']);
  // 16384 /30 blocks in 10.231.0.0/16; start from the pid and skip blocks some interface already uses.
  let hostAddress = '';
  let peerAddress = '';
  for (let i = 0; i < 16384; i++) {
    const block = (process.pid * 8 + n + i) % 16384;
    const base = `10.231.${block >> 6}.`;
    const low = (block & 63) * 4;
    if (inUse.includes(` ${base}${low + 1}/`) || inUse.includes(` ${base}${low + 2}/`)) continue;
    hostAddress = `${base}${low + 1}`;
    peerAddress = `${base}${low + 2}`;
    break;
  }
  if (hostAddress === '') throw new Error('no free /30 in 10.231.0.0/16');
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    ip(['netns', 'del', name], true);
    ip(['link', 'del', hostIf], true); // gone with the namespace already, unless creation stopped half-way
  };
  try {
    ip(['netns', 'add', name]);
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf]);
    ip(['link', 'set', peerIf, 'netns', name]);
    ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostIf]);
    ip(['link', 'set', hostIf, 'up']);
    ip(['-n', name, 'addr', 'add', `${peerAddress}/30`, 'dev', peerIf]);
    ip(['-n', name, 'link', 'set', peerIf, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    remove();
    throw err;
  }
  return { name, hostAddress, peerAddress, remove };
}

export interface NsResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface NsRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

// Runs in one node process inside the namespace: the requests one after the
// other (starting node is the slow part), their answers as JSON on stdout.
const CLIENT = `
const requests = JSON.parse(process.argv[1]);
(async () => {
  const out = [];
  for (const { url, ...init } of requests) {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(15000) });
    out.push({ status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((err) => { process.stderr.write(String((err && err.cause) || err)); process.exit(1); });
`;

/** HTTP requests sent in order from inside the namespace; their answers in the same order. */
export function fetchFromNetns(ns: Netns, requests: NsRequest[]): Promise<NsResponse[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', CLIENT, JSON.stringify(requests)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`requests from ${ns.name} failed (${code}): ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as NsResponse[]);
      } catch {
        reject(new Error(`requests from ${ns.name}: unreadable answer ${out}`));
      }
    });
  });
}
