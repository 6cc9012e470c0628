// The rollout state machine. Each step: set the weight on every router and
// confirm it (holding, with backoff, while one does not), open a measuring
// window, wait the interval, check the routers still agree, judge every
// check, then go on, stay (a tolerated failure), pause (no data) or roll
// back. Commands (pause, resume, promote, abort) interrupt any wait.
//
// The order of writes is what makes restarts safe: the state file names the
// step before its weight is set, and a step's index moves on only after it
// was judged, so a restarted controller re-applies and re-judges the step it
// was in and never raises the weight past an unjudged step.

import { backoffDelay } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import { describeBound, round, verdict, type Measurement } from './judge.ts';
import type { Check, Plan } from './plan.ts';
import type { Window } from './prometheus.ts';
import type { RouterState } from './routers.ts';
import { ENDED, type CheckStatus, type Phase, type Status } from './status.ts';

export interface RouterControl {
  set(weight: number): Promise<RouterState[]>;
  confirm(weight: number): Promise<RouterState[]>;
}

export interface Analysis {
  open(): Promise<Window>;
}

export type Command = 'pause' | 'resume' | 'promote' | 'abort';

export interface ControllerDeps {
  plan: Plan;
  routers: RouterControl;
  analysis: Analysis;
  logger: Logger;
  /** Called after every change of the status (state file, metrics, view). */
  persist: (status: Status, manualPause: boolean) => void;
  /** Writes the weight file, when the plan has one. */
  writeWeight?: (weight: number) => void;
  /** A saved state of this plan to resume from. */
  resume?: { status: Status; manualPause: boolean };
  /** Called with the names of the checks of a failed judgement (the failure counters). */
  onFailure?: (checks: string[]) => void;
  /** Backoff between router retries (ms): base and cap. */
  holdBackoff?: { baseMs: number; capMs: number };
}

const FOREVER = 2 ** 31 - 1;

export class Controller {
  readonly status: Status;
  private readonly d: ControllerDeps;
  private manualPause = false;
  private pending: 'promote' | 'abort' | undefined;
  private stopping = false;
  private waker: (() => void) | undefined;

  constructor(deps: ControllerDeps) {
    this.d = deps;
    const { plan } = deps;
    if (deps.resume !== undefined) {
      this.status = deps.resume.status;
      this.manualPause = deps.resume.manualPause;
    } else {
      this.status = {
        phase: 'progressing',
        step: 1,
        steps: plan.steps,
        weight: 0,
        failures: 0,
        failureLimit: plan.analysis.failureLimit,
        checks: plan.analysis.checks.map(pendingCheck),
        routers: [],
        history: [],
      };
    }
  }

  get ended(): boolean {
    return ENDED.has(this.status.phase);
  }

  /** Runs until the rollout ends (its phase) or stop() is called (the phase it was in). */
  async run(): Promise<Phase> {
    const s = this.status;
    if (this.d.resume !== undefined && !this.ended) this.transition('resumed', `resumed at step ${s.step} (${this.stepWeight()}%), judged afresh`);
    else if (this.d.resume === undefined) this.transition('started', `rollout of ${this.d.plan.steps.join(' → ')} started`);
    while (!this.stopping && !this.ended) {
      const pending = this.pending;
      this.pending = undefined;
      if (pending === 'promote') {
        await this.finish('promoted', 100, 'promoted by hand: weight 100 with no more analysis');
        continue;
      }
      if (pending === 'abort') {
        await this.finish('aborted', 0, 'aborted by hand: weight 0');
        continue;
      }
      if (s.phase === 'paused' && this.manualPause) {
        await this.wait(FOREVER);
        continue;
      }
      await this.runStep();
    }
    return s.phase;
  }

