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
