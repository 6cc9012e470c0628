// The compiled fast path (issue 14): a translation step's JSONata AST (from
// jsonata's own parser) turned into a tree of synchronous closures at load
// time. Each closure does what jsonata 2.x's evaluator does for that node —
// the same sequences and singleton flattening, the same undefined-versus-null
// rules, jsonata's own natives and signature validators (builtins.ts) — but
// without awaiting at every node. A step whose AST holds anything outside
// the subset is not compiled (compileStep says which construct) and runs on
// the reference evaluator in the worker pool.
//
// Compiled code runs in turnout's main thread, so every loop ticks a Guard
// (time slice, depth, sizes); hitting a limit throws Overrun and the caller
// hands the step to the pool, which gives the verdict. Errors are jsonata's
// error objects ({code: "T2001", …}), as the reference evaluator throws them.

import jsonata from 'jsonata';
import { ALL_JSONATA_FUNCTIONS, HOF_NATIVES, NATIVES, native, type Native } from './builtins.ts';

/** The compiled path gives no answer for this input: the reference evaluator decides (fast.ts hands it over). */
export class HandOver extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'HandOver';
  }
}

/** A step left the compiled path's bounds (time slice, depth, size): handed over, and counted towards demotion. */
export class Overrun extends HandOver {
  constructor(why: string) {
    super(why);
    this.name = 'Overrun';
  }
}

const CHECK_EVERY = 1000;

/** The bounds of one compiled run: a deadline (checked every 1 000 operations), a depth and size caps. */
export class Guard {
  private ops = 0;
  private nextCheck = CHECK_EVERY;
  depth = 0;
  private readonly deadline: number;
  /** Longest array or sequence built (the worker's JSONata `sequence` option is the same figure). */
  readonly maxItems: number;
  /** Longest string built, in UTF-16 units. */
  readonly maxString: number;
  readonly maxDepth: number;
  constructor(deadline: number, maxItems: number, maxString: number, maxDepth = 1500) {
    this.deadline = deadline;
    this.maxItems = maxItems;
    this.maxString = maxString;
    this.maxDepth = maxDepth;
  }

  tick(n = 1): void {
    this.ops += n;
    if (this.ops < this.nextCheck) return;
    this.nextCheck = this.ops + CHECK_EVERY;
    if (performance.now() > this.deadline) throw new Overrun('the main-thread time slice ran out');
  }

  /** Throws Overrun when a built value is past the caps; returns it. */
  size<T>(v: T): T {
    if (typeof v === 'string') {
      if (v.length > this.maxString) throw new Overrun(`a string of ${v.length} characters`);
    } else if (Array.isArray(v) && v.length > this.maxItems) {
      throw new Overrun(`a sequence of ${v.length} items`);
    }
    return v;
  }
}

type Seq = unknown[] & { sequence?: boolean; keepSingleton?: boolean; outerWrapper?: boolean; cons?: boolean; tupleStream?: boolean };

function createSequence(...items: unknown[]): Seq {
  const s: Seq = [];
  s.sequence = true;
  if (items.length === 1) s.push(items[0]);
  return s;
}

/** What jsonata's natives get as `this`. */
interface Focus {
  environment: undefined;
  input: unknown;
  options: undefined;
  createSequence: typeof createSequence;
}
const FOCUS: Focus = { environment: undefined, input: undefined, options: undefined, createSequence };
const focusOf = (input: unknown): Focus => ({ environment: undefined, input, options: undefined, createSequence });

/**
 * A scope: names and values in two parallel arrays (frames hold a handful of
 * names, and a lambda call makes one per call: cheaper than a Map). A lambda
 * frame shares its names array with the lambda; bind() copies it first.
 */
class Frame {
  private names: string[];
  private readonly values: unknown[];
  private shared: boolean;
  readonly parent: Frame | undefined;
  readonly guard: Guard;
  constructor(parent: Frame | undefined, guard: Guard, names: string[] = [], values: unknown[] = [], shared = false) {
    this.parent = parent;
    this.guard = guard;
    this.names = names;
    this.values = values;
    this.shared = shared;
  }
  bind(name: string, value: unknown): void {
    const i = this.names.indexOf(name);
    if (i >= 0) {
      this.values[i] = value;
      return;
    }
    if (this.shared) {
      this.names = this.names.slice();
      this.shared = false;
    }
    this.names.push(name);
    this.values.push(value);
  }
  lookup(name: string): unknown {
    for (let f: Frame | undefined = this; f !== undefined; f = f.parent) {
      const i = f.names.indexOf(name);
      if (i >= 0) return f.values[i];
    }
    return NATIVES.get(name);
  }
}

type Code = (input: unknown, frame: Frame) => unknown;

/** A compiled lambda, shaped as jsonata's own (natives test `_jsonata_lambda`, arity is `arguments.length`). */
interface Lambda {
  _jsonata_lambda: true;
  input: unknown;
  environment: Frame;
  arguments: { value: string }[];
  /** The distinct parameter names, and for each the index of the argument it gets (the last of equal names). */
  names: string[];
  /** undefined when argument i goes to names[i] (no repeated parameter name). */
  slots: number[] | undefined;
  signature: undefined;
  thunk?: true;
  body: Code;
  /** For a tail-call thunk: the call's procedure and arguments. */
  tail?: { procedure: Code; args: Code[] };
  apply: (self: unknown, args: unknown[]) => unknown;
}

