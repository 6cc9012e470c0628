// Durations on the command line: 500ms, 30s, 5m, 1h; a bare number is seconds.

import { ConfigError } from '../../config/errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(raw: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) throw new ConfigError(`${flag} ${JSON.stringify(raw)} is not a duration (e.g. 500ms, 30s, 5m, 1h; a bare number is seconds)`, flag);
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
}
