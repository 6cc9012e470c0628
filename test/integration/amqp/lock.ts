// A reader/writer lock between test processes that use the shared RabbitMQ.
// node --test runs files in parallel; a test that stops RabbitMQ takes the
// exclusive side so it never pulls the broker from under another file's
// tests, which hold the shared side while they run. Lock files carry the
// owner's pid, so a crashed test process never blocks the others.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../../support/wait.ts';

const DIR = join(tmpdir(), 'turnout-rabbit-lock');
const EXCL = join(DIR, 'exclusive');
const mine = join(DIR, `shared-${process.pid}`);
let sharedHolds = 0;

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The pid holding the exclusive side, if a live process does. */
function exclusiveOwner(): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(EXCL, 'owner'), 'utf8'));
  } catch {
    try {
      readdirSync(EXCL);
    } catch {
      return undefined; // no exclusive lock
    }
    return -1; // being created right now: treat as held
  }
  if (alive(pid)) return pid;
  rmSync(EXCL, { recursive: true, force: true });
  return undefined;
}

/** Holds the shared side until the returned function is called. Re-entrant within a process. */
export async function rabbitShared(timeoutMs = 240_000): Promise<() => void> {
  mkdirSync(DIR, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  if (sharedHolds === 0) {
    for (;;) {
      writeFileSync(mine, String(process.pid));
      const owner = exclusiveOwner();
      if (owner === undefined || owner === process.pid) break;
      rmSync(mine, { force: true });
      if (Date.now() > deadline) throw new Error('timed out waiting for a RabbitMQ restart test in another process to finish');
      await sleep(200);
    }
  }
  sharedHolds++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--sharedHolds === 0) rmSync(mine, { force: true });
  };
}

/** Runs `fn` while no other test process uses RabbitMQ. */
export async function rabbitExclusive<T>(fn: () => Promise<T>, timeoutMs = 240_000): Promise<T> {
  mkdirSync(DIR, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(EXCL);
      writeFileSync(join(EXCL, 'owner'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      exclusiveOwner(); // clears a dead owner's lock
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for the exclusive RabbitMQ lock');
    await sleep(200);
  }
  try {
    for (;;) {
      const others = readdirSync(DIR).filter((f) => f.startsWith('shared-')).map((f) => Number(f.slice(7)))
        .filter((pid) => pid !== process.pid && (alive(pid) || (rmSync(join(DIR, `shared-${pid}`), { force: true }), false)));
      if (others.length === 0) break;
      if (Date.now() > deadline) throw new Error(`timed out waiting for RabbitMQ tests in processes ${others.join(', ')} to finish`);
      await sleep(200);
    }
    return await fn();
  } finally {
    rmSync(EXCL, { recursive: true, force: true });
  }
}