type HostClosure = ((...params: unknown[]) => unknown) & { arity: number; target?: unknown; frame?: Frame };

interface Node {
  type: string;
  value?: unknown;
  position?: number;
  [k: string]: unknown;
}

// ---- jsonata's value rules (utils.js and functions.js, restated) ----

function isNumeric(n: unknown): n is number {
  if (typeof n !== 'number') return false;
  if (Number.isNaN(n)) return false;
  if (!Number.isFinite(n)) throw { code: 'D1001', value: n };
  return true;
}
const isArrayOfNumbers = (a: unknown): boolean => Array.isArray(a) && a.filter((x) => !isNumeric(x)).length === 0;
const isSeq = (v: unknown): v is Seq => Array.isArray(v) && (v as Seq).sequence === true;
const isLambda = (v: unknown): v is Lambda => typeof v === 'object' && v !== null && (v as Lambda)._jsonata_lambda === true;
const isNative = (v: unknown): v is Native => typeof v === 'object' && v !== null && (v as Native)._jsonata_function === true;
const isFunction = (v: unknown): boolean => isLambda(v) || isNative(v) || typeof v === 'function';

function arityOf(f: unknown): number {
  const o = f as { arity?: unknown; implementation?: unknown; length?: unknown; arguments?: unknown[] };
  if (typeof o.arity === 'number') return o.arity;
  if (typeof o.implementation === 'function') return o.implementation.length;
  if (typeof o.length === 'number') return o.length;
  return (o.arguments as unknown[]).length;
}

/** jsonata's $boolean, with a tick per array item (nested arrays could make it exponential on shared values). */
function boolean(arg: unknown, g: Guard): boolean | undefined {
  if (arg === undefined) return undefined;
  g.tick();
  if (Array.isArray(arg)) {
    if (arg.length === 1) return boolean(arg[0], g) as boolean;
    if (arg.length > 1) return arg.filter((v) => boolean(v, g)).length > 0;
    return false;
  }
  if (typeof arg === 'string') return arg.length > 0;
  if (isNumeric(arg)) return arg !== 0;
  if (arg !== null && typeof arg === 'object' && !isFunction(arg)) return Object.keys(arg).length > 0;
  return arg === true;
}
const boolize = (v: unknown, g: Guard): boolean => boolean(v, g) ?? false;

/** jsonata's lookup (a field of an object, or of each item of an array, flattened), with ticks. */
function lookup(input: unknown, key: string, g: Guard): unknown {
  if (Array.isArray(input)) {
    const result = createSequence();
    for (const item of input) {
      g.tick();
      const res = lookup(item, key, g);
      if (res === undefined) continue;
      if (Array.isArray(res)) for (const v of res) result.push(v);
      else result.push(res);
    }
    return g.size(result);
  }
  if (input !== null && typeof input === 'object' && Object.prototype.hasOwnProperty.call(input, key) && !isFunction(input)) {
    return (input as Record<string, unknown>)[key];
  }
  return undefined;
}

function isDeepEqual(l: unknown, r: unknown, g: Guard): boolean {
  g.tick();
  if (l === r) return true;
  if (typeof l !== 'object' || typeof r !== 'object' || l === null || r === null) return false;
  if (Array.isArray(l) && Array.isArray(r)) {
    if (l.length !== r.length) return false;
    for (let i = 0; i < l.length; i++) if (!isDeepEqual(l[i], r[i], g)) return false;
    return true;
  }
  const lk = Object.getOwnPropertyNames(l).sort();
  const rk = Object.getOwnPropertyNames(r).sort();
  if (lk.length !== rk.length) return false;
  for (let i = 0; i < lk.length; i++) if (lk[i] !== rk[i]) return false;
  for (const k of lk) if (!isDeepEqual((l as Record<string, unknown>)[k], (r as Record<string, unknown>)[k], g)) return false;
  return true;
}

/**
 * A lower bound of JSON.stringify(v)'s length, stopping once past `limit`
 * (so it costs at most about `limit` steps, even on a value that shares one
 * object many times). `lambdas` counts functions met (JSON cannot hold them).
 */
export function measure(v: unknown, limit: number, g: Guard, seen = { n: 0, lambdas: 0 }): { n: number; lambdas: number } {
  if (seen.n <= limit) measureInto(v, limit, g, seen);
  return seen;
}

// Runs once per value of every compiled result: a switch on typeof and indexed loops, no per-object entry arrays.
function measureInto(v: unknown, limit: number, g: Guard, seen: { n: number; lambdas: number }): void {
  g.tick();
  switch (typeof v) {
    case 'string':
      seen.n += v.length + 2;
      return;
    case 'number':
    case 'boolean':
      seen.n += 1;
      return;
    case 'function':
      seen.lambdas++;
      return;
    case 'object': {
      if (v === null) {
        seen.n += 1;
        return;
      }
      if (Array.isArray(v)) {
        seen.n += 1 + v.length;
        for (let i = 0; i < v.length && seen.n <= limit; i++) measureInto(v[i], limit, g, seen);
        return;
      }
      if (isLambda(v) || isNative(v)) {
        seen.lambdas++;
        return;
      }
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      for (let i = 0; i < keys.length && seen.n <= limit; i++) {
        const k = keys[i] as string;
        seen.n += k.length + 3;
        measureInto(o[k], limit, g, seen);
      }
      return;
    }
    default:
      // undefined, symbol, bigint: JSON.stringify leaves them out (and cannot come from compiled code but undefined).
      return;
  }
}

