import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout (the container's log stream). One logger per process, passed down. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { svc: 'turnout' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination ?? process.stdout,
  );
}
