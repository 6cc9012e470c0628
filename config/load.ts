// Turns flags and environment into a validated Config. Flags win over
// variables, variables over defaults. Every failure is a ConfigError that
// names the variable (and the flag) and what is allowed.

import { readFileSync } from 'node:fs';
import { capabilitiesOf } from '../adapters/capabilities.ts';
import { expandTarget } from '../lib/targets.ts';
import { ConfigError } from './errors.ts';
import { envName, parseOption, schema, type Config, type OptionName } from './schema.ts';

export type FlagValues = Partial<Record<OptionName, string>>;

export interface LoadedConfig {
  config: Config;
  /** Non-fatal remarks for the start-up log (e.g. unknown TURNOUT_ variables). */
  warnings: string[];
}

const optionNames = Object.keys(schema) as OptionName[];

export function loadConfig(flags: FlagValues, env: NodeJS.ProcessEnv): LoadedConfig {
  const warnings: string[] = [];
  const out: Record<string, unknown> = {};
  for (const name of optionNames) {
    const spec = schema[name];
    const variable = envName(spec.flag);
    const flagValue = flags[name];
    let raw: string | undefined;
    let from: string;
    if (flagValue !== undefined) {
      raw = flagValue;
      from = `--${spec.flag}`;
    } else if (env[variable] !== undefined && env[variable] !== '') {
      raw = env[variable];
      from = variable;
    } else {
      raw = 'default' in spec ? spec.default : undefined;
      from = `${variable} (default)`;
    }
    out[name] = raw === undefined ? undefined : parseOption(name, raw, from);
  }
  const known = new Set(optionNames.map((n) => envName(schema[n].flag)));
  for (const key of Object.keys(env)) {
    // Kubernetes service links for a Service named "turnout" inject
    // TURNOUT_SERVICE_HOST, TURNOUT_PORT_8787_TCP… — harmless, but a typo in
    // a real option would be silently ignored, so name it.
    if (key.startsWith('TURNOUT_') && !known.has(key) && !/^TURNOUT_(SERVICE_|PORT_\d)/.test(key)) {
      warnings.push(`unknown variable ${key} is ignored${suggest(key, known)}`);
    }
  }
  const config = out as Config;
  crossCheck(config);
  return { config, warnings };
}