// ---- the compiler ----

/** The AST holds a construct outside the compiled subset. */
class Unsupported extends Error {}

const COMMON_KEYS = new Set(['type', 'value', 'position', 'predicate', 'keepArray']);
const KEYS: Record<string, Set<string>> = {
  path: new Set(['steps', 'keepSingletonArray']),
  name: new Set(['stages']),
  string: new Set(['stages']),
  number: new Set(['stages']),
  value: new Set(['stages']),
  variable: new Set(['stages']),
  binary: new Set(['lhs', 'rhs', 'stages']),
  unary: new Set(['expression', 'expressions', 'lhs', 'consarray', 'stages']),
  condition: new Set(['condition', 'then', 'else', 'stages']),
  block: new Set(['expressions', 'stages']),
  bind: new Set(['lhs', 'rhs']),
  function: new Set(['procedure', 'arguments', 'stages', 'name']),
  lambda: new Set(['arguments', 'body', 'thunk', 'stages']),
};
const BINARY = new Set(['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', '&', 'and', 'or', '..', 'in']);
const HOFS = new Set<string>(HOF_NATIVES);

function describe(n: Node): string {
  const what = n.type === 'binary' || n.type === 'unary' || n.type === 'apply' ? `operator ${String(n.value)}` : n.type;
  return `${what}${n.position !== undefined ? ` at character ${n.position}` : ''}`;
}

function checkKeys(n: Node): void {
  const allowed = KEYS[n.type];
  if (allowed === undefined) throw new Unsupported(describe(n));
  for (const k of Object.keys(n)) {
    if (COMMON_KEYS.has(k) || allowed.has(k) || n[k] === undefined) continue;
    throw new Unsupported(`${describe(n)} (${k === 'group' ? 'grouping' : k === 'focus' || k === 'index' || k === 'tuple' || k === 'ancestor' || k === 'seekingParent' ? '@, # or % binding' : k})`);
  }
  if (n.predicate !== undefined) for (const p of n.predicate as Node[]) if (p.type !== 'filter') throw new Unsupported(describe(n));
  if (n.stages !== undefined) for (const p of n.stages as Node[]) if (p.type !== 'filter') throw new Unsupported(`${describe(n)} (${p.type})`);
}

function compileNode(n: Node): Code {
  checkKeys(n);
  const core = compileCore(n);
  const predicates = ((n.predicate ?? []) as Node[]).map((p) => compileFilter(p.expr as Node));
  const keepArray = n.keepArray === true;
  // A literal is its value (never a sequence) and calls nothing: no depth to count, nothing to flatten.
  if (predicates.length === 0 && (n.type === 'string' || n.type === 'number' || n.type === 'value')) return core;
  if (predicates.length === 0) {
    return (input, frame) => {
      const g = frame.guard;
      if (++g.depth > g.maxDepth) throw new Overrun('expression nesting too deep');
      const r = settle(core(input, frame), keepArray);
      g.depth--;
      return r;
    };
  }
  return (input, frame) => {
    const g = frame.guard;
    if (++g.depth > g.maxDepth) throw new Overrun('expression nesting too deep');
    let r = core(input, frame);
    for (const p of predicates) r = p(r, frame);
    r = settle(r, keepArray);
    g.depth--;
    return r;
  };
}

/** A step's result as jsonata leaves it: an empty sequence is nothing, a singleton its item (unless kept as an array). */
function settle(r: unknown, keepArray: boolean): unknown {
  if (!r || !isSeq(r) || r.tupleStream) return r;
  if (keepArray) r.keepSingleton = true;
  if (r.length === 0) return undefined;
  if (r.length === 1) return r.keepSingleton ? r : r[0];
  return r;
}

type Filter = (input: unknown, frame: Frame) => unknown;

function compileFilter(pred: Node): Filter {
  if (pred.type === 'number') {
    checkKeys(pred);
    const value = pred.value as number;
    return (input) => {
      let results: unknown[] = createSequence();
      const seq = Array.isArray(input) ? input : createSequence(input);
      let index = Math.floor(value);
      if (index < 0) index = seq.length + index;
      const item = seq[index];
      if (item !== undefined) {
        if (Array.isArray(item)) results = item;
        else results.push(item);
      }
      return results;
    };
  }
  const code = compileNode(pred);
  return (input, frame) => {
    const g = frame.guard;
    const results = createSequence();
    const seq = Array.isArray(input) ? input : createSequence(input);
    for (let index = 0; index < seq.length; index++) {
      g.tick();
      const item = seq[index];
      let res = code(item, frame);
      if (isNumeric(res)) res = [res];
      if (isArrayOfNumbers(res)) {
        for (const ires of res as number[]) {
          let ii = Math.floor(ires);
          if (ii < 0) ii = seq.length + ii;
          if (ii === index) results.push(item);
        }
      } else if (boolean(res, g)) {
        results.push(item);
      }
    }
    return results;
  };
}

