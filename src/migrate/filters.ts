// `turnout move --where`: reason=…, version=…, header:NAME=VALUE. Several
// filters must all hold. A message's reason, version and source are also
// what the summary counts by, so they are read here once.

import { ConfigError } from '../../config/errors.ts';
import { headerValue } from '../../lib/headers.ts';
import { parseVersion } from '../../lib/version.ts';

export const REASON_HEADER = 'x-turnout-dlq-reason';
export const SOURCE_HEADER = 'x-turnout-source';

export type Filter =
  | { kind: 'reason'; value: string }
  | { kind: 'version'; value: number }
  | { kind: 'header'; name: string; value: string };

/** How a message is counted: its dead-letter reason, version and origin ("none" when it has none). */
export interface Facts {
  reason: string;
  /** The version header's value as a version, the default version when absent, or the raw text when it is not a version. */
  version: string;
  source: string;
}

export interface VersionRule {
  versionHeader: string;
  defaultVersion: number;
}

export function parseWhere(raw: string): Filter {
  const eq = raw.indexOf('=');
  const bad = (why: string): never => {
    throw new ConfigError(`--where ${JSON.stringify(raw)}: ${why} (allowed: reason=REASON, version=N, header:NAME=VALUE)`, '--where');
  };
  if (eq <= 0) bad('needs NAME=VALUE');
  const name = raw.slice(0, eq).trim();
  const value = raw.slice(eq + 1);
  if (name === 'reason') {
    if (value === '') bad('the reason is empty');
    return { kind: 'reason', value };
  }
  if (name === 'version') {
    const v = parseVersion(value);
    if (v === undefined) bad(`"${value}" is not a version`);
    return { kind: 'version', value: v as number };
  }
  if (name.startsWith('header:') && name.length > 'header:'.length) return { kind: 'header', name: name.slice('header:'.length).trim(), value };
  return bad(`"${name}" is not a filter`);
}

export function factsOf(headers: Record<string, string>, rule: VersionRule): Facts {
  const raw = headerValue(headers, rule.versionHeader);
  let version: string;
  if (raw === undefined || raw === '') version = String(rule.defaultVersion);
  else version = String(parseVersion(raw) ?? raw);
  return {
    reason: headerValue(headers, REASON_HEADER) ?? 'none',
    version,
    source: headerValue(headers, SOURCE_HEADER) ?? 'none',
  };
}

export function matches(filters: readonly Filter[], headers: Record<string, string>, facts: Facts): boolean {
  return filters.every((f) => {
    switch (f.kind) {
      case 'reason':
        return facts.reason === f.value;
      case 'version':
        return facts.version === String(f.value);
      case 'header':
        return headerValue(headers, f.name) === f.value;
    }
  });
}