function suggest(key: string, known: Set<string>): string {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestScore) {
      bestScore = d;
      best = k;
    }
  }
  return best !== undefined && bestScore <= 3 ? ` (did you mean ${best}?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

/** Contradictory or incomplete combinations. */
function crossCheck(c: Config): void {
  const sources = c.source ?? [];
  const routes = c.blue !== undefined || c.green !== undefined;
  if (sources.length > 0 && c.appUrl === undefined && !routes) {
    throw new ConfigError(
      'TURNOUT_SOURCE is set but consumed messages have nowhere to go: set TURNOUT_APP_URL (consumer role) or TURNOUT_BLUE/TURNOUT_GREEN (router role)',
      'TURNOUT_SOURCE',
    );
  }
  const broker = capabilitiesOf(c.broker.kind);
  if (sources.length > 0 && c.dlq === undefined && !broker.nativeDeadLetter) {
    throw new ConfigError(`TURNOUT_DLQ is required with TURNOUT_BROKER=${broker.setting}: ${broker.name} has no dead-letter mechanism of its own`, 'TURNOUT_DLQ');
  }
  for (const source of sources) {
    if (c.dlq !== undefined && expandTarget(c.dlq, source) === source) {
      throw new ConfigError(`TURNOUT_DLQ expands to the source "${source}" itself; dead-lettered messages would loop`, 'TURNOUT_DLQ');
    }
    if (c.appUrl === undefined) {
      for (const [name, t] of [['TURNOUT_BLUE', c.blue], ['TURNOUT_GREEN', c.green]] as const) {
        if (t !== undefined && expandTarget(t, source) === source) {
          throw new ConfigError(`${name} expands to the source "${source}" itself; routed messages would loop`, name);
        }
      }
    }
  }
  // node:http refuses a headers timeout longer than the request timeout (the headers are part of the request).
  if (c.httpHeadersTimeout > c.httpRequestTimeout) {
    throw new ConfigError(`TURNOUT_HTTP_HEADERS_TIMEOUT (${c.httpHeadersTimeout} ms) must not exceed TURNOUT_HTTP_REQUEST_TIMEOUT (${c.httpRequestTimeout} ms): the headers are part of the request`, 'TURNOUT_HTTP_HEADERS_TIMEOUT');
  }
  if (c.blue !== undefined && c.green !== undefined && c.blue === c.green) {
    throw new ConfigError('TURNOUT_BLUE and TURNOUT_GREEN name the same target', 'TURNOUT_GREEN');
  }
  if (c.broker.kind === 'kafka') kafkaCrossCheck(c);
}

/** The Kafka settings that only make sense together (adapters/kafka/options.ts relies on them). */
function kafkaCrossCheck(c: Config): void {
  const sources = c.source ?? [];
  if (sources.length > 1 && !c.kafkaDeferTopic.includes('{source}')) {
    throw new ConfigError(
      `TURNOUT_KAFKA_DEFER_TOPIC=${c.kafkaDeferTopic} would be shared by ${sources.length} sources; include {source}`,
      'TURNOUT_KAFKA_DEFER_TOPIC',
    );
  }
  for (const source of sources) {
    if (expandTarget(c.kafkaDeferTopic, source) === source) {
      throw new ConfigError(`TURNOUT_KAFKA_DEFER_TOPIC expands to the source "${source}" itself`, 'TURNOUT_KAFKA_DEFER_TOPIC');
    }
  }
  // kafkajs heartbeats between fetches: a fetch held for a third of the session leaves room for two more tries.
  if (c.kafkaFetchWait * 3 > c.kafkaSessionTimeout) {
    throw new ConfigError(
      `TURNOUT_KAFKA_FETCH_WAIT=${c.kafkaFetchWait} ms is more than a third of TURNOUT_KAFKA_SESSION_TIMEOUT=${c.kafkaSessionTimeout} ms; heartbeats go out between fetches: lower it or raise the session timeout`,
      'TURNOUT_KAFKA_FETCH_WAIT',
    );
  }
  if ((c.kafkaTlsCertFile === undefined) !== (c.kafkaTlsKeyFile === undefined)) {
    const missing = c.kafkaTlsCertFile === undefined ? 'TURNOUT_KAFKA_TLS_CERT_FILE' : 'TURNOUT_KAFKA_TLS_KEY_FILE';
    throw new ConfigError(`mutual TLS needs both TURNOUT_KAFKA_TLS_CERT_FILE and TURNOUT_KAFKA_TLS_KEY_FILE; ${missing} is not set`, missing);
  }
  for (const [variable, path] of [
    ['TURNOUT_KAFKA_TLS_CA_FILE', c.kafkaTlsCaFile],
    ['TURNOUT_KAFKA_TLS_CERT_FILE', c.kafkaTlsCertFile],
    ['TURNOUT_KAFKA_TLS_KEY_FILE', c.kafkaTlsKeyFile],
  ] as const) {
    if (path === undefined) continue;
    try {
      readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${variable}=${path} cannot be read: ${(err as Error).message}`, variable);
    }
  }
  if (c.kafkaSaslMechanism === undefined) {
    if (c.kafkaUsername !== undefined || c.kafkaPassword !== undefined) {
      throw new ConfigError('TURNOUT_KAFKA_USERNAME/PASSWORD are set but TURNOUT_KAFKA_SASL_MECHANISM is not (plain, scram-sha-256 or scram-sha-512)', 'TURNOUT_KAFKA_SASL_MECHANISM');
    }
    return;
  }
  if (c.kafkaUsername === undefined) throw new ConfigError(`TURNOUT_KAFKA_SASL_MECHANISM=${c.kafkaSaslMechanism} needs TURNOUT_KAFKA_USERNAME`, 'TURNOUT_KAFKA_USERNAME');
  if (c.kafkaPassword === undefined) throw new ConfigError(`TURNOUT_KAFKA_SASL_MECHANISM=${c.kafkaSaslMechanism} needs TURNOUT_KAFKA_PASSWORD`, 'TURNOUT_KAFKA_PASSWORD');
}