function compileCore(n: Node): Code {
  switch (n.type) {
    case 'path':
      return compilePath(n);
    case 'name': {
      const key = n.value as string;
      return (input, frame) => lookup(input, key, frame.guard);
    }
    case 'string':
    case 'number':
    case 'value': {
      const v = n.value;
      return () => v;
    }
    case 'variable': {
      const name = n.value as string;
      if (name === '') return (input) => (input && (input as Seq).outerWrapper ? (input as Seq)[0] : input);
      if (ALL_JSONATA_FUNCTIONS.has(name) && !NATIVES.has(name)) throw new Unsupported(`$${name}() at character ${n.position}`);
      return (_input, frame) => frame.lookup(name);
    }
    case 'binary':
      return compileBinary(n);
    case 'unary':
      return compileUnary(n);
    case 'condition': {
      const cond = compileNode(n.condition as Node);
      const then = compileNode(n.then as Node);
      const otherwise = n.else !== undefined ? compileNode(n.else as Node) : undefined;
      return (input, frame) => {
        if (boolean(cond(input, frame), frame.guard)) return then(input, frame);
        return otherwise?.(input, frame);
      };
    }
    case 'block': {
      const exprs = (n.expressions as Node[]).map((e) => (e.type === 'bind' ? compileBind(e) : compileNode(e)));
      return (input, frame) => {
        const inner = new Frame(frame, frame.guard);
        let result: unknown;
        for (const e of exprs) result = e(input, inner);
        return result;
      };
    }
    case 'bind':
      // Bound in a block's own frame only: elsewhere jsonata's parallel evaluation of constructor items decides the order.
      throw new Unsupported(`:= outside a ( … ; … ) block at character ${n.position}`);
    case 'function':
      return compileCall(n);
    case 'lambda':
      return compileLambda(n);
    default:
      throw new Unsupported(describe(n));
  }
}

function compileBind(n: Node): Code {
  checkKeys(n);
  const name = (n.lhs as Node).value as string;
  if (ALL_JSONATA_FUNCTIONS.has(name) && !NATIVES.has(name)) throw new Unsupported(`$${name} rebinds a jsonata function outside the subset`);
  const rhs = compileNode(n.rhs as Node);
  return (input, frame) => {
    const v = rhs(input, frame);
    frame.bind(name, v);
    return v;
  };
}

interface PathStep {
  code: Code;
  stages: Filter[];
  consarray: boolean;
}

function compilePath(n: Node): Code {
  const steps: PathStep[] = (n.steps as Node[]).map((s) => ({
    code: compileNode(s),
    stages: ((s.stages ?? []) as Node[]).map((st) => compileFilter(st.expr as Node)),
    consarray: s.consarray === true,
  }));
  const firstIsVariable = (n.steps as Node[])[0]?.type === 'variable';
  const keepSingletonArray = n.keepSingletonArray === true;
  const last = steps.length - 1;
  return (input, frame) => {
    let inputSeq: unknown[] = Array.isArray(input) && !firstIsVariable ? input : createSequence(input);
    let result: unknown;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as PathStep;
      result = i === 0 && step.consarray ? step.code(inputSeq, frame) : evaluateStep(step, inputSeq, frame, i === last);
      if (result === undefined || (result as unknown[]).length === 0) break;
      inputSeq = result as unknown[];
    }
    if (keepSingletonArray) {
      let r = result as Seq;
      if (Array.isArray(r) && r.cons && !r.sequence) r = createSequence(r);
      r.keepSingleton = true;
      result = r;
    }
    return result;
  };
}

function evaluateStep(step: PathStep, input: unknown[], frame: Frame, lastStep: boolean): unknown {
  const g = frame.guard;
  const result: unknown[] = [];
  for (const item of input) {
    g.tick();
    let res = step.code(item, frame);
    for (const st of step.stages) res = st(res, frame);
    if (res !== undefined) result.push(res);
  }
  if (lastStep && result.length === 1 && Array.isArray(result[0]) && !isSeq(result[0])) return result[0];
  const out = createSequence();
  for (const res of result) {
    if (!Array.isArray(res) || (res as Seq).cons) out.push(res);
    else for (const v of res) out.push(v);
  }
  return g.size(out);
}

