// Translators files: generated steps of known behaviour (fine, throwing,
// endlessly recursing, stack-overflowing, huge ranges, syntax errors, bad step
// names, values that are no expressions, YAML that is no YAML). At start an
// invalid file is exit 2 naming the file and the step; on hot reload an
// invalid file leaves the previous set active, and a v2 message then meets
// whichever 2->1 step is live.

import { spawn } from 'node:child_process';
import fc from 'fast-check';
import jsonata from 'jsonata';
import { parse as parseYaml } from 'yaml';
import { CLI } from '../../support/process.ts';

export type StepKind = 'fine' | 'throws' | 'recurses' | 'overflows' | 'range' | 'huge-range' | 'syntax' | 'not-a-string';

/** What a v2 message meets through a 2->1 step of this kind (TURNOUT_TRANSLATE_TIMEOUT bounds the slow ones). */
export const STEP_OUTCOME: Record<StepKind, 'delivered' | 'translate-error' | 'translate-error or too-large'> = {
  fine: 'delivered',
  throws: 'translate-error',
  recurses: 'translate-error', // an endless tail call: only the budget stops it ("timed out")
  overflows: 'translate-error', // a non-tail recursion: JSONata's stack limit
  range: 'translate-error or too-large', // 10 million numbers: the budget or the size limit
  'huge-range': 'translate-error', // past JSONata's range limit
  syntax: 'translate-error',
  'not-a-string': 'translate-error',
};

const TEXT: Record<Exclude<StepKind, 'syntax' | 'not-a-string'>, fc.Arbitrary<string>> = {
  fine: fc.nat({ max: 999 }).map((n) => `$merge([$, {"email": contact.email, "fuzz": ${n}}])`),
  throws: fc.constantFrom('$error("fuzz: refuses")', '$number("not a number")', '$sum("x")'),
  recurses: fc.constant('($f := function($n){ $f($n+1) }; $f(0))'),
  overflows: fc.constant('($f := function($n){ 1 + $f($n+1) }; $f(0))'),
  range: fc.constantFrom('[1..10000000]', '$count([1..10000000])', '$string([1..10000000])'),
  'huge-range': fc.constant('[1..100000000000]'),
};

export interface StepSpec {
  key: string;
  kind: StepKind;
  value: string | number | string[];
}

const validKeys = fc.oneof({ weight: 3, arbitrary: fc.constant('2->1') }, { weight: 2, arbitrary: fc.constantFrom('3->1', '1->2', 'v4->v1', ' 5 -> 1 ', 'v2->V1') });
const badKeys = fc.constantFrom('1-2', '0->1', '2->2', 'a->b', '1->', '10000000000->1', '', '->', '１->２');

export const step: fc.Arbitrary<StepSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(validKeys, fc.constantFrom<keyof typeof TEXT>('fine', 'fine', 'throws', 'recurses', 'overflows', 'range', 'huge-range')).chain(([key, kind]) => TEXT[kind].map((value) => ({ key, kind: kind as StepKind, value }))) },
  { weight: 1, arbitrary: fc.tuple(validKeys, fc.oneof(fc.constantFrom('$merge([', '(((', '"open', '$f := function(', '}{', '[1..', 'a.b.', '$$$$$', '/regex'), fc.string({ maxLength: 12 }))).map(([key, value]) => ({ key, kind: 'syntax' as const, value })) },
  { weight: 1, arbitrary: fc.tuple(validKeys, fc.constantFrom<number | string[] | string>(42, ['a'], '', '   ')).map(([key, value]) => ({ key, kind: 'not-a-string' as const, value })) },
  { weight: 1, arbitrary: fc.tuple(badKeys, TEXT.fine).map(([key, value]) => ({ key, kind: 'fine' as const, value })) },
);

export interface FileSpec {
  steps: StepSpec[];
  /** Replaces the whole text with something that is no YAML mapping. */
  garbage: string | undefined;
}

export const translatorsFile: fc.Arbitrary<FileSpec> = fc.record({
  // Distinct keys: a repeated key is YAML's error (one of the garbage files has it).
  steps: fc.uniqueArray(step, { minLength: 1, maxLength: 4, selector: (x) => x.key }),
  garbage: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('"2->1": \'$merge([\'\n', ': : :\n', '"2->1": [unclosed\n', '- a list\n- of steps\n', '\t"2->1": "x"\n', '"2->1": "$"\n"2->1": "$"\n') }),
});

export function fileText(f: FileSpec): string {
  if (f.garbage !== undefined) return f.garbage;
  return f.steps.map((s) => `${JSON.stringify(s.key)}: ${JSON.stringify(s.value)}`).join('\n') + '\n';
}

const STEP_KEY = /^\s*[vV]?(\d{1,9})\s*->\s*[vV]?(\d{1,9})\s*$/;

/** Whether turnout must take the file, and if not which step it must name (undefined: the file as a whole). */
export function judge(text: string): { valid: true; steps: Map<string, string> } | { valid: false; step: string | undefined } {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return { valid: false, step: undefined };
  }
  if (doc === null || doc === undefined) return { valid: true, steps: new Map() };
  if (typeof doc !== 'object' || Array.isArray(doc)) return { valid: false, step: undefined };
  const steps = new Map<string, string>();
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const m = STEP_KEY.exec(key);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) === Number(m[2])) return { valid: false, step: key };
    const id = `${Number(m[1])}->${Number(m[2])}`;
    if (steps.has(id)) return { valid: false, step: key };
    if (typeof value !== 'string' || value.trim() === '') return { valid: false, step: key };
    try {
      jsonata(value);
    } catch {
      return { valid: false, step: key };
    }
    steps.set(id, value);
  }
  return { valid: true, steps };
}

/** `turnout run` with this translators file: 'started' once it listens, or its exit code and output. */
export function startWith(file: string, timeoutMs = 20_000): Promise<{ started: true } | { started: false; code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TURNOUT_') && v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [CLI, 'run'], { env: { ...env, TURNOUT_TRANSLATORS: file, TURNOUT_PORT: '0', TURNOUT_HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      if (!done) reject(new Error(`turnout neither started nor exited within ${timeoutMs} ms:\n${out}`));
      done = true;
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (!done && out.includes('"HTTP listening"')) {
        done = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve({ started: true });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!done) resolve({ started: false, code, output: out });
      done = true;
    });
  });
}

/** The end a v2 message must reach under this live set: where, and for a fine step the marker it carries. */
export function v2Outcome(live: Map<string, string>, specs: StepSpec[]): { place: string[]; fuzz?: number } {
  const text = live.get('2->1');
  if (text === undefined) return { place: ['unsupported-version'] };
  const spec = specs.find((s) => s.value === text);
  if (spec === undefined || spec.kind === 'syntax') return { place: ['delivered', 'translate-error'] };
  const o = STEP_OUTCOME[spec.kind];
  if (o === 'delivered') return { place: ['delivered'], fuzz: Number(/"fuzz": (\d+)/.exec(text)?.[1]) };
  return { place: o === 'translate-error' ? ['translate-error'] : ['translate-error', 'too-large'] };
}
