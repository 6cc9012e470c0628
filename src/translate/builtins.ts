// jsonata's own function objects ($string, $merge, …), taken from jsonata
// itself once at module load, for the compiled fast path (compile.ts). The
// compiled code calls their implementations and their signature validators
// directly, so that number formatting, type checks, singleton handling and
// error codes are jsonata's by construction, not a re-implementation. The
// few that jsonata writes as async functions (they call back into lambdas:
// $map, $filter, $sift, $each) get synchronous equivalents in compile.ts.

import jsonata from 'jsonata';

/** A jsonata native function as its evaluator holds it. */
export interface Native {
  _jsonata_function: true;
  /** Takes jsonata values of any type (the signature validator checks them); `this` is jsonata's focus. */
  implementation: (this: unknown, ...args: unknown[]) => unknown;
  signature?: { validate(args: unknown[], context: unknown): unknown[] };
}

/** Natives the compiled path runs synchronously as jsonata defines them (none of them calls a function argument). */
export const SYNC_NATIVES = [
  'string', 'number', 'boolean', 'not', 'exists', 'uppercase', 'lowercase', 'length', 'trim',
  'substring', 'substringBefore', 'substringAfter', 'join', 'keys', 'count', 'sum', 'max', 'min',
  'average', 'append', 'merge', 'lookup', 'type', 'reverse', 'abs', 'floor', 'ceil',
  'round', 'power', 'sqrt', 'spread', 'pad', 'formatBase', 'error', 'assert',
] as const;

/** Natives jsonata writes as async higher-order functions; compile.ts runs its own synchronous versions. */
export const HOF_NATIVES = ['map', 'filter', 'sift', 'each'] as const;

/**
 * Every function jsonata binds by name (2.x): a reference to one outside
 * the two lists above keeps a step on the reference evaluator, even where
 * the expression rebinds the name (the rebinding may come after a use).
 */
export const ALL_JSONATA_FUNCTIONS = new Set([
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter', 'lowercase',
  'uppercase', 'length', 'trim', 'pad', 'match', 'contains', 'replace', 'split', 'join', 'formatNumber', 'formatBase',
  'formatInteger', 'parseInteger', 'number', 'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'random', 'boolean',
  'not', 'map', 'zip', 'filter', 'single', 'reduce', 'sift', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge',
  'reverse', 'each', 'error', 'assert', 'type', 'sort', 'shuffle', 'distinct', 'base64encode', 'base64decode',
  'encodeUrlComponent', 'encodeUrl', 'decodeUrlComponent', 'decodeUrl', 'eval', 'toMillis', 'fromMillis', 'clone',
  'now', 'millis',
]);

const names = [...SYNC_NATIVES, ...HOF_NATIVES];
// One evaluation of an object constructor whose values are the natives themselves.
const table = (await jsonata(`{${names.map((n) => `"${n}": $${n}`).join(', ')}}`).evaluate({})) as Record<string, Native>;

/** The natives by name (without the $). */
export const NATIVES: ReadonlyMap<string, Native> = new Map(names.map((n) => {
  const f = table[n];
  if (f === undefined || f._jsonata_function !== true) throw new Error(`jsonata has no $${n}: the compiled translation path needs it`);
  return [n, f];
}));

/** jsonata's $boolean, $string, lookup and append, used by the compiled operators as jsonata's evaluator uses them. */
export function native(name: (typeof SYNC_NATIVES)[number]): Native {
  return NATIVES.get(name) as Native;
}
