// Translation steps: a YAML/JSON file mapping "from->to" to a JSONata
// expression. Steps are compiled once at load (which validates them); chains
// (1->2->3, 3->2->1) are composed from them by shortest path and cached per
// loaded set. Messages are translated in worker threads (translate/pool.ts),
// which compile the same texts again; translate() here runs a chain in the
// calling thread, without a time limit (tests, benchmarks). Each step is
// also compiled for the fast path (translate/compile.ts) when its whole
// expression is in the compiled subset: `engine` says which runs it.

import { readFileSync } from 'node:fs';
import jsonata from 'jsonata';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../lib/log.ts';
import { compileExpression, type CompiledExpression } from './translate/compile.ts';

export interface Step {
  from: number;
  to: number;
  /** The expression text, for `turnout check`. */
  text: string;
  expression: jsonata.Expression;
  /**
   * Which evaluator runs the step: 'compiled' (synchronous JavaScript in
   * turnout's main thread, translate/fast.ts) or 'reference' (jsonata's
   * evaluator in the worker pool). Shown by `turnout check` and logged at load.
   */
  engine: 'compiled' | 'reference';
  /** The compiled form, when engine is 'compiled'. */
  compiled?: CompiledExpression | undefined;
  /** Why the step is not compiled: the first construct outside the subset. */
  fallback?: string | undefined;
}

export interface Chain {
  from: number;
  to: number;
  steps: Step[];
  /** e.g. "3->2->1" */
  label: string;
}

/** The file is unusable: names the file and, where it is one step's fault, the step. */
export class TranslatorFileError extends Error {
  readonly file: string;
  readonly step: string | undefined;
  constructor(file: string, step: string | undefined, why: string) {
    super(`translators file ${file}${step !== undefined ? `: step "${step}"` : ''}: ${why}`);
    this.name = 'TranslatorFileError';
    this.file = file;
    this.step = step;
  }
}

// Evaluation lives in translate/evaluate.ts (the worker threads load it without YAML);
// these names stay importable from here.
export { TranslateError, translate, type TranslateFailure } from './translate/evaluate.ts';

const STEP_KEY = /^\s*[vV]?(\d{1,9})\s*->\s*[vV]?(\d{1,9})\s*$/;

export class TranslatorSet {
  readonly steps: readonly Step[];
  private readonly edges = new Map<number, Step[]>();
  private readonly cache = new Map<string, Chain | null>();
  /**
   * The same answers by the accept list's identity (the config's one array),
   * so a translated message costs no cache-key string; equal lists still
   * share their chains through `cache`.
   */
  private readonly byAccept = new WeakMap<readonly number[], Map<number, Chain | null>>();

  constructor(steps: Step[]) {
    this.steps = steps;
    for (const s of steps) {
      const out = this.edges.get(s.from) ?? [];
      out.push(s);
      this.edges.set(s.from, out);
    }
  }

  static readonly empty = new TranslatorSet([]);

  /** The steps as "from->to", for logs and `turnout check`. */
  stepLabels(): string[] {
    return this.steps.map((s) => `${s.from}->${s.to}`);
  }

  /** "1->2 (compiled)" per step, for `turnout check`. */
  stepEngines(): string[] {
    return this.steps.map((s) => `${s.from}->${s.to} (${s.engine})`);
  }

  /** Every version a step starts or ends at. */
  versions(): number[] {
    const vs = new Set<number>();
    for (const s of this.steps) vs.add(s.from).add(s.to);
    return [...vs].sort((a, b) => a - b);
  }

  /**
   * The shortest chain from `from` to the nearest accepted version (ties: the
   * higher version), or null when none is reachable.
   */
  chainFor(from: number, accept: readonly number[]): Chain | null {
    let known = this.byAccept.get(accept);
    const quick = known?.get(from);
    if (quick !== undefined) return quick;
    const chain = this.chainByKey(from, accept);
    if (known === undefined) this.byAccept.set(accept, (known = new Map()));
    // Only for accept lists that do not change afterwards: the config's are frozen in practice, a caller's copy is fresh.
    known.set(from, chain);
    return chain;
  }