function compileBinary(n: Node): Code {
  const op = n.value as string;
  if (!BINARY.has(op)) throw new Unsupported(describe(n));
  const lhs = compileNode(n.lhs as Node);
  const rhs = compileNode(n.rhs as Node);
  switch (op) {
    case 'and':
      return (input, frame) => boolize(lhs(input, frame), frame.guard) && boolize(rhs(input, frame), frame.guard);
    case 'or':
      return (input, frame) => boolize(lhs(input, frame), frame.guard) || boolize(rhs(input, frame), frame.guard);
    case '+': case '-': case '*': case '/': case '%':
      return (input, frame) => numeric(lhs(input, frame), rhs(input, frame), op);
    case '=': case '!=':
      return (input, frame) => {
        const l = lhs(input, frame);
        const r = rhs(input, frame);
        if (l === undefined || r === undefined) return false;
        const eq = isDeepEqual(l, r, frame.guard);
        return op === '=' ? eq : !eq;
      };
    case '<': case '<=': case '>': case '>=':
      return (input, frame) => compare(lhs(input, frame), rhs(input, frame), op);
    case '&':
      return (input, frame) => {
        const l = lhs(input, frame);
        const r = rhs(input, frame);
        return frame.guard.size(stringOf(l, frame.guard).concat(stringOf(r, frame.guard)));
      };
    case '..':
      return (input, frame) => range(lhs(input, frame), rhs(input, frame), frame.guard);
    default: // 'in'
      return (input, frame) => {
        const l = lhs(input, frame);
        let r = rhs(input, frame);
        if (l === undefined || r === undefined) return false;
        if (!Array.isArray(r)) r = [r];
        return (r as unknown[]).some((x) => x === l);
      };
  }
}

/** `&`'s operands as jsonata's $string renders them (measured first: a shared value could render to gigabytes). */
function stringOf(v: unknown, g: Guard): string {
  if (v === undefined) return '';
  if (typeof v === 'object' && v !== null && measure(v, g.maxString, g).n > g.maxString) throw new Overrun('$string of a value past the size cap');
  return native('string').implementation.call(FOCUS, v) as string;
}

function numeric(l: unknown, r: unknown, op: string): unknown {
  if (l !== undefined && !isNumeric(l)) throw { code: 'T2001', value: l };
  if (r !== undefined && !isNumeric(r)) throw { code: 'T2002', value: r };
  if (l === undefined || r === undefined) return undefined;
  const a = l as number;
  const b = r as number;
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return a / b;
    default: return a % b;
  }
}

function compare(l: unknown, r: unknown, op: string): unknown {
  const lt = typeof l;
  const rt = typeof r;
  const lc = lt === 'undefined' || lt === 'string' || lt === 'number';
  const rc = rt === 'undefined' || rt === 'string' || rt === 'number';
  if (!lc || !rc) throw { code: 'T2010', value: !(lt === 'string' || lt === 'number') ? l : r };
  if (lt === 'undefined' || rt === 'undefined') return undefined;
  if (lt !== rt) throw { code: 'T2009', value: l, value2: r };
  const a = l as string | number;
  const b = r as string | number;
  switch (op) {
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    default: return a >= b;
  }
}

function range(l: unknown, r: unknown, g: Guard): unknown {
  if (l !== undefined && !Number.isInteger(l)) throw { code: 'T2003', value: l };
  if (r !== undefined && !Number.isInteger(r)) throw { code: 'T2004', value: r };
  if (l === undefined || r === undefined) return undefined;
  const a = l as number;
  const b = r as number;
  if (a > b) return undefined;
  const size = b - a + 1;
  if (size > 1e7) throw { code: 'D2014', value: size };
  if (size > g.maxItems) throw new Overrun(`a range of ${size} items`);
  g.tick(size);
  const result: Seq = new Array<unknown>(size);
  for (let item = a, i = 0; item <= b; item++, i++) result[i] = item;
  result.sequence = true;
  return result;
}

function compileUnary(n: Node): Code {
  switch (n.value) {
    case '-': {
      const e = compileNode(n.expression as Node);
      return (input, frame) => {
        const v = e(input, frame);
        if (v === undefined) return undefined;
        if (isNumeric(v)) return -v;
        throw { code: 'D1002', value: v };
      };
    }
    case '[': {
      const items = (n.expressions as Node[]).map((e) => ({ code: compileNode(e), nested: e.value === '[' }));
      const cons = n.consarray === true;
      return (input, frame) => {
        const g = frame.guard;
        const result: unknown[] = [];
        for (const item of items) {
          g.tick();
          const v = item.code(input, frame);
          if (v === undefined) continue;
          // jsonata's append(result, v) is result.concat(v): v's items if an array, else v; pushed onto this
          // fresh array instead of two new arrays per item.
          if (item.nested || !Array.isArray(v)) result.push(v);
          else for (let i = 0; i < v.length; i++) result.push(v[i]);
          g.size(result);
        }
        if (cons) Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true });
        return result;
      };
    }
    case '{':
      return compileObject(n);
    default:
      throw new Unsupported(describe(n));
  }
}

/** The keys of an object constructor when each is a distinct string literal (not the two jsonata refuses). */
function literalKeys(lhs: Node[][]): string[] | undefined {
  const keys: string[] = [];
  for (const [k] of lhs) {
    const key = (k as Node).value;
    if ((k as Node).type !== 'string' || (k as Node).predicate !== undefined || (k as Node).stages !== undefined || typeof key !== 'string') return undefined;
    if (key === '_jsonata_lambda' || key === '_jsonata_function' || keys.includes(key)) return undefined;
    keys.push(key);
  }
  return keys;
}

/**
 * result[key] = value on a plain object, except that "__proto__" becomes an
 * own property (as on the null-prototype objects this path built before)
 * instead of setting the prototype. Plain objects, not Object.create(null):
 * V8 keeps those in dictionary mode, slower to fill, copy and stringify.
 */
function setOwn(result: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
  else result[key] = value;
}

