// `GET /v1/info`: what this sidecar is, for `turnout check --fleet`. Only
// what a fleet check needs and nothing secret: the broker is named by kind
// and address, never with its credentials or URL parameters.

import { createHash } from 'node:crypto';
import type { BrokerUrl, Config } from '../../config/schema.ts';
import type { TranslatorSet } from '../translators.ts';

export type Role = 'consumer' | 'router' | 'producer';

export interface SidecarInfo {
  /** The schema version this sidecar stamps on what it publishes (TURNOUT_PRODUCE_VERSION), null when none. */
  version: number | null;
  /** consumer: delivers to an app; router: routes to blue/green; producer: consumes nothing (publish-only). */
  role: Role;
  broker: string;
  sources: string[];
  versionHeader: string;
  defaultVersion: number;
  accept: number[] | 'all';
  translators: { steps: string[]; digest: string };
  routes: { blue: string | null; green: string | null; weight: number } | null;
  dlq: string | null;
}

export function roleOf(config: Config): Role {
  if ((config.source ?? []).length === 0) return 'producer';
  return config.appUrl !== undefined ? 'consumer' : 'router';
}

/** The broker without credentials or query: amqp://host:port/vhost, kafka://host:port,…, sqs, memory. */
export function describeBroker(broker: BrokerUrl): string {
  switch (broker.kind) {
    case 'memory':
    case 'sqs':
      return broker.kind;
    case 'kafka':
      return `kafka://${broker.brokers.join(',')}`;
    case 'amqp': {
      const u = new URL(broker.url);
      return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    }
  }
}

/** The same steps (names and expressions) give the same digest, whatever their order in the file. */
export function translatorsDigest(set: TranslatorSet): string {
  const h = createHash('sha256');
  for (const line of set.steps.map((s) => `${s.from}->${s.to}\n${s.text}\n`).sort()) h.update(line);
  return `sha256:${h.digest('hex')}`;
}

export function sidecarInfo(config: Config, translators: TranslatorSet, weight: number): SidecarInfo {
  const routed = config.blue !== undefined || config.green !== undefined;
  return {
    version: config.produceVersion ?? null,
    role: roleOf(config),
    broker: describeBroker(config.broker),
    sources: [...(config.source ?? [])],
    versionHeader: config.versionHeader,
    defaultVersion: config.defaultVersion,
    accept: config.accept === null ? 'all' : [...config.accept],
    translators: { steps: translators.steps.map((s) => `${s.from}->${s.to}`), digest: translatorsDigest(translators) },
    routes: routed ? { blue: config.blue ?? null, green: config.green ?? null, weight } : null,
    dlq: config.dlq ?? null,
  };
}
