// The Translate function turnout uses (issue 14): the compiled steps of a
// chain (compile.ts) run synchronously in turnout's main thread, the rest in
// the worker pool (pool.ts) on the reference evaluator.
//
// A chain runs compiled from its first step while its steps are compiled;
// from the first reference step on, the pool runs the rest (the value gets
// there as JSON). The compiled path only ever answers with a translated copy
// (or with the verdicts it shares word for word with the workers: not JSON,
// no value, too large). Whenever a compiled step throws or leaves its
// bounds, the whole chain goes to the pool from the original payload, so the
// reference evaluator gives the verdict and the error text.
//
// Bounds: a compiled run gets a main-thread time slice (SLICE_MS, at most the
// budget), checked every 1 000 operations, plus caps on depth and on the size
// of what it builds; over one, the pool takes the chain with the full
// TURNOUT_TRANSLATE_TIMEOUT budget. A step that overruns DEMOTE_AFTER times
// runs in the pool from then on (until the translators file is reloaded), so
// an endless step costs the event loop a few slices, not one per message.
// Parsing the payload and serialising the result are outside the slice but
// proportional to the payload: payloads over FAST_MAX_PAYLOAD_BYTES go to the
// pool without a compiled attempt (the slice bounds only the run). Measured
// on the budget e2e test's 256 KiB object (10 155 keys, the $sift/$merge
// step), CPU time: ~3 ms to parse, 8-13 ms to run, ~2 ms to serialise —
// ~17 ms of main thread per message, times the messages the broker hands over
// at once (TURNOUT_CONCURRENCY), and on a loaded machine the run alone took
// 25-380 ms of wall time (past the slice: handed over and demoted anyway).
// At 64 KiB it is a quarter of that; the 1 KiB messages translators are
// made for take tens of microseconds.

import { Buffer } from 'node:buffer';
import type { Logger } from '../../lib/log.ts';
import { Guard, measure, Overrun, type CompiledExpression } from './compile.ts';
import { noValue, parsePayload, resultBytes, type TranslateLimits } from './evaluate.ts';
import type { PoolChain, Translate } from './pool.ts';

/** How long one compiled step may hold the main thread before the pool takes over. */
export const SLICE_MS = 25;
/** Payloads larger than this run in the pool: their parse alone would hold the main thread for milliseconds. */
export const FAST_MAX_PAYLOAD_BYTES = 64 * 1024;
/** Overruns after which a compiled step runs in the pool for good. */
export const DEMOTE_AFTER = 3;

/** A chain step as the fast path sees it (translators.ts's Step is one). */
export interface FastStep {
  from: number;
  to: number;
  text: string;
  engine: 'compiled' | 'reference';
  compiled?: CompiledExpression | undefined;
}

export interface FastChain extends PoolChain {
  steps: readonly FastStep[];
}

export interface FastTranslatorOptions {
  /** TURNOUT_TRANSLATE_TIMEOUT: the slice is at most this. */
  timeoutMs: number;
  /** TURNOUT_MAX_MESSAGE_BYTES. */
  maxBytes: number;
  sliceMs?: number;
  demoteAfter?: number;
  /** Default FAST_MAX_PAYLOAD_BYTES (never above maxBytes). */
  maxPayloadBytes?: number;
  logger?: Logger | undefined;
}

/** What the fast path needs of the pool. */
export interface ReferenceRunner {
  translate(chain: PoolChain, payload: Buffer): Promise<Buffer>;
}

export class FastTranslator {
  private readonly sliceMs: number;
  private readonly demoteAfter: number;
  private readonly maxPayloadBytes: number;
  /** Overruns per compiled expression; a reload brings new expressions, so old counts fall away. */
  private readonly overruns = new WeakMap<CompiledExpression, number>();
  /** Counters for tests and diagnostics. */
  readonly stats = { compiled: 0, handedOver: 0, overruns: 0 };

  private readonly pool: ReferenceRunner;
  private readonly o: FastTranslatorOptions;
  private readonly limits: TranslateLimits;