  /** SIGTERM: stop where it is, leaving the weight as it is. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  /** A command from the HTTP API; returns the HTTP status and a message. */
  command(cmd: Command): { status: number; message: string } {
    const s = this.status;
    if (this.ended) return { status: 409, message: `the rollout has ended (${s.phase})` };
    switch (cmd) {
      case 'pause':
        this.manualPause = true;
        if (s.phase !== 'paused') {
          s.phase = 'paused';
          s.reason = 'paused by hand';
          this.transition('paused', 'paused by hand: the weight stays');
        }
        break;
      case 'resume':
        if (s.phase !== 'paused') return { status: 409, message: `not paused (${s.phase})` };
        this.manualPause = false;
        s.phase = 'progressing';
        delete s.reason;
        this.transition('resumed', `resumed by hand at step ${s.step}; it is judged afresh`);
        break;
      case 'promote':
      case 'abort':
        this.pending = cmd;
        break;
    }
    this.wake();
    return { status: 202, message: `${cmd} accepted` };
  }

  private stepWeight(): number {
    return this.d.plan.steps[this.status.step - 1] as number;
  }

  private async runStep(): Promise<void> {
    const s = this.status;
    const weight = this.stepWeight();
    if (!(await this.apply(weight, true))) return;
    const window = await this.d.analysis.open();
    s.judgeAt = new Date(Date.now() + this.d.plan.intervalMs).toISOString();
    this.transition('step', `step ${s.step}/${s.steps.length}: weight ${weight}% on every router; judged in ${this.d.plan.intervalMs} ms`);
    if (!(await this.wait(this.d.plan.intervalMs))) {
      delete s.judgeAt;
      return; // a command or stop: the step is judged afresh when it runs again
    }
    delete s.judgeAt;
    const confirmed = await this.d.routers.confirm(weight);
    const drift = confirmed.filter((r) => !r.ok);
    if (drift.length > 0) {
      s.routers = confirmed;
      this.transition('router-drift', `a router no longer routes at ${weight}% (${drift.map((r) => `${r.url}: ${r.error}`).join('; ')}); the step is set again and judged afresh`, 'warn');
      return;
    }
    const measured = await window.measure(this.d.plan.analysis.checks);
    if (this.stopping || this.pending !== undefined || this.manualPause) return;
    await this.judge(measured);
  }

  private async judge(measured: Measurement[]): Promise<void> {
    const s = this.status;
    const { checks, noData, failureLimit } = this.d.plan.analysis;
    s.checks = checks.map((c, i) => checkStatus(c, measured[i] as Measurement));
    const failed = s.checks.filter((c) => c.result === 'fail');
    const missing = s.checks.filter((c) => c.result === 'no-data');
    const noDataText = missing.map((c) => `${c.name}: ${c.reason ?? 'no data'}`).join('; ');
    if (missing.length > 0 && noData === 'pause' && failed.length === 0) {
      const first = s.phase !== 'paused';
      s.phase = 'paused';
      s.reason = `no data: ${noDataText}`;
      this.transition(first ? 'paused' : 'still-no-data', `step ${s.step} (${this.stepWeight()}%) not judged, holding: ${s.reason}`, 'warn');
      return;
    }
    const failing = [...failed, ...(noData === 'fail' ? missing : [])];
    if (failing.length > 0) {
      s.failures++;
      const first = failing[0] as CheckStatus;
      const why = failing.map((c) => (c.result === 'fail' ? `${c.name} ${describeBound(c2b(c), c.value as number)}` : `${c.name} no data (${c.reason ?? ''})`)).join('; ');
      this.d.onFailure?.(failing.map((c) => c.name));
      if (s.failures > failureLimit) {
        s.failedCheck = first;
        await this.finish('rolled-back', 0, `check ${why}; ${s.failures} failed judgement(s) > failureLimit ${failureLimit}`);
        return;
      }
      if (s.phase === 'paused') s.phase = 'progressing';
      this.transition('failed', `step ${s.step} failed (${why}); ${s.failures} of ${failureLimit} tolerated failures used; judged again at ${this.stepWeight()}%`, 'warn');
      return;
    }
    if (s.phase === 'paused') {
      s.phase = 'progressing';
      delete s.reason;
    }
    const values = s.checks.map((c) => `${c.name}=${c.value ?? 'no data'}`).join(', ');
    this.transition('passed', `step ${s.step} (${this.stepWeight()}%) passed${values ? `: ${values}` : ''}`);
    if (s.step === s.steps.length) {
      await this.finish('promoted', 100, 'every step passed');
      return;
    }
    s.step++;
    this.persist();
  }

