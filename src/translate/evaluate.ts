// Runs a payload through a chain of compiled JSONata steps, in the calling
// thread and without a time limit: the worker (worker.ts) calls it inside
// its budget, and tests and benchmarks call it directly. Error texts name
// the step and never quote the payload: they go into logs and into the
// x-turnout-error header.

import { Buffer } from 'node:buffer';

/** What translate() needs of a chain (translators.ts's Chain is one). */
export interface RunnableChain {
  from: number;
  to: number;
  steps: readonly { from: number; to: number; expression: { evaluate(input: unknown): Promise<unknown> } }[];
}

/** The dead-letter reason a failed translation gets. */
export type TranslateFailure = 'translate-error' | 'too-large';

/** A message could not be translated (not JSON, a step failed, produced nothing, ran too long or too big). */
export class TranslateError extends Error {
  readonly reason: TranslateFailure;
  constructor(message: string, reason: TranslateFailure = 'translate-error') {
    super(message);
    this.name = 'TranslateError';
    this.reason = reason;
  }
}

export interface TranslateLimits {
  /** A translated copy larger than this (UTF-8 bytes) is a 'too-large' TranslateError. */
  maxBytes?: number;
}

/** Runs a payload through a chain; resolves with the translated JSON text. Throws TranslateError. */
export async function translateToText(chain: RunnableChain, payload: Buffer, limits: TranslateLimits = {}): Promise<string> {
  let value = parsePayload(chain, payload);
  for (const step of chain.steps) {
    try {
      value = await step.expression.evaluate(value);
    } catch (err) {
      throw new TranslateError(`step ${step.from}->${step.to} failed: ${jsonataProblem(err)}`);
    }
    if (value === undefined) throw noValue(step);
  }
  return resultText(chain, value, limits);
}

/** The payload as JSON, or the TranslateError that says it is not JSON (the compiled path shares it). */
export function parsePayload(chain: { from: number; to: number }, payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new TranslateError(`payload is not JSON (${jsonParseProblem(err)}); translating v${chain.from}->v${chain.to} needs JSON`);
  }
}

/** A step's result was undefined. */
export const noValue = (step: { from: number; to: number }): TranslateError => new TranslateError(`step ${step.from}->${step.to} produced no value`);

/** The chain's result as JSON text within limits.maxBytes (the compiled path shares it). */
export function resultText(chain: { from: number; to: number }, value: unknown, limits: TranslateLimits = {}): string {
  const text = jsonText(chain, value);
  const max = limits.maxBytes;
  // text.length <= UTF-8 length, so a long string is known too large without measuring it.
  if (max !== undefined && (text.length > max || Buffer.byteLength(text, 'utf8') > max)) throw tooLarge(chain, Buffer.byteLength(text, 'utf8'), max);
  return text;
}

/** resultText() as UTF-8 bytes, encoded once (the buffer's length is the size the limit is about). */
export function resultBytes(chain: { from: number; to: number }, value: unknown, limits: TranslateLimits = {}): Buffer {
  const text = jsonText(chain, value);
  const max = limits.maxBytes;
  if (max !== undefined && text.length > max) throw tooLarge(chain, Buffer.byteLength(text, 'utf8'), max);
  const bytes = Buffer.from(text, 'utf8');
  if (max !== undefined && bytes.length > max) throw tooLarge(chain, bytes.length, max);
  return bytes;
}

function jsonText(chain: { from: number; to: number }, value: unknown): string {
  let text: string;
  try {
    // JSONata sequences carry a non-enumerable marker; JSON.stringify handles them as arrays.
    text = JSON.stringify(value);
  } catch (err) {
    // Cycles cannot come from JSON input; a result nested too deeply overflows the stack.
    throw new TranslateError(`the result of ${chain.from}->${chain.to} cannot be written as JSON: ${(err as Error).name}`);
  }
  if (text === undefined) throw new TranslateError(`the result of ${chain.from}->${chain.to} is not a JSON value`);
  return text;
}

const tooLarge = (chain: { from: number; to: number }, bytes: number, max: number): TranslateError =>
  new TranslateError(`translated copy (v${chain.from}->v${chain.to}) is ${bytes} bytes; TURNOUT_MAX_MESSAGE_BYTES is ${max}`, 'too-large');

/** translateToText() as bytes. */
export async function translate(chain: RunnableChain, payload: Buffer, limits: TranslateLimits = {}): Promise<Buffer> {
  return Buffer.from(await translateToText(chain, payload, limits), 'utf8');
}

/**
 * V8's JSON.parse messages quote the input ("Unexpected token 'h', "hello" is
 * not valid JSON"): keep only what kind of problem and where.
 */
export function jsonParseProblem(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (/^Unexpected end of JSON input/.test(text)) return 'it ends too early';
  // "Expected ':' after property name in JSON at position 5 (line 1 column 6)": V8's own words.
  const at = /^([^"]*?) (?:in|after) JSON at position (\d+)/.exec(text);
  if (at) return `${at[1]} at character ${at[2]}`;
  // "Unexpected token 'h', "hello" is not valid JSON" quotes the payload twice.
  if (/^Unexpected token/.test(text)) return 'unexpected character';
  return 'invalid';
}

/**
 * JSONata fills its message templates with values from the data (e.g. D3030
 * "Unable to cast value to a number: <value>"): the values are replaced by
 * "…", the code and the position in the expression are kept. $error()'s and
 * $assert()'s messages (D3137, D3141) are the translator author's own words
 * and are kept as written, up to 200 characters.
 */
export function jsonataProblem(err: unknown): string {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Record<string, unknown>;
  let message = typeof e.message === 'string' ? e.message : String(err);
  // jsonata writes {{value}} as JSON.stringify(value); a data value is never part of a word.
  for (const key of ['value', 'value2', 'exp']) {
    if (!(key in e) || e[key] === undefined) continue;
    let quoted: string | undefined;
    try {
      quoted = JSON.stringify(e[key]);
    } catch {
      quoted = undefined;
    }
    if (quoted === undefined || quoted === '') continue;
    if (/^["{[]/.test(quoted)) {
      // Strings, objects and arrays are delimited by their own quotes and brackets.
      message = message.split(quoted).join('…');
    } else {
      // A number, true, false or null: only where it stands alone (not the 1 of "1e7").
      const escaped = quoted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      message = message.replace(new RegExp(`(?<![\\w.])${escaped}(?![\\w.])`, 'g'), '…');
    }
  }
  if (message.length > 200) message = `${message.slice(0, 200)}…`;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const position = typeof e.position === 'number' ? e.position : undefined;
  const where = [code, position !== undefined ? `at character ${position}` : undefined].filter((x) => x !== undefined).join(', ');
  return where ? `${message} (${where})` : message;
}
