// `turnout rollout PLAN.yaml`: loads and validates the plan, picks up the
// state file, serves the HTTP API and runs the controller to its end.
// Exit codes (docs/reference.md, Exit codes): 0 promoted, 1 rolled back or aborted, 2 invalid
// plan; a controller stopped by SIGTERM/SIGINT leaves the weight as it is
// and exits 128 + the signal.

import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { scrubber } from '../../config/secrets.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { limitsOf, type HttpLimits } from '../http/limits.ts';
import { analysisFor } from './analysis.ts';
import { Controller, type Analysis, type RouterControl } from './controller.ts';
import { RolloutHttp } from './http.ts';
import { RolloutMetrics } from './metrics.ts';
import { parsePlan, PlanError, type Plan } from './plan.ts';
import { PrometheusProvider } from './prometheus.ts';
import { Routers } from './routers.ts';
import { loadState, saveState, writeAtomic } from './state.ts';
import { ENDED, type Phase } from './status.ts';
import { TerminalView } from './view.ts';

export const exitCodeOf = (phase: Phase): number => (phase === 'promoted' ? 0 : 1);

export interface RolloutRun {
  controller: Controller;
  port: number;
  /** Resolves with the phase the controller stopped in. */
  done: Promise<Phase>;
  close(): Promise<void>;
}

export interface StartOptions {
  plan: Plan;
  logger: Logger;
  adminToken: string | undefined;
  port: number;
  host: string;
  restart?: boolean;
  /** TURNOUT_HTTP_* (default: the schema's defaults). */
  limits?: HttpLimits;
  registry?: Registry;
  defaultMetrics?: boolean;
  /** Called after every status change (the terminal view). */
  onChange?: (c: Controller) => void;
  /** For tests and the demo: replace how routers are reached or checks judged. */
  routers?: RouterControl;
  analysis?: Analysis;
}

/** The state file to resume from, or the reason a rollout must not start. */
function resumable(plan: Plan, restart: boolean, logger: Logger): ReturnType<typeof loadState> {
  if (plan.stateFile === undefined) return undefined;
  const saved = loadState(plan.stateFile);
  if (saved === undefined) return undefined;
  if (restart) {
    logger.info({ event: 'restart', stateFile: plan.stateFile, was: saved.status.phase }, 'starting afresh (--restart): the saved state is discarded');
    return undefined;
  }
  if (saved.planDigest !== plan.digest) {
    logger.info({ event: 'new-plan', stateFile: plan.stateFile, was: saved.status.phase }, 'the state file belongs to another plan: starting afresh');
    return undefined;
  }
  return saved;
}

export async function startRollout(o: StartOptions): Promise<RolloutRun> {
  const { plan, logger } = o;
  const saved = resumable(plan, o.restart ?? false, logger);
  const registry = o.registry ?? new Registry();
  const metrics = new RolloutMetrics(registry, plan.analysis.checks.map((c) => c.name), { defaultMetrics: o.defaultMetrics ?? true });
  let controller: Controller | undefined;
  const deps = {
    plan,
    logger,
    routers: o.routers ?? new Routers({ urls: plan.routers, adminToken: o.adminToken }),
    analysis: o.analysis ?? analysisFor(plan),
    persist: (status: Controller['status'], manualPause: boolean): void => {
      if (plan.stateFile !== undefined) saveState(plan.stateFile, { format: 1, planDigest: plan.digest, manualPause, status });
      metrics.update(status);
      if (controller) o.onChange?.(controller);
    },
    onFailure: (checks: string[]): void => metrics.failed(checks),
    ...(plan.weightFile !== undefined ? { writeWeight: (w: number): void => writeAtomic(plan.weightFile as string, `${w}\n`) } : {}),
    ...(saved !== undefined ? { resume: { status: saved.status, manualPause: saved.manualPause } } : {}),
  };
  controller = new Controller(deps);
  metrics.update(controller.status);
  const c = controller;
  const http = new RolloutHttp({ status: () => c.status, command: (cmd) => c.command(cmd), registry, adminToken: o.adminToken, logger, limits: o.limits ?? limitsOf(loadConfig({}, {}).config) });
  const port = await http.listen(o.port, o.host);
  logger.info({ port, host: o.host }, 'HTTP listening');
  if (saved !== undefined && ENDED.has(saved.status.phase)) {
    logger.warn({ event: 'ended', phase: saved.status.phase, reason: saved.status.reason }, `this rollout already ended (${saved.status.phase}); it is not started again: use a new plan or --restart`);
  }
  const done = c.run();
  const close = async (): Promise<void> => {
    await http.close();
    metrics.stop();
  };
  return { controller: c, port, done, close };
}

