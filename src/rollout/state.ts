// The controller's state on disk (plan.stateFile) and the weight file:
// written atomically (temporary file, fsync, rename) so a SIGKILL at any
// moment leaves either the old or the new content, never a torn one.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Status } from './status.ts';

export function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export interface SavedState {
  format: 1;
  /** The plan this state belongs to; another plan starts afresh. */
  planDigest: string;
  /** A pause asked for by hand; a pause for missing data is not (it resumes when data is back). */
  manualPause: boolean;
  status: Status;
}

export function loadState(file: string): SavedState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const s = JSON.parse(text) as SavedState;
  if (s.format !== 1 || typeof s.planDigest !== 'string' || typeof s.status?.phase !== 'string') throw new Error(`${file} is not a turnout rollout state file`);
  return s;
}

export function saveState(file: string, state: SavedState): void {
  writeAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}
