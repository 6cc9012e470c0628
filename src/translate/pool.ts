// The translation budget (TURNOUT_TRANSLATE_TIMEOUT): translations run in
// worker processes (worker.ts), never in turnout's event loop, so that a step
// that never ends (JSONata's evaluate() awaits only microtasks: it never
// yields to the event loop) or a hostile payload cannot stall health checks,
// metrics and the other messages. A job still running at its deadline is
// stopped by killing its worker, which is then replaced; a worker that runs
// out of its heap (--max-old-space-size) fails only the job it was running.
// Processes, not worker threads: V8 aborts the whole process when a single
// allocation overshoots a worker thread's resourceLimits.
//
// Seam for a compiled synchronous fast path (issue 14): steps proven to be
// bounded could run in the main thread before reaching translate() here;
// the pipeline only sees the Translate function.

import { Buffer } from 'node:buffer';
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/log.ts';
import { TranslateError } from './evaluate.ts';
import { SETUP_ENV, type JobRequest, type WorkerReply, type WorkerSetup } from './protocol.ts';

/** What the pipeline calls: a translated copy, or a TranslateError saying why not (with its dead-letter reason). */
/**
 * Translates a payload along a chain. The compiled path (fast.ts) answers
 * with the Buffer itself when it has it at once (no promise, and the caller
 * skips a microtask hop); failures are always rejections.
 */
export type Translate = (chain: PoolChain, payload: Buffer) => Promise<Buffer> | Buffer;

/** What the pool needs of a chain (translators.ts's Chain is one). */
export interface PoolChain {
  from: number;
  to: number;
  label: string;
  steps: readonly { from: number; to: number; text: string }[];
}

export interface TranslationPoolOptions {
  /** Budget per message in ms, from the moment a worker takes it. */
  timeoutMs: number;
  /** TURNOUT_MAX_MESSAGE_BYTES: larger translated copies are 'too-large'. */
  maxBytes: number;
  /** Worker processes (default 2: one stuck job does not hold up the rest). */
  size?: number;
  /** Old-generation heap limit of each worker in MiB (default: heapLimitMb(maxBytes)). */
  heapMb?: number;
  logger?: Logger;
}

/** Enough for parse + evaluate + serialise of the largest message turnout takes, with room. */
export function heapLimitMb(maxBytes: number): number {
  return Math.max(48, Math.ceil((maxBytes * 24) / (1024 * 1024)));
}