/**
 * The first check whose PromQL query Prometheus refuses to parse, as a plan
 * error ("analysis.checks[i].query: …"), before any weight is set. A
 * Prometheus that cannot be asked now is no reason to refuse the plan: it is
 * logged, and the noData rules apply at each judged step.
 */
async function refusedQuery(plan: Plan, logger: Logger): Promise<string | undefined> {
  const base = plan.analysis.prometheus;
  if (base === undefined) return undefined;
  const prometheus = new PrometheusProvider(base);
  for (const [i, c] of plan.analysis.checks.entries()) {
    if (c.query === undefined) continue;
    const answer = await prometheus.check(c.query);
    if (answer.kind === 'rejected') return `analysis.checks[${i}].query: Prometheus rejects it: ${answer.error}`;
    if (answer.kind === 'unknown') {
      logger.warn({ event: 'query-unchecked', check: c.name, why: answer.why }, `check ${c.name}: its query could not be validated at start (${answer.why}); noData applies if it stays so`);
      return undefined;
    }
  }
  return undefined;
}

export interface CommandOptions {
  planFile: string;
  restart: boolean;
  /** Keep serving the status and metrics after the end (a Deployment), until SIGTERM. */
  keepServing: boolean;
  port: number;
  host: string;
  adminToken: string | undefined;
  logLevel: string;
  limits: HttpLimits;
}

export async function runRolloutCommand(o: CommandOptions): Promise<number> {
  let plan: Plan;
  try {
    plan = parsePlan(readFileSync(o.planFile, 'utf8'));
  } catch (err) {
    const what = err instanceof PlanError ? err.message : `cannot read: ${(err as Error).message}`;
    process.stderr.write(`turnout: invalid rollout plan ${o.planFile}: ${what}\n`);
    return 2;
  }
  const view = process.stderr.isTTY ? new TerminalView(process.stderr) : undefined;
  // pino needs only write() of its destination; the view's wrapper has just that.
  // The admin token never reaches a log line, as in the sidecar.
  const scrub = scrubber(o.adminToken !== undefined ? [o.adminToken] : []);
  const logger = createLogger(o.logLevel, view && process.stdout.isTTY ? (view.logDestination(process.stdout) as unknown as NodeJS.WritableStream) : undefined, scrub);
  const refused = await refusedQuery(plan, logger);
  if (refused !== undefined) {
    process.stderr.write(`turnout: invalid rollout plan ${o.planFile}: ${refused}\n`);
    return 2;
  }
  view?.start();
  const run = await startRollout({ plan, logger, adminToken: o.adminToken, port: o.port, host: o.host, restart: o.restart, limits: o.limits, ...(view ? { onChange: (c: Controller) => view.draw(c.status) } : {}) });
  let signal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signal !== undefined) return;
    signal = sig;
    logger.info({ event: 'signal', signal: sig, phase: run.controller.status.phase, weight: run.controller.status.weight }, `${sig}: stopping; the weight stays at ${run.controller.status.weight}%`);
    run.controller.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const phase = await run.done;
  if (signal === undefined && o.keepServing && ENDED.has(phase)) {
    logger.info({ event: 'serving', phase }, 'the rollout has ended; serving its status until SIGTERM');
    await new Promise<void>((resolve) => {
      const check = setInterval(() => signal !== undefined && (clearInterval(check), resolve()), 200);
    });
  }
  view?.stop();
  await run.close();
  if (signal !== undefined && !ENDED.has(phase)) return signal === 'SIGINT' ? 130 : 143;
  return exitCodeOf(phase);
}
