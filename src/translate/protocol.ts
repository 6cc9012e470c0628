// Messages between the translation pool (pool.ts, in turnout) and its
// worker processes (worker.ts), over the IPC channel with advanced
// (structured-clone) serialization. Types only: both sides import it.

import type { TranslateFailure } from './evaluate.ts';

/** The variable that carries the worker's settings (JSON) into its environment. */
export const SETUP_ENV = 'TRANSLATE_WORKER_SETUP';

export interface WorkerSetup {
  /** A translated copy larger than this is refused as 'too-large' inside the worker. */
  maxBytes: number;
  /** JSONata's own evaluation timeout in ms: a safety net if turnout died without stopping the worker. */
  guardMs: number;
}

/** One message to translate along one chain. */
export interface JobRequest {
  id: number;
  from: number;
  to: number;
  /** The chain's steps as expression texts: the worker compiles each text once and keeps it. */
  steps: { from: number; to: number; text: string }[];
  payload: Uint8Array;
}

export type WorkerReply =
  /** Sent once, when the worker has loaded and can take jobs. */
  | { kind: 'ready' }
  /** The translated JSON as UTF-8. */
  | { kind: 'done'; id: number; bytes: Uint8Array }
  | { kind: 'failed'; id: number; reason: TranslateFailure; message: string };
