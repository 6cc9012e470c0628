import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout (the container's log stream). One logger per process, passed down. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { svc: 'turnout' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination ?? process.stdout,
  );
}

/**
 * Sends process warnings through the JSON log instead of Node's plain-text
 * line on stderr, which log pipelines that parse every line choke on. Node 24
 * raises one, for instance, for kafkajs 2.2.4's negative setTimeout in its
 * request queue (TimeoutNegativeWarning; harmless, Node waits 1 ms). For the
 * process entry point only: it replaces Node's own printer.
 */
export function logProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    logger.warn({ warning: w.name, ...(w.code !== undefined ? { code: w.code } : {}) }, `process warning: ${w.message}`);
  });
}
