// Shared by the rollout test files.

import assert from 'node:assert/strict';
import type { ControllerProcess } from '../../support/controller.ts';
import { ADMIN_TOKEN, type Fleet } from './fleet.ts';

export const TOKEN_ENV = { TURNOUT_ADMIN_TOKEN: ADMIN_TOKEN };
export const RATE = 60;
export const failing30 = (n: number): boolean => n % 10 < 3;

export const events = (c: ControllerProcess, name: string): Record<string, unknown>[] => c.logs().filter((l) => l.event === name);
/** The judgements (passed, failed, rolled back by a check) in a controller's log. */
export const judgements = (c: ControllerProcess): Record<string, unknown>[] =>
  c.logs().filter((l) => ['passed', 'failed', 'rolled-back'].includes(String(l.event)) && l.msg !== undefined && !/^rolled-back: .*by hand/.test(String(l.msg)));

export async function setWeights(fleet: Fleet, weight: number): Promise<void> {
  for (const u of fleet.routerUrls) {
    const res = await fetch(`${u}/v1/routes/green-weight`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ weight }) });
    assert.equal(res.status, 200);
  }
}

/** The controller's exit code; a controller still running after `ms` is killed and its output reported. */
export async function exitOf(c: ControllerProcess, ms = 120_000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const r = await Promise.race([c.exited, timeout]);
  clearTimeout(timer);
  if (r === 'timeout') {
    await c.kill('SIGKILL');
    const s = c.logs().slice(-15).map((l) => `${String(l.event)}: ${String(l.msg)}`).join('\n');
    throw new Error(`the controller did not end within ${ms} ms; its last log lines:\n${s}`);
  }
  return r;
}
