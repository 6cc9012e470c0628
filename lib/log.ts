import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout (the container's log stream). One logger per process,
 * passed down. `scrub` runs over every finished line: it removes the
 * configuration's secrets (config/secrets.ts) wherever a library's error put
 * them (a URL, an error's cause), which no list of redaction paths could
 * foresee.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, scrub?: (line: string) => string): Logger {
  return pino(
    {
      level,
      base: { svc: 'turnout' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Known places first (cheap, and right even without scrub): credentials in request-like objects.
      redact: { paths: ['password', '*.password', 'headers.authorization', '*.headers.authorization', 'sasl.password'], censor: '[redacted]' },
      ...(scrub ? { hooks: { streamWrite: scrub } } : {}),
    },
    destination ?? process.stdout,
  );
}

/**
 * Sends process warnings through the JSON log instead of Node's plain-text
 * line on stderr, which log pipelines that parse every line choke on (Node 24
 * raised a TimeoutNegativeWarning for kafkajs 2.2.4's request queue until
 * adapters/kafka/idle-loop.ts replaced it). For the process entry point only:
 * it replaces Node's own printer.
 */
export function logProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    logger.warn({ warning: w.name, ...(w.code !== undefined ? { code: w.code } : {}) }, `process warning: ${w.message}`);
  });
}