function compileObject(n: Node): Code {
  const pairs = (n.lhs as Node[][]).map(([k, v]) => ({ key: compileNode(k as Node), value: compileNode(v as Node) }));
  const append = native('append').implementation;
  const literal = literalKeys(n.lhs as Node[][]);
  return (input, frame) => {
    if (literal !== undefined && !Array.isArray(input)) {
      // Distinct literal keys over one item: every group is that item under its own key. The values run in
      // the pairs' order instead of the groups' (integer-like keys first); only which of two errors is thrown
      // could differ, and any error hands the step to the reference evaluator.
      const g = frame.guard;
      const result: Record<string, unknown> = {};
      for (let p = 0; p < pairs.length; p++) {
        g.tick();
        const value = (pairs[p] as { value: Code }).value(input, frame);
        if (value !== undefined) setOwn(result, literal[p] as string, value);
      }
      return result;
    }
    const g = frame.guard;
    const groups: Record<string, { data: unknown; exprIndex: number }> = Object.create(null);
    // jsonata pushes undefined onto an empty input array itself (evaluateGroupExpression), so every other
    // reference to that array ($$, a variable, a field of the payload) sees [undefined] from then on — or
    // not yet, depending on how far the concurrently evaluated items of an enclosing [ … ] or { … } have
    // awaited (Promise.all). No synchronous evaluator reproduces that order; the reference decides.
    if (Array.isArray(input) && input.length === 0) throw new HandOver('an object constructor over an empty array');
    const seq: unknown[] = Array.isArray(input) ? input : createSequence(input);
    for (const item of seq) {
      for (let p = 0; p < pairs.length; p++) {
        g.tick();
        const key = (pairs[p] as { key: Code }).key(item, frame);
        if (typeof key !== 'string' && key !== undefined) throw { code: 'T1003', value: key };
        if (key === undefined) continue;
        if (key === '_jsonata_lambda' || key === '_jsonata_function') throw { code: 'D1013', value: key };
        const entry = groups[key];
        if (entry !== undefined) {
          if (entry.exprIndex !== p) throw { code: 'D1009', value: key };
          entry.data = g.size(append.call(FOCUS, entry.data, item));
        } else {
          groups[key] = { data: item, exprIndex: p };
        }
      }
    }
    const result: Record<string, unknown> = {};
    for (const key of Object.keys(groups)) {
      const entry = groups[key] as { data: unknown; exprIndex: number };
      const value = (pairs[entry.exprIndex] as { value: Code }).value(entry.data, frame);
      if (value !== undefined) setOwn(result, key, value);
    }
    return result;
  };
}

function compileLambda(n: Node): Code {
  const params = n.arguments as Node[];
  if (n.thunk === true) {
    // A tail call, marked by jsonata's parser: apply() runs it in a loop instead of recursing.
    const call = n.body as Node;
    checkKeys(call);
    const procedure = compileProcedure(call);
    const args = (call.arguments as Node[]).map(compileNode);
    return (input, frame) => makeLambda(input, frame, [], () => undefined, { procedure, args });
  }
  const body = compileNode(n.body as Node);
  const slots = paramSlots(params as { value: string }[]);
  return (input, frame) => makeLambda(input, frame, params as { value: string }[], body, undefined, slots);
}

function paramSlots(params: { value: string }[]): { names: string[]; slots: number[] | undefined } {
  const names: string[] = [];
  const slots: number[] = [];
  params.forEach((p, i) => {
    const at = names.indexOf(p.value);
    if (at >= 0) slots[at] = i;
    else {
      names.push(p.value);
      slots.push(i);
    }
  });
  // Distinct names: name i takes argument i, so a call's argument array is the frame's values as it is.
  return { names, slots: slots.every((at, i) => at === i) ? undefined : slots };
}

function makeLambda(input: unknown, frame: Frame, params: { value: string }[], body: Code, tail: Lambda['tail'], slots = paramSlots(params)): Lambda {
  const lambda: Lambda = {
    _jsonata_lambda: true,
    input,
    environment: frame,
    arguments: params,
    names: slots.names,
    slots: slots.slots,
    signature: undefined,
    body,
    apply: (_self, args) => apply(lambda, args, input, frame),
  };
  if (tail !== undefined) {
    lambda.thunk = true;
    lambda.tail = tail;
  }
  return lambda;
}

function compileProcedure(call: Node): Code {
  const proc = call.procedure as Node;
  // `$f(…)` only: a procedure computed by a path or parenthesised expression is outside the subset.
  if (proc.type !== 'variable' || proc.predicate !== undefined || proc.value === '') throw new Unsupported(`a call of ${describe(proc)}`);
  return compileNode(proc);
}

function compileCall(n: Node): Code {
  const procedure = compileProcedure(n);
  const args = (n.arguments as Node[]).map(compileNode);
  return (input, frame) => {
    const proc = procedure(input, frame);
    const evaluated: unknown[] = [];
    for (const a of args) {
      const v = a(input, frame);
      if (isFunction(v)) {
        const closure = ((...params: unknown[]) => apply(v, params, null, frame)) as HostClosure;
        closure.arity = arityOf(v);
        closure.target = v;
        closure.frame = frame;
        evaluated.push(closure);
      } else {
        evaluated.push(v);
      }
    }
    return apply(proc, evaluated, input, frame);
  };
}

