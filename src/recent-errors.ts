// The last warnings and errors a sidecar logged, for the status page
// (GET /v1/status, "errors"). Fed by tapping the logger's warn/error/fatal:
// those run on failure paths only (a dead-letter, a lost connection), never
// for a message that goes through, so a healthy hot path pays nothing.

import type { Logger } from '../lib/log.ts';

export interface RecentError {
  at: string;
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  /** The error's own message, when the log entry carried one. */
  error?: string;
  /** The message concerned and its dead-letter reason, when the entry names them. */
  id?: string;
  source?: string;
  reason?: string;
}

const LEVELS = ['warn', 'error', 'fatal'] as const;
const MAX_TEXT = 300;

const clip = (s: string): string => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s);

function errorText(obj: unknown): string | undefined {
  if (obj === null || typeof obj !== 'object') return undefined;
  const err = (obj as { err?: unknown }).err;
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  if (err !== null && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  const error = (obj as { error?: unknown }).error;
  return typeof error === 'string' ? error : undefined;
}

export class RecentErrors {
  private readonly entries: RecentError[] = [];
  private readonly max: number;
  /** Removes secrets from the texts before they are kept (config/secrets.ts's scrubber). */
  private readonly scrub: (text: string) => string;

  constructor(options: { max?: number; scrub: (text: string) => string }) {
    this.max = options.max ?? 20;
    this.scrub = options.scrub;
  }

  record(level: RecentError['level'], args: readonly unknown[]): void {
    const [first, second] = args;
    const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : '';
    const error = typeof first === 'string' ? undefined : errorText(first);
    const entry: RecentError = { at: new Date().toISOString(), level, msg: clip(this.scrub(msg)) };
    if (error !== undefined) entry.error = clip(this.scrub(error));
    if (first !== null && typeof first === 'object') {
      for (const k of ['id', 'source', 'reason'] as const) {
        const v: unknown = (first as Record<string, unknown>)[k];
        if (typeof v === 'string') entry[k] = clip(this.scrub(v));
      }
    }
    this.entries.push(entry);
    if (this.entries.length > this.max) this.entries.shift();
  }

  /** Newest first. */
  list(): RecentError[] {
    return [...this.entries].reverse();
  }
}

/**
 * The same logger, with warn/error/fatal (and those of its children) also
 * recorded in `recent`. A Proxy rather than a pino hook: the logger is made
 * by the caller (one per process, shared by the demo's sidecars), and each
 * sidecar keeps its own list.
 */
export function tapLogger(logger: Logger, recent: RecentErrors): Logger {
  return new Proxy(logger, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if ((LEVELS as readonly (string | symbol)[]).includes(prop)) {
        const level = prop as RecentError['level'];
        return (...args: unknown[]) => {
          // Recorded whatever the log level: the demo logs nothing, yet its pages show what went wrong.
          recent.record(level, args);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (prop === 'child') {
        return (...args: unknown[]) => tapLogger((value as (...a: unknown[]) => Logger).apply(target, args), recent);
      }
      return value;
    },
  });
}