  /** Sets the final phase and weight; the weight is retried on every router until each confirms it. */
  private async finish(phase: 'promoted' | 'rolled-back' | 'aborted', weight: number, reason: string): Promise<void> {
    const s = this.status;
    s.phase = phase;
    s.reason = reason;
    s.weight = weight;
    this.transition(phase, `${phase}: ${reason}; weight ${weight}% on every router`, phase === 'promoted' ? 'info' : 'warn');
    await this.apply(weight, false);
    this.transition(`${phase}-confirmed`, `every router confirmed weight ${weight}%`);
  }

  /**
   * Sets `weight` on every router and waits until all confirm it. Returns
   * false when interrupted (a command, or stop) before they did.
   */
  private async apply(weight: number, interruptible: boolean): Promise<boolean> {
    const s = this.status;
    s.weight = weight;
    try {
      this.d.writeWeight?.(weight);
    } catch (err) {
      this.d.logger.error({ err, event: 'weight-file' }, `could not write the weight file: ${(err as Error).message}`);
    }
    const { baseMs, capMs } = this.d.holdBackoff ?? { baseMs: 250, capMs: 5000 };
    for (let attempt = 1; ; attempt++) {
      if (this.stopping) return false;
      if (interruptible && (this.pending !== undefined || this.manualPause)) return false;
      const results = await this.d.routers.set(weight);
      s.routers = results;
      const bad = results.filter((r) => !r.ok);
      if (bad.length === 0) {
        if (s.held !== undefined) {
          delete s.held;
          this.transition('routers-confirmed', `every router confirmed ${weight}%; the rollout goes on`);
        } else this.persist();
        return true;
      }
      s.held = bad.map((r) => `${r.url}: ${r.error ?? 'not confirmed'}`).join('; ');
      const delay = backoffDelay(attempt, baseMs, Math.random, capMs);
      this.d.logger.warn({ event: 'hold', step: s.step, weight, routers: bad, retryInMs: delay }, `rollout held: ${bad.length} of ${results.length} router(s) did not confirm ${weight}% (${s.held}); retrying`);
      this.persist();
      await this.wait(delay);
    }
  }

  private transition(event: string, detail: string, level: 'info' | 'warn' = 'info'): void {
    const s = this.status;
    s.history.push({ at: new Date().toISOString(), event, step: s.step, weight: s.weight, detail });
    // The history is for people; keep the last entries only so the state file stays small.
    if (s.history.length > 500) s.history.splice(0, s.history.length - 500);
    this.d.logger[level]({ event, phase: s.phase, step: s.step, weight: s.weight, failures: s.failures, checks: s.checks }, detail);
    this.persist();
  }

  private persist(): void {
    this.d.persist(this.status, this.manualPause);
  }

  /** Resolves true after `ms`, or false as soon as a command or stop() wakes it. */
  private wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waker = undefined;
        resolve(true);
      }, Math.min(ms, FOREVER));
      this.waker = () => {
        clearTimeout(timer);
        this.waker = undefined;
        resolve(false);
      };
    });
  }

  private wake(): void {
    this.waker?.();
  }
}

const c2b = (c: CheckStatus): { min?: number; max?: number } => ({ ...(c.min !== null ? { min: c.min } : {}), ...(c.max !== null ? { max: c.max } : {}) });

function pendingCheck(c: Check): CheckStatus {
  return { name: c.name, value: null, min: c.min ?? null, max: c.max ?? null, result: 'pending' };
}

function checkStatus(c: Check, m: Measurement): CheckStatus {
  const out = pendingCheck(c);
  out.result = verdict(c, m);
  if ('value' in m && !Number.isNaN(m.value)) out.value = round(m.value);
  else if ('noData' in m) out.reason = m.noData;
  return out;
}