function apply(proc: unknown, args: unknown[], input: unknown, frame: Frame): unknown {
  let result = applyInner(proc, args, input, frame);
  while (isLambda(result) && result.thunk === true) {
    frame.guard.tick();
    const thunk: Lambda = result;
    const tail = thunk.tail as NonNullable<Lambda['tail']>;
    const next = tail.procedure(thunk.input, thunk.environment);
    // jsonata sets token and position on what it is about to call: a primitive there is a TypeError.
    if (next === null || next === undefined || (typeof next !== 'object' && typeof next !== 'function')) throw new TypeError('tail call of a non-object');
    const nextArgs = tail.args.map((a) => a(thunk.input, thunk.environment));
    result = applyInner(next, nextArgs, input, frame);
  }
  return result;
}

function applyInner(proc: unknown, args: unknown[], input: unknown, frame: Frame): unknown {
  const g = frame.guard;
  g.tick();
  let validated = args;
  if (proc) {
    const sig = (proc as { signature?: Native['signature'] }).signature;
    if (sig !== undefined) {
      const quick = QUICK_VALIDATE.get(proc as Native);
      validated = (quick !== undefined ? quick(args) : undefined) ?? sig.validate(args, input);
    }
  }
  if (isLambda(proc)) {
    const slots = proc.slots;
    // The argument array is fresh (built for this call) and a lambda's frame is never bound into: it can be the values.
    let values = validated;
    if (slots !== undefined) {
      values = new Array<unknown>(slots.length);
      for (let i = 0; i < slots.length; i++) values[i] = validated[slots[i] as number];
    }
    return proc.body(proc.input, new Frame(proc.environment, g, proc.names, values, true));
  }
  if (isNative(proc)) {
    const name = HOF_NAMES.get(proc);
    if (name !== undefined) return g.size(hof(name, validated, input, g));
    const pre = precheck.get(proc);
    if (pre !== undefined) pre(validated, g);
    const own = OWN_IMPLEMENTATIONS.get(proc);
    const result = own !== undefined ? own(validated) : proc.implementation.apply(focusOf(input), validated);
    if (result instanceof Promise) throw new Overrun('an asynchronous native');
    return g.size(result);
  }
  if (typeof proc === 'function') return (proc as (...a: unknown[]) => unknown).apply(input, validated);
  throw { code: 'T1006' };
}

/** The natives compiled code runs its own synchronous versions of, by object. */
const HOF_NAMES = new Map<Native, string>([...NATIVES].filter(([k]) => HOFS.has(k)).map(([k, v]) => [v, k]));

/** jsonata's signature symbol "o": an object that is not an array, null or (by jsonata's isFunction) a function. */
const isObjectSymbol = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Native)._jsonata_function !== true && (v as Lambda)._jsonata_lambda !== true;
const isFunctionSymbol = (v: unknown): boolean => isFunction(v);

/**
 * What jsonata's signature validator returns, for the argument shapes the
 * common translation steps pass ($merge of an array of objects, $sift of an
 * object and a function): the arguments as they are. undefined for any other
 * shape, which the validator itself then checks (and words the error of).
 * test/unit/translate-compiled.test.ts compares these with the validator.
 */
export const QUICK_VALIDATE = new Map<Native, (args: unknown[]) => unknown[] | undefined>([
  // <a<o>:o>: an array whose items are all objects passes unchanged.
  [native('merge'), (args) => {
    if (args.length !== 1) return undefined;
    const a = args[0];
    if (!Array.isArray(a)) return undefined;
    for (let i = 0; i < a.length; i++) if (!isObjectSymbol(a[i])) return undefined;
    return args;
  }],
  // <o-f?:o>: an object and a function pass unchanged.
  [NATIVES.get('sift') as Native, (args) => (args.length === 2 && isObjectSymbol(args[0]) && isFunctionSymbol(args[1]) ? args : undefined)],
]);

/**
 * Natives whose jsonata implementation builds an Object.create(null) result,
 * replaced where it costs: V8 keeps such objects in dictionary mode, slower
 * to fill, walk and serialise (the reference step's $merge result: 4.8 vs
 * 3.6 µs to stringify the same keys as a plain object). These build a plain
 * object with the same own keys in the same order instead. Nothing in the
 * subset can tell the two apart: every lookup, here and in jsonata, asks
 * hasOwnProperty, and the parsed payload's objects are plain ones already.
 * ($spread builds them too, but only single-key ones: left to jsonata.)
 */
const OWN_IMPLEMENTATIONS = new Map<Native, (args: unknown[]) => unknown>([
  // jsonata's merge: arg.forEach(obj => for (const prop of utils.keys(obj)) result[prop] = obj[prop]).
  [native('merge'), (args) => {
    const arg = args[0];
    if (arg === undefined) return undefined;
    let result: Record<string, unknown> | undefined;
    // The validator (<a<o>:o>) hands over an array; forEach on anything else throws as jsonata's would.
    (arg as unknown[]).forEach((obj) => {
      if (typeof obj !== 'object' || obj === null) return;
      const o = obj as Record<string, unknown>;
      if (result === undefined) result = { ...o };
      else for (const prop of Object.keys(o)) setOwn(result, prop, o[prop]);
    });
    return result ?? {};
  }],
]);

