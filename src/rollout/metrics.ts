// The controller's metrics (turnout_rollout_*, in docs/reference.md), on a Registry the
// caller creates. Updated from the status after every transition.

import { Counter, Gauge, type Registry } from 'prom-client';
import { collectProcessMetrics, type ProcessMetrics } from '../process-metrics.ts';
import { PHASES, type Status } from './status.ts';

export const ROLLOUT_METRIC_NAMES = [
  'turnout_rollout_weight',
  'turnout_rollout_step',
  'turnout_rollout_phase',
  'turnout_rollout_check_value',
  'turnout_rollout_check_failures_total',
] as const;

export class RolloutMetrics {
  private readonly weight: Gauge;
  private readonly step: Gauge;
  private readonly phase: Gauge<'phase'>;
  private readonly checkValue: Gauge<'check'>;
  private readonly checkFailures: Counter<'check'>;
  /** The process and Node.js metrics (src/process-metrics.ts); undefined when left out. */
  private readonly process: ProcessMetrics | undefined;

  constructor(registry: Registry, checkNames: string[], options: { defaultMetrics?: boolean } = {}) {
    const registers = [registry];
    this.weight = new Gauge({ name: 'turnout_rollout_weight', help: 'Green weight the rollout has set on the routers (percent).', registers });
    this.step = new Gauge({ name: 'turnout_rollout_step', help: 'Current step of the rollout, 1-based.', registers });
    this.phase = new Gauge({ name: 'turnout_rollout_phase', help: '1 for the phase the rollout is in, 0 for the others.', labelNames: ['phase'], registers });
    this.checkValue = new Gauge({ name: 'turnout_rollout_check_value', help: "Each check's value at the last judgement (absent until it had data).", labelNames: ['check'], registers });
    this.checkFailures = new Counter({ name: 'turnout_rollout_check_failures_total', help: 'Failed judgements, by the check that failed.', labelNames: ['check'], registers });
    // Zero series from the start, so increase() and alerts see the first failure.
    for (const c of checkNames) this.checkFailures.labels(c).inc(0);
    this.process = options.defaultMetrics ?? true ? collectProcessMetrics(registry) : undefined;
  }

  /** Stops the GC observer; the registry still answers. */
  stop(): void {
    this.process?.stop();
  }

  update(s: Status): void {
    this.weight.set(s.weight);
    this.step.set(s.step);
    for (const p of PHASES) this.phase.labels(p).set(p === s.phase ? 1 : 0);
    for (const c of s.checks) if (c.value !== null) this.checkValue.labels(c.name).set(c.value);
  }

  failed(checks: string[]): void {
    for (const c of checks) this.checkFailures.labels(c).inc();
  }
}
