// `turnout check`: what the app gets for each version, and whether every
// version the fleet produces reaches an accepted one.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import { decide } from './gate.ts';
import { loadTranslators } from './reload.ts';
import { FastTranslator } from './translate/fast.ts';
import { TranslationPool } from './translate/pool.ts';
import { TranslatorSet, type Chain } from './translators.ts';
import { parseVersion } from '../lib/version.ts';

export interface CheckOptions {
  sample?: string | undefined;
  versions?: string | undefined;
  warnings: string[];
  /** Where the report goes (stdout, through the CLI's secret masking). */
  out: { write(text: string): unknown };
}

export async function runCheck(config: Config, options: CheckOptions): Promise<number> {
  const { out } = options;
  const say = (line = ''): void => void out.write(`${line}\n`);
  const set = config.translators !== undefined ? loadTranslators(config.translators).set : TranslatorSet.empty;
  let sample: Buffer | undefined;
  if (options.sample !== undefined) {
    try {
      sample = readFileSync(options.sample);
    } catch (err) {
      throw new ConfigError(`--sample ${options.sample}: ${(err as Error).message}`, '--sample');
    }
  }
  let produced: number[];
  if (options.versions !== undefined) {
    produced = options.versions.split(',').map((s) => {
      const v = parseVersion(s);
      if (v === undefined) throw new ConfigError(`--versions: "${s.trim()}" is not a version`, '--versions');
      return v;
    });
  } else {
    const vs = new Set<number>([...set.versions(), config.defaultVersion, ...(config.accept ?? [])]);
    if (config.produceVersion !== undefined) vs.add(config.produceVersion);
    produced = [...vs];
  }
  produced.sort((a, b) => a - b);

  for (const w of options.warnings) say(`warning: ${w}`);
  say('configuration is valid');
  say(`broker: ${config.broker.kind}   sources: ${(config.source ?? []).join(', ') || '(none)'}   accept: ${config.accept === null ? 'all' : config.accept.join(', ')}`);
  say(`translators: ${config.translators ?? '(none)'}${set.steps.length ? ` — steps ${set.stepLabels().join(', ')}` : ''}`);
  for (const s of set.steps) {
    say(`  step ${s.from}->${s.to}: ${s.engine === 'compiled' ? 'compiled (runs in turnout\'s thread)' : `reference evaluator (worker pool): ${s.fallback ?? ''}`}`);
  }
  say();
  say('version  app gets');
  // The sample runs as messages do: compiled steps here, the rest in a worker, within TURNOUT_TRANSLATE_TIMEOUT.
  const pool = sample ? new TranslationPool({ timeoutMs: config.translateTimeout, maxBytes: config.maxMessageBytes }) : undefined;
  const fast = pool ? new FastTranslator(pool, { timeoutMs: config.translateTimeout, maxBytes: config.maxMessageBytes }) : undefined;
  try {
    return await printVersions(produced, { config, set, say, sample: sample && fast ? { bytes: sample, fast } : undefined });
  } finally {
    await pool?.close();
  }
}

interface VersionReport {
  config: Config;
  set: TranslatorSet;
  say: (line?: string) => void;
  sample: { bytes: Buffer; fast: FastTranslator } | undefined;
}

/** One line per produced version (and the sample's translation); 1 when one reaches no accepted version. */
async function printVersions(produced: number[], { config, set, say, sample }: VersionReport): Promise<number> {
  let unreachable = 0;
  for (const v of produced) {
    const d = decide({ [config.versionHeader]: String(v) }, config, set);
    let line: string;
    let chain: Chain | undefined;
    switch (d.kind) {
      case 'pass':
        line = 'pass';
        break;
      case 'translate':
        chain = d.chain;
        line = `translate via ${d.chain.label} (delivered as v${d.chain.to})`;
        break;
      case 'defer':
        unreachable++;
        line = `defer — no chain reaches an accepted version; after ${config.maxDeferrals} deferrals: dead-letter (unsupported-version)`;
        break;
      case 'invalid':
        line = 'invalid';
        break;
    }
    say(`v${String(v).padEnd(7)} ${line}`);
    if (chain && sample) {
      try {
        const result = await sample.fast.translate(chain, sample.bytes);
        say(`         sample → ${result.toString('utf8')}`);
      } catch (err) {
        say(`         sample → ERROR: ${(err as Error).message}`);
      }
    }
  }
  if (unreachable > 0) {
    say();
    say(`${unreachable} produced version(s) reach no accepted version: add translation steps or widen TURNOUT_ACCEPT`);
    return 1;
  }
  return 0;
}
