// The version gate: for each consumed message, pass it, translate it along a
// chain to a version the app accepts, or defer it for a consumer that can.

import type { Chain, TranslatorSet } from './translators.ts';
import { headerValue } from '../lib/headers.ts';
import { parseVersion } from '../lib/version.ts';

export type GateDecision =
  | { kind: 'pass'; version: number }
  | { kind: 'translate'; version: number; chain: Chain }
  | { kind: 'defer'; version: number }
  /** The header is there but is not a version at all: no consumer can help. */
  | { kind: 'invalid'; raw: string };

export interface GateOptions {
  versionHeader: string;
  defaultVersion: number;
  /** null = the app accepts every version. */
  accept: readonly number[] | null;
}

export function decide(headers: Record<string, string>, options: GateOptions, translators: TranslatorSet): GateDecision {
  const raw = headerValue(headers, options.versionHeader);
  let version: number;
  if (raw === undefined || raw === '') {
    version = options.defaultVersion;
  } else {
    const v = parseVersion(raw);
    if (v === undefined) return { kind: 'invalid', raw };
    version = v;
  }
  if (options.accept === null || options.accept.includes(version)) return { kind: 'pass', version };
  const chain = translators.chainFor(version, options.accept);
  return chain ? { kind: 'translate', version, chain } : { kind: 'defer', version };
}