interface Job {
  chain: PoolChain;
  payload: Buffer;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

interface Sent {
  id: number;
  job: Job;
  timer?: NodeJS.Timeout;
}

/** Jobs sent ahead to one worker: enough to hide the round trip, few enough that a stuck job delays few. */
const DEPTH = 4;

interface Slot {
  worker: ChildProcess;
  ready: boolean;
  /**
   * Jobs sent to it, in the order it runs them (one at a time). The first is
   * running: its deadline timer starts when it becomes first. The others wait
   * in the worker, so that it never idles for a round trip between jobs.
   */
  sent: Sent[];
  /** Killed (or dead) on purpose: its exit is expected. */
  retired: boolean;
  /** The end of its stderr: how an out-of-memory death is told from others. */
  stderrTail: string;
}

// The worker's file next to this one: .ts when run from source, .js when compiled.
const WORKER_PATH = fileURLToPath(new URL(`./worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
const RESPAWN_AFTER_BOOT_FAILURE_MS = 1000;
/** Nice value of the workers, relative to none: the kernel favours turnout's main process under contention. */
const WORKER_NICENESS = 10;

export class TranslationPool {
  private readonly o: Required<Omit<TranslationPoolOptions, 'logger'>> & { logger: Logger | undefined };
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers that failed before they were ready make the pool wait before the next try. */
  private spawnBlockedUntil = 0;
  private spawnTimer: NodeJS.Timeout | undefined;

  constructor(options: TranslationPoolOptions) {
    this.o = {
      timeoutMs: options.timeoutMs,
      maxBytes: options.maxBytes,
      size: Math.max(1, options.size ?? 2),
      heapMb: options.heapMb ?? heapLimitMb(options.maxBytes),
      logger: options.logger,
    };
  }

  /** Translates within the budget. Rejects with TranslateError (a verdict on the message) or Error (the pool is closed or broken). */
  translate(chain: PoolChain, payload: Buffer): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('the translation pool is closed'));
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ chain, payload, resolve, reject });
      this.pump();
    });
  }

  /**
   * Starts every worker now rather than on the first translation, and resolves
   * once each is ready (or failed to start: the first translation then says
   * why). For a caller that must not see the first messages wait on a worker's
   * start-up (the demo judges a rollout over a 1.5 s interval).
   */
  async warm(): Promise<void> {
    if (this.closed) return;
    while (this.slots.length < this.o.size) this.spawn();
    await Promise.all(this.slots.map((slot) => (slot.ready ? undefined : new Promise<void>((resolve) => {
      const done = (): void => resolve();
      slot.worker.on('message', (r: WorkerReply) => r.kind === 'ready' && done());
      slot.worker.once('close', done);
      slot.worker.once('error', done);
    }))));
    this.pump();
  }

  /** Workers alive now (for tests and diagnostics). */
  get workers(): number {
    return this.slots.length;
  }

  /** Stops every worker; queued and running jobs are rejected with a plain Error. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.spawnTimer);
    for (const j of this.queue.splice(0)) j.reject(new Error('the translation pool is closed'));
    const stopping = this.slots.splice(0).map((s) => {
      s.retired = true;
      for (const j of s.sent.splice(0)) {
        clearTimeout(j.timer);
        j.job.reject(new Error('the translation pool is closed'));
      }
      return stop(s.worker);
    });
    await Promise.all(stopping);
  }

  private pump(): void {
    if (this.closed) return;
    // Level by level, so that jobs spread over the workers (an idle one first) before any
    // worker gets a second: a stuck job then holds up as few others as possible. While a
    // worker is starting, the others take one job each: the rest wait for it.
    const depthLimit = this.slots.some((s) => !s.ready) ? 1 : DEPTH;
    for (let depth = 1; depth <= depthLimit && this.queue.length > 0; depth++) {
      for (const slot of this.slots) {
        if (slot.ready && slot.sent.length < depth && this.queue.length > 0) this.dispatch(slot, this.queue.shift() as Job);
      }
    }
    // An idle pool must not keep the process alive (`turnout check`, tests); a busy worker does.
    for (const slot of this.slots) if (slot.ready) hold(slot.worker, slot.sent.length > 0);
    if (this.queue.length === 0) return;
    // Workers are started on the first demand, all of them: a sidecar that never translates never
    // pays for them, and one that does has its spare worker ready when a job gets stuck.
    while (this.slots.length < this.o.size && this.spawnAllowed()) this.spawn();
  }

  private spawnAllowed(): boolean {
    const wait = this.spawnBlockedUntil - Date.now();
    if (wait <= 0) return true;
    this.spawnTimer ??= setTimeout(() => {
      this.spawnTimer = undefined;
      this.pump();
    }, wait);
    return false;
  }

  private spawn(): void {
    const setup: WorkerSetup = { maxBytes: this.o.maxBytes, guardMs: this.o.timeoutMs * 2 + 1000 };
    const worker = fork(WORKER_PATH, [], {
      serialization: 'advanced',
      // Not turnout's own flags (a test runner's, an inspector port): only the heap.
      execArgv: [`--max-old-space-size=${this.o.heapMb}`, '--max-semi-space-size=1'],
      env: { ...process.env, [SETUP_ENV]: JSON.stringify(setup) },
      // Its stderr would put V8's out-of-memory report into the JSON log; read it, do not print it.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    // Translation is background work next to turnout's own event loop (probes, deliveries, acks):
    // a worker stuck at full CPU until its budget ends must not take the core turnout needs.
    if (worker.pid !== undefined) {
      try {
        setPriority(worker.pid, WORKER_NICENESS);
      } catch {
        // Not permitted here (it always is, to lower a priority); the budget still applies.
      }
    }
    const slot: Slot = { worker, ready: false, retired: false, stderrTail: '', sent: [] };
    this.slots.push(slot);
    worker.stderr?.on('data', (d: Buffer) => (slot.stderrTail = (slot.stderrTail + d.toString('utf8')).slice(-4096)));
    // Spawned because a job waits: it holds the process until it is ready and idle (see pump).
    worker.on('message', (r: WorkerReply) => this.onReply(slot, r));
    worker.on('error', (err: Error & { code?: string }) => this.onDeath(slot, err.code ?? err.name));
    // 'close', not 'exit': it comes after the last of stderr, which tells an out-of-memory death.
    worker.on('close', (code, signal) => this.onDeath(slot, signal ?? `exit code ${code}`));
  }

  private dispatch(slot: Slot, job: Job): void {
    const id = this.nextId++;
    slot.sent.push({ id, job });
    if (slot.sent.length === 1) this.startClock(slot);
    const payload = job.payload;
    const request: JobRequest = {
      id,
      from: job.chain.from,
      to: job.chain.to,
      steps: job.chain.steps.map((s) => ({ from: s.from, to: s.to, text: s.text })),
      payload,
    };
    slot.worker.send(request);
  }

  private onReply(slot: Slot, r: WorkerReply): void {
    if (slot.retired) return;
    if (r.kind === 'ready') {
      slot.ready = true;
      this.pump();
      return;
    }
    const running = slot.sent[0];
    if (running === undefined || running.id !== r.id) return;
    clearTimeout(running.timer);
    slot.sent.shift();
    this.startClock(slot);
    if (r.kind === 'done') running.job.resolve(Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
    else running.job.reject(new TranslateError(r.message, r.reason));
    this.pump();
  }

  /** The worker runs its first job from now on: the budget counts from here. */
  private startClock(slot: Slot): void {
    const first = slot.sent[0];
    if (first === undefined || first.timer !== undefined) return;
    const id = first.id;
    first.timer = setTimeout(() => this.onTimeout(slot, id), this.o.timeoutMs);
  }

  /** Jobs a dead worker had not started go back to the front of the queue: they are not at fault. */
  private requeueWaiting(slot: Slot): void {
    const waiting = slot.sent.splice(1).map((j) => j.job);
    this.queue.unshift(...waiting);
  }

  private onTimeout(slot: Slot, id: number): void {
    const running = slot.sent[0];
    if (slot.retired || running === undefined || running.id !== id) return;
    this.requeueWaiting(slot);
    slot.sent.length = 0;
    this.retire(slot);
    running.job.reject(new TranslateError(`timed out after ${this.o.timeoutMs} ms (TURNOUT_TRANSLATE_TIMEOUT) translating ${running.job.chain.label}`));
    this.o.logger?.warn({ chain: running.job.chain.label, timeoutMs: this.o.timeoutMs }, 'a translation overran its budget; its worker process was killed and is replaced');
    this.pump();
  }

  private onDeath(slot: Slot, how: string): void {
    if (slot.retired) return;
    const wasReady = slot.ready;
    this.retire(slot);
    const running = slot.sent[0];
    this.requeueWaiting(slot);
    slot.sent.length = 0;
    if (running) {
      clearTimeout(running.timer);
      // V8 aborts (SIGABRT) with "JavaScript heap out of memory" when the heap limit is reached.
      const oom = how === 'SIGABRT' || /heap out of memory|Allocation failed/.test(slot.stderrTail);
      const why = oom
        ? `ran out of memory translating ${running.job.chain.label} (a translation worker's heap is limited to ${this.o.heapMb} MiB)`
        : `the translation worker died translating ${running.job.chain.label} (${how})`;
      running.job.reject(new TranslateError(why));
      this.o.logger?.warn({ chain: running.job.chain.label, how, outOfMemory: oom }, 'a translation worker died; it is replaced');
    } else if (!wasReady) {
      // It never started (a broken install?): retrying at once would spin. The waiting messages
      // are not at fault, so they fail with a plain Error and go back to the broker.
      this.spawnBlockedUntil = Date.now() + RESPAWN_AFTER_BOOT_FAILURE_MS;
      this.o.logger?.error({ how }, 'a translation worker failed to start');
      if (this.slots.every((s) => !s.ready)) for (const j of this.queue.splice(0)) j.reject(new Error(`no translation worker could start (${how})`));
    }
    this.pump();
  }

  /** Takes a slot out of the pool and stops its worker (if it is still running). */
  private retire(slot: Slot): void {
    slot.retired = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    void stop(slot.worker);
  }
}

/** Kills a worker (it may be stuck in a loop: no polite request would be read) and waits for its exit. */
function stop(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
  // Kept alive until the exit arrives, or an awaited close() would leave nothing holding the loop.
  hold(worker, true);
  return new Promise((resolve) => {
    worker.once('exit', () => resolve());
    worker.kill('SIGKILL');
  });
}

/** Whether the worker (the child, its IPC channel and its stderr pipe) keeps the event loop alive. */
function hold(worker: ChildProcess, on: boolean): void {
  const handles = [worker, worker.channel, worker.stderr] as ({ ref?: () => void; unref?: () => void } | null | undefined)[];
  for (const h of handles) {
    if (on) h?.ref?.();
    else h?.unref?.();
  }
}
