// The campaign's categories, shared by the fast subset (test/fuzz/*.test.ts)
// and the full campaign (bench/fuzz.bench.ts); runs = batches at FUZZ_SCALE 1.

import { foreignCase, ForeignProducer } from './foreign.ts';
import { publishGen } from './cases.ts';
import { amqpRig, memoryRig, type Rig } from './rig.ts';
import { campaign, foreignBatch, publishBatch } from './runner.ts';
import { wanted, type FuzzSettings } from './settings.ts';
import type { Stats } from './stats.ts';
import { AMQP_URL } from '../../integration/amqp/rabbit.ts';

export interface Plan {
  publishRuns: number;
  foreignRuns: number;
  batch: number;
}

export async function memorySuite(s: FuzzSettings, stats: Stats, plan: Plan, file: string): Promise<void> {
  if (!wanted(s, 'memory.publish')) return;
  const rig = await memoryRig();
  try {
    await campaign(s, 'memory.publish', file, publishGen, plan.publishRuns, plan.batch, (b) => publishBatch(rig, b, stats, 'memory.publish'), rig);
  } finally {
    await rig.close();
  }
}

export async function amqpSuite(s: FuzzSettings, stats: Stats, plan: Plan, file: string): Promise<void> {
  if (!wanted(s, 'amqp.publish') && !wanted(s, 'amqp.foreign')) return;
  const rig: Rig = await amqpRig();
  const producer = new ForeignProducer(AMQP_URL);
  try {
    if (wanted(s, 'amqp.publish')) await campaign(s, 'amqp.publish', file, publishGen, plan.publishRuns, plan.batch, (b) => publishBatch(rig, b, stats, 'amqp.publish'), rig);
    if (wanted(s, 'amqp.foreign')) await campaign(s, 'amqp.foreign', file, foreignCase, plan.foreignRuns, plan.batch, (b) => foreignBatch(rig, producer, b, stats, 'amqp.foreign'), rig);
  } finally {
    await producer.close();
    await rig.close();
  }
}