/** Checks before natives whose output could outgrow the caps before any check after them. */
const precheck = new Map<Native, (args: unknown[], g: Guard) => void>([
  [native('pad'), (args, g) => {
    if (typeof args[1] === 'number' && Math.abs(args[1]) > g.maxString) throw new Overrun('$pad past the size cap');
  }],
  [native('join'), (args, g) => {
    const parts = Array.isArray(args[0]) ? args[0] : [];
    let n = 0;
    for (const p of parts) n += typeof p === 'string' ? p.length : 0;
    if (n > g.maxString) throw new Overrun('$join past the size cap');
  }],
  [native('string'), (args, g) => {
    const v = args[0];
    if (typeof v === 'object' && v !== null && measure(v, g.maxString, g).n > g.maxString) throw new Overrun('$string past the size cap');
  }],
  [native('boolean'), (args, g) => void boolean(args[0], g)],
  [native('not'), (args, g) => void boolean(args[0], g)],
]);

/** Calls a function value as jsonata's HOFs do (func.apply(this, args)): a native object has no apply (TypeError). */
function callFn(f: unknown, args: unknown[]): unknown {
  if (typeof f === 'function') {
    const c = f as HostClosure;
    // One of compileCall's closures: what calling it would do, without spreading the arguments.
    if (c.frame !== undefined) return apply(c.target, args, null, c.frame);
    return c(...args);
  }
  if (isLambda(f)) return f.apply(FOCUS, args);
  throw new TypeError('func.apply is not a function');
}

/** The arguments a HOF passes (as many as the function's arity takes); `n` is that arity, found at the first item. */
function hofArgs(n: number, a: unknown, b: unknown, c: unknown): unknown[] {
  // Literals of the final length: a push onto [a] would allocate a second, larger backing store per call.
  return n >= 3 ? [a, b, c] : n >= 2 ? [a, b] : [a];
}

function hof(name: string, args: unknown[], _input: unknown, g: Guard): unknown {
  const [arg, func] = args;
  let n: number | undefined;
  switch (name) {
    case 'map': {
      if (arg === undefined) return undefined;
      const arr = arg as unknown[];
      const result = createSequence();
      for (let i = 0; i < arr.length; i++) {
        g.tick();
        const res = callFn(func, hofArgs((n ??= arityOf(func)), arr[i], i, arr));
        if (res !== undefined) result.push(res);
      }
      return result;
    }
    case 'filter': {
      if (arg === undefined) return undefined;
      const arr = arg as unknown[];
      const result = createSequence();
      for (let i = 0; i < arr.length; i++) {
        g.tick();
        if (boolean(callFn(func, hofArgs((n ??= arityOf(func)), arr[i], i, arr)), g)) result.push(arr[i]);
      }
      return result;
    }
    case 'sift': {
      const obj = arg as Record<string, unknown>;
      const result: Record<string, unknown> = {};
      let kept = 0;
      for (const key of typeof obj === 'object' && obj !== null ? Object.keys(obj) : []) {
        g.tick();
        if (boolean(callFn(func, hofArgs((n ??= arityOf(func)), obj[key], key, obj)), g)) {
          setOwn(result, key, obj[key]);
          kept++;
        }
      }
      return kept === 0 ? undefined : result;
    }
    default: { // each
      const obj = arg as Record<string, unknown>;
      const result = createSequence();
      for (const key of typeof obj === 'object' && obj !== null ? Object.keys(obj) : []) {
        g.tick();
        const v = callFn(func, hofArgs((n ??= arityOf(func)), obj[key], key, obj));
        if (v !== undefined) result.push(v);
      }
      return result;
    }
  }
}

// ---- the entry points ----

/** A compiled step: runs the expression on a parsed payload within a Guard. Throws jsonata error objects, Overrun or (rarely) a JS error. */
export type CompiledExpression = (input: unknown, guard: Guard) => unknown;

export type Compilation = { ok: true; run: CompiledExpression } | { ok: false; why: string };

/** Compiles an expression text, or says which construct keeps it on the reference evaluator. */
export function compileExpression(text: string): Compilation {
  let ast: Node;
  try {
    ast = jsonata(text).ast() as unknown as Node;
  } catch (err) {
    return { ok: false, why: `does not parse: ${(err as Error).message}` };
  }
  if ((ast as { errors?: unknown }).errors !== undefined) return { ok: false, why: 'parsed with recovered errors' };
  let code: Code;
  try {
    code = ast.type === 'bind' ? compileBind(ast) : compileNode(ast);
  } catch (err) {
    if (err instanceof Unsupported) return { ok: false, why: `${err.message} is outside the compiled subset` };
    throw err;
  }
  return {
    ok: true,
    run: (raw, guard) => {
      const root = new Frame(undefined, guard);
      root.bind('$', raw);
      let input = raw;
      if (Array.isArray(raw) && !isSeq(raw)) {
        const wrapped = createSequence(raw);
        wrapped.outerWrapper = true;
        input = wrapped;
      }
      guard.depth = 0;
      return code(input, root);
    },
  };
}