  private chainByKey(from: number, accept: readonly number[]): Chain | null {
    const cacheKey = `${from}:${accept.join(',')}`;
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const chain = this.search(from, new Set(accept));
    this.cache.set(cacheKey, chain);
    return chain;
  }

  private search(from: number, accept: Set<number>): Chain | null {
    // Breadth-first: all versions at distance d are found before d+1, so the
    // first level that contains accepted versions holds the nearest ones.
    const via = new Map<number, Step | null>([[from, null]]);
    let frontier = [from];
    while (frontier.length > 0) {
      const next: number[] = [];
      for (const v of frontier) {
        for (const step of this.edges.get(v) ?? []) {
          if (via.has(step.to)) continue;
          via.set(step.to, step);
          next.push(step.to);
        }
      }
      const hits = next.filter((v) => accept.has(v));
      if (hits.length > 0) {
        const to = Math.max(...hits);
        const steps: Step[] = [];
        for (let v = to; v !== from; ) {
          const s = via.get(v) as Step;
          steps.unshift(s);
          v = s.from;
        }
        return { from, to, steps, label: [from, ...steps.map((s) => s.to)].join('->') };
      }
      frontier = next;
    }
    return null;
  }
}

/** Parses and compiles a translators file; throws TranslatorFileError naming the step at fault. */
export function parseTranslators(text: string, file: string): TranslatorSet {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new TranslatorFileError(file, undefined, `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return TranslatorSet.empty;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TranslatorFileError(file, undefined, 'must be a mapping of "from->to" steps to JSONata expressions, e.g. "1->2": \'$merge([$, {"v": 2}])\'');
  }
  const steps: Step[] = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const m = STEP_KEY.exec(key);
    if (!m) throw new TranslatorFileError(file, key, 'a step is named "FROM->TO" with positive whole versions, e.g. "1->2"');
    const from = Number(m[1]);
    const to = Number(m[2]);
    if (from < 1 || to < 1) throw new TranslatorFileError(file, key, 'versions are positive whole numbers');
    if (from === to) throw new TranslatorFileError(file, key, 'a step must change the version');
    const id = `${from}->${to}`;
    if (seen.has(id)) throw new TranslatorFileError(file, key, `step ${id} is defined twice`);
    seen.add(id);
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TranslatorFileError(file, key, 'the step must be a JSONata expression (a string)');
    }
    let expression: jsonata.Expression;
    try {
      expression = jsonata(value);
    } catch (err) {
      const e = err as { message?: string; position?: number };
      throw new TranslatorFileError(file, key, `JSONata does not compile: ${e.message ?? String(err)}${e.position !== undefined ? ` (at character ${e.position})` : ''}`);
    }
    const c = compileExpression(value);
    steps.push(c.ok
      ? { from, to, text: value, expression, engine: 'compiled', compiled: c.run }
      : { from, to, text: value, expression, engine: 'reference', fallback: c.why });
  }
  return new TranslatorSet(steps);
}

/** Reads and compiles a translators file; also returns the text it compiled (the baseline for reload). */
export function readTranslatorsFile(file: string): { set: TranslatorSet; text: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TranslatorFileError(file, undefined, `cannot be read: ${(err as Error).message}`);
  }
  return { set: parseTranslators(text, file), text };
}

export function loadTranslatorsFile(file: string): TranslatorSet {
  return readTranslatorsFile(file).set;
}

/** Logs, once per load or reload, which steps run compiled and why the others fall back to the reference evaluator. */
export function logEngines(set: TranslatorSet, logger: Logger): void {
  if (set.steps.length === 0) return;
  const compiled = set.steps.filter((s) => s.engine === 'compiled').map((s) => `${s.from}->${s.to}`);
  logger.info({ compiled, reference: set.steps.filter((s) => s.engine === 'reference').map((s) => `${s.from}->${s.to}`) }, 'translation steps loaded');
  for (const s of set.steps) {
    if (s.engine === 'reference') logger.info({ step: `${s.from}->${s.to}`, why: s.fallback }, 'translation step runs on the reference evaluator (worker pool), not compiled');
  }
}
