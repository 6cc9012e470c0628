// Re-reads a file when its content changes. Polling the content (not
// fs.watch) is what survives Kubernetes ConfigMap updates, which swap a
// symlinked directory rather than writing the file.

import { readFile } from 'node:fs/promises';

export interface FileWatch {
  stop(): void;
}

export function watchFileContent(
  path: string,
  initial: string,
  onChange: (text: string) => void,
  onError: (err: unknown) => void,
  intervalMs = 1000,
): FileWatch {
  let last = initial;
  let busy = false;
  let lastError = '';
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readFile(path, 'utf8').then(
      (text) => {
        busy = false;
        lastError = '';
        if (text === last) return;
        last = text;
        onChange(text);
      },
      (err: unknown) => {
        busy = false;
        // Report a missing/unreadable file once, not every second.
        const msg = String(err);
        if (msg !== lastError) onError(err);
        lastError = msg;
      },
    );
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
