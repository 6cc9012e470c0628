// What GET /v1/rollout answers, what the state file keeps, and what the
// metrics and the terminal view show.

import type { Verdict } from './judge.ts';
import type { RouterState } from './routers.ts';

export const PHASES = ['progressing', 'paused', 'promoted', 'rolled-back', 'aborted'] as const;
export type Phase = (typeof PHASES)[number];
export const ENDED: ReadonlySet<Phase> = new Set(['promoted', 'rolled-back', 'aborted']);

export interface CheckStatus {
  name: string;
  value: number | null;
  min: number | null;
  max: number | null;
  result: Verdict | 'pending';
  /** Why there is no value, when result is no-data. */
  reason?: string;
}

export interface HistoryEntry {
  at: string;
  event: string;
  /** 1-based step number. */
  step: number;
  weight: number;
  detail?: string;
}

export interface Status {
  phase: Phase;
  /** 1-based number of the current step. */
  step: number;
  steps: number[];
  /** The weight set (or being set) on the routers. */
  weight: number;
  failures: number;
  failureLimit: number;
  /** Why the rollout is paused, rolled back, aborted or promoted. */
  reason?: string;
  /** The check that rolled the rollout back. */
  failedCheck?: CheckStatus;
  checks: CheckStatus[];
  routers: RouterState[];
  /** Set while some router does not confirm the weight: the rollout holds. */
  held?: string;
  /** When the running step will be judged (ISO). */
  judgeAt?: string;
  history: HistoryEntry[];
}