  constructor(pool: ReferenceRunner, o: FastTranslatorOptions) {
    this.pool = pool;
    this.o = o;
    this.limits = { maxBytes: o.maxBytes };
    this.sliceMs = Math.min(o.sliceMs ?? SLICE_MS, o.timeoutMs);
    this.demoteAfter = o.demoteAfter ?? DEMOTE_AFTER;
    this.maxPayloadBytes = Math.min(o.maxPayloadBytes ?? FAST_MAX_PAYLOAD_BYTES, o.maxBytes);
  }

  /** Whether the step runs compiled now (compiled at load and not demoted since). */
  runsCompiled(step: FastStep): boolean {
    const c = step.compiled;
    return step.engine === 'compiled' && c !== undefined && (this.overruns.get(c) ?? 0) < this.demoteAfter;
  }

  // Not an async function: a compiled answer is returned as it is, a failure as a rejection.
  readonly translate: Translate = (chain, payload) => {
    try {
      return this.run(chain as FastChain, payload);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  /** Throws a TranslateError for the verdicts the compiled path gives itself (translate() makes it a rejection). */
  private run(chain: FastChain, payload: Buffer): Promise<Buffer> | Buffer {
    const steps = chain.steps;
    if (steps.length === 0 || !this.runsCompiled(steps[0] as FastStep) || payload.length > this.maxPayloadBytes) {
      return this.pool.translate(chain, payload);
    }
    let value = parsePayload(chain, payload);
    let i = 0;
    let guard = this.guard();
    for (; i < steps.length && this.runsCompiled(steps[i] as FastStep); i++) {
      const step = steps[i] as FastStep;
      if (i > 0) guard = this.guard();
      let out: unknown;
      try {
        out = (step.compiled as CompiledExpression)(value, guard);
      } catch (err) {
        if (err instanceof Overrun) this.overrun(step, chain, err);
        return this.handOver(chain, payload);
      }
      if (out === undefined) throw noValue(step);
      value = out;
    }
    // Measured within the last step's slice (what is left of it): one clock read less per message.
    let size: { n: number; lambdas: number };
    try {
      size = measure(value, this.o.maxBytes, guard);
    } catch {
      // An overrun, or a stack overflow on a deeply nested value: the workers give the verdict.
      return this.handOver(chain, payload);
    }
    // Functions in the result, or a copy certainly too large: the reference evaluator words the verdict.
    if (size.lambdas > 0 || size.n > this.o.maxBytes) return this.handOver(chain, payload);
    if (i === steps.length) {
      this.stats.compiled++;
      return resultBytes(chain, value, this.limits);
    }
    // A top-level sequence would reach the next step unlike a JSON array (no singleton wrapping): run it all there.
    if (Array.isArray(value) && (value as { sequence?: boolean }).sequence === true) return this.handOver(chain, payload);
    const rest: PoolChain = { from: chain.from, to: chain.to, label: chain.label, steps: steps.slice(i) };
    return this.pool.translate(rest, Buffer.from(JSON.stringify(value), 'utf8'));
  }

  private guard(): Guard {
    return new Guard(performance.now() + this.sliceMs, Math.max(100_000, this.o.maxBytes), this.o.maxBytes);
  }

  private handOver(chain: FastChain, payload: Buffer): Promise<Buffer> {
    this.stats.handedOver++;
    return this.pool.translate(chain, payload);
  }

  private overrun(step: FastStep, chain: FastChain, err: Overrun): void {
    this.stats.overruns++;
    const c = step.compiled as CompiledExpression;
    const n = (this.overruns.get(c) ?? 0) + 1;
    this.overruns.set(c, n);
    if (n === this.demoteAfter) {
      this.o.logger?.warn({ step: `${step.from}->${step.to}`, chain: chain.label, overruns: n, why: err.message }, 'a compiled translation step kept overrunning its main-thread slice; it runs in the worker pool from now on');
    }
  }
}
