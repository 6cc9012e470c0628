// Plan files for the rollout tests.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PlanSpec {
  routers: string[];
  steps: number[];
  interval: string;
  prometheus?: string;
  scrape?: string[];
  failureLimit?: number;
  noData?: 'pause' | 'fail' | 'pass';
  greenSource: string;
  stateFile?: string;
  weightFile?: string;
  extraChecks?: string;
}

export function planYaml(p: PlanSpec): string {
  return [
    `routers: ${JSON.stringify(p.routers)}`,
    ...(p.weightFile ? [`weightFile: ${JSON.stringify(p.weightFile)}`] : []),
    `steps: ${JSON.stringify(p.steps)}`,
    `interval: ${p.interval}`,
    'analysis:',
    ...(p.prometheus ? [`  prometheus: ${p.prometheus}`] : []),
    ...(p.scrape ? [`  scrape: ${JSON.stringify(p.scrape)}`] : []),
    `  failureLimit: ${p.failureLimit ?? 0}`,
    `  noData: ${p.noData ?? 'pause'}`,
    '  checks:',
    '    - name: green-fallbacks',
    '      metric: dead-letter-ratio',
    `      sources: [${JSON.stringify(p.greenSource)}]`,
    '      max: 0.05',
    '    - name: green-latency',
    '      metric: delivery-p99',
    `      sources: [${JSON.stringify(p.greenSource)}]`,
    '      max: 2',
    ...(p.extraChecks ? [p.extraChecks] : []),
    ...(p.stateFile ? [`stateFile: ${JSON.stringify(p.stateFile)}`] : []),
    '',
  ].join('\n');
}

export function writePlan(p: PlanSpec, dir = mkdtempSync(join(tmpdir(), 'turnout-plan-'))): string {
  const file = join(dir, `plan-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(file, planYaml(p));
  return file;
}
