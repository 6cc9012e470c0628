// The one configuration schema: every option's variable, flag, default, doc
// and parser live here. `--help`, the README reference table (checked by a
// test) and the validation errors are all derived from this list.

import { ConfigError } from './errors.ts';
import { parsePercent, PERCENT_ALLOWED } from './percent.ts';
import type { RouteKey } from '../lib/route-key.ts';
import { parseVersion } from '../lib/version.ts';
import { isSecretOption, redactUrls, shownValue } from './redact.ts';

export interface OptionSpec<T> {
  /** kebab-case flag name; the variable is TURNOUT_ + upper snake case. */
  readonly flag: string;
  readonly doc: string;
  /** default as the user would write it; undefined = unset. */
  readonly default?: string;
  /** what is allowed, for error messages and docs. */
  readonly allowed: string;
  readonly parse: (raw: string) => T;
  /** group shown in --help and the README. */
  readonly group: 'broker' | 'routing' | 'versions' | 'delivery' | 'http' | 'runtime';
  /** The value is never shown: not in errors, logs or `turnout check` (config/secrets.ts). */
  readonly secret?: boolean;
}

const bad = (what: string): never => {
  throw new Error(what);
};

const str = (raw: string): string => {
  const v = raw.trim();
  if (v === '') bad('must not be empty');
  return v;
};

const list = (raw: string): string[] => {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) bad('must name at least one item');
  return items;
};

/**
 * A whole number from `min` to `max`: the parser and its "allowed" text
 * (`min–max unit`) from the one pair of bounds. Spread into an option.
 */
const int = (min: number, max: number, unit?: string): { parse: (raw: string) => number; allowed: string } => ({
  allowed: `${min}–${max}${unit === undefined ? '' : ` ${unit}`}`,
  parse: (raw: string): number => {
    const v = raw.trim();
    if (!/^-?\d+$/.test(v)) bad(`must be a whole number from ${min} to ${max}`);
    const n = Number(v);
    if (n < min || n > max) bad(`must be a whole number from ${min} to ${max}`);
    return n;
  },
});

const percent = (raw: string): number => parsePercent(raw) ?? bad(`must be ${PERCENT_ALLOWED}`);

const version = (raw: string): number => {
  const v = parseVersion(raw);
  if (v === undefined) bad('must be a positive whole number, e.g. 2 or v2');
  return v as number;
};

export type BrokerUrl =
  | { kind: 'memory' }
  | { kind: 'amqp'; url: string }
  | { kind: 'sqs' }
  | { kind: 'kafka'; brokers: string[] };

const broker = (raw: string): BrokerUrl => {
  const v = raw.trim();
  if (v === 'memory') return { kind: 'memory' };
  if (v === 'sqs') return { kind: 'sqs' };
  if (/^amqps?:\/\/.+/.test(v)) {
    try {
      new URL(v);
    } catch {
      bad('is not a valid amqp:// URL');
    }
    return { kind: 'amqp', url: v };
  }
  const k = /^kafka:\/\/(.+)$/.exec(v);
  if (k) {
    const brokers = list(k[1] ?? '');
    for (const b of brokers) {
      // Never echo what may be credentials (kafka://user:password@host:port is not a Kafka form).
      if (b.includes('@')) bad('kafka brokers are host:port without user:password@ (set TURNOUT_KAFKA_USERNAME and TURNOUT_KAFKA_PASSWORD)');
      if (!/^[^\s:/]+:\d{1,5}$/.test(b)) bad(`kafka broker "${b}" must be host:port`);
    }
    return { kind: 'kafka', brokers };
  }
  return bad('must be memory, amqp://…, amqps://…, sqs or kafka://host:port[,host:port…]');
};


const routeKey = (raw: string): RouteKey => {
  const v = raw.trim();
  if (v === 'key') return { kind: 'key' };
  if (v.startsWith('header:') && v.length > 7) return { kind: 'header', name: v.slice(7).toLowerCase() };
  if (v.startsWith('json:') && v.length > 5) {
    const path = v.slice(5).split('.');
    if (path.some((p) => p === '')) bad('json: path must be dotted names, e.g. json:customer.id');
    return { kind: 'json', path };
  }
  return bad('must be key, header:NAME or json:dotted.path');
};

const portNumber = int(0, 65535);

/** A port number, with a hint for the Kubernetes service link that also sets TURNOUT_PORT. */
const port = { allowed: portNumber.allowed, parse: (raw: string): number => {
  if (/^tcp:\/\//.test(raw.trim())) {
    bad('looks like a Kubernetes service link (a Service named "turnout" injects TURNOUT_PORT=tcp://…); set enableServiceLinks: false in the pod spec');
  }
  return portNumber.parse(raw);
} };

const logLevel = (raw: string): string => {
  const v = raw.trim().toLowerCase();
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (!levels.includes(v)) bad(`must be one of ${levels.join(', ')}`);
  return v;
};

const accept = (raw: string): number[] | null => {
  if (raw.trim().toLowerCase() === 'all') return null;
  return list(raw).map((item) => version(item));
};

const url = (raw: string): string => {
  const v = raw.trim();
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return bad('must be an http:// or https:// URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') bad('must be an http:// or https:// URL');
  return v;
};

// --- Kafka client settings (adapters/kafka/options.ts reads them) ---
const bool = (raw: string): boolean => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return bad('must be true or false');
};

const saslMechanism = (raw: string): 'plain' | 'scram-sha-256' | 'scram-sha-512' => {
  const v = raw.trim().toLowerCase();
  if (v === 'plain' || v === 'scram-sha-256' || v === 'scram-sha-512') return v;
  return bad('must be plain, scram-sha-256 or scram-sha-512');
};

/** Secrets are taken as written (spaces included); only empty is refused. */
const secret = (raw: string): string => (raw === '' ? bad('must not be empty') : raw);

/** Every option. Order is the order of --help and the README table. */
export const schema = {
  broker: { flag: 'broker', group: 'broker', default: 'memory', parse: broker,
    allowed: 'memory | amqp://… | amqps://… | sqs | kafka://host:port[,host:port…]',
    doc: 'Broker to connect to. sqs uses the AWS SDK default chain (AWS_REGION, AWS_ENDPOINT_URL_SQS honoured).' },
  source: { flag: 'source', group: 'broker', parse: list, allowed: 'comma-separated queue/topic names',
    doc: 'Queue(s)/topic(s) to consume. Unset: nothing is consumed (publish-only sidecar).' },
  group: { flag: 'group', group: 'broker', default: 'turnout-{source}', parse: str, allowed: 'a consumer group name; may contain {source}',
    doc: 'Kafka consumer group (other brokers ignore it).' },
  appUrl: { flag: 'app-url', group: 'delivery', parse: url, allowed: 'an http:// or https:// URL',
    doc: 'Deliver consumed messages to the app by HTTP POST here. Unset with TURNOUT_BLUE/GREEN set: consumed messages are routed instead (router role).' },
  blue: { flag: 'blue', group: 'routing', parse: str, allowed: 'a queue/topic name; may contain {source}',
    doc: 'Blue (legacy) route target.' },
  green: { flag: 'green', group: 'routing', parse: str, allowed: 'a queue/topic name; may contain {source}',
    doc: 'Green (new) route target.' },
  greenWeight: { flag: 'green-weight', group: 'routing', default: '0', parse: percent, allowed: '0–100, decimals allowed',
    doc: 'Percent of route keys sent to green.' },
  weightFile: { flag: 'weight-file', group: 'routing', parse: str, allowed: 'a file path',
    doc: 'File holding the green weight (a number 0–100); re-read on change, overrides TURNOUT_GREEN_WEIGHT.' },
  routeKey: { flag: 'route-key', group: 'routing', default: 'key', parse: routeKey, allowed: 'key | header:NAME | json:dotted.path',
    doc: 'What makes routing sticky: the message key (else its id), a header, or a JSON field of the payload (else the id).' },
  dlq: { flag: 'dlq', group: 'delivery', parse: str, allowed: 'a queue/topic name; may contain {source}',
    doc: 'Dead-letter target. Unset: the broker\'s own dead-letter mechanism (AMQP reject, SQS redrive); required for Kafka and the embedded broker.' },
  versionHeader: { flag: 'version-header', group: 'versions', default: 'x-schema-version', parse: (r: string) => str(r).toLowerCase(), allowed: 'a header name',
    doc: 'Header carrying the schema version.' },
  accept: { flag: 'accept', group: 'versions', default: 'all', parse: accept, allowed: 'all, or comma-separated versions, e.g. 2 or 1,2',
    doc: 'Versions the local app accepts.' },
  defaultVersion: { flag: 'default-version', group: 'versions', default: '1', parse: version, allowed: 'a positive whole number (v prefix allowed)',
    doc: 'Version assumed when the header is absent.' },
  produceVersion: { flag: 'produce-version', group: 'versions', parse: version, allowed: 'a positive whole number (v prefix allowed)',
    doc: 'Version stamped on messages published through turnout that carry none.' },
  translators: { flag: 'translators', group: 'versions', parse: str, allowed: 'a YAML or JSON file path',
    doc: 'File of JSONata translation steps ("1->2": expression); re-read on change.' },
  translateTimeout: { flag: 'translate-timeout', group: 'versions', default: '1000', ...int(1, 600000, 'ms'),
    doc: 'Budget per message for its whole translation chain, which runs in a separate worker process. A translation still running then is stopped and the message dead-lettered (translate-error, "timed out after N ms"); a translated copy over TURNOUT_MAX_MESSAGE_BYTES is dead-lettered as too-large.' },
  maxAttempts: { flag: 'max-attempts', group: 'delivery', default: '5', ...int(1, 1000),
    doc: 'Delivery attempts before dead-lettering (max-attempts).' },
  retryBackoff: { flag: 'retry-backoff', group: 'delivery', default: '200', ...int(0, 30000, 'ms'),
    doc: 'First retry delay in ms; doubles each attempt, jittered, capped at 30 s.' },
  deferDelay: { flag: 'defer-delay', group: 'delivery', default: '30000', ...int(0, 43200000, 'ms'),
    doc: 'Ms before a deferred message is seen again.' },
  maxDeferrals: { flag: 'max-deferrals', group: 'delivery', default: '20', ...int(0, 100000),
    doc: 'Deferrals before dead-lettering (unsupported-version).' },
  concurrency: { flag: 'concurrency', group: 'delivery', default: '16', ...int(1, 10000),
    doc: 'Messages in flight at once (also the broker prefetch).' },
  deliveryTimeout: { flag: 'delivery-timeout', group: 'delivery', default: '900000', ...int(1, 43200000, 'ms'),
    doc: 'Ms to wait for the app per attempt.' },
  maxMessageBytes: { flag: 'max-message-bytes', group: 'delivery', default: '262144', ...int(1, 104857600, 'bytes'),
    doc: 'Largest payload accepted by /v1/publish (413 above) and delivered from a source (dead-lettered as too-large above).' },
  drainTimeout: { flag: 'drain-timeout', group: 'runtime', default: '30000', ...int(0, 86400000, 'ms'),
    doc: 'Ms to finish in-flight work after SIGTERM/SIGINT; what is unfinished then goes back to the broker unacknowledged.' },
  port: { flag: 'port', group: 'http', default: '8787', ...port,
    doc: 'HTTP port (health, metrics, publish, admin).' },
  host: { flag: 'host', group: 'http', default: '0.0.0.0', parse: str, allowed: 'an address to bind',
    doc: 'HTTP bind address.' },
  adminToken: { flag: 'admin-token', group: 'http', parse: str, secret: true, allowed: 'a secret string',
    doc: 'Bearer token for admin writes (PUT /v1/routes/green-weight). Unset: admin writes are disabled (403).' },
  publishToken: { flag: 'publish-token', group: 'http', parse: str, allowed: 'a secret string',
    doc: 'Bearer token a peer that is not on a loopback address must send to POST /v1/publish and /v1/publish/{queue} (403 without it). Unset: only loopback peers (the pod\'s own containers) may publish.' },
  publishQueues: { flag: 'publish-queues', group: 'http', default: '*', parse: list,
    allowed: 'comma-separated queue names or globs (* any run of characters, ? one character), e.g. orders,response_*',
    doc: 'Queues POST /v1/publish/{queue} may reach (403 for any other). `*`: any. POST /v1/publish is not limited: it goes to the configured targets.' },
  httpHeadersTimeout: { flag: 'http-headers-timeout', group: 'http', default: '10000', ...int(100, 600000, 'ms'),
    doc: 'Ms a client has to send a request line and its headers; a slower one (slow-loris) gets 408 and is disconnected. At most TURNOUT_HTTP_REQUEST_TIMEOUT.' },
  httpRequestTimeout: { flag: 'http-request-timeout', group: 'http', default: '60000', ...int(100, 3600000, 'ms'),
    doc: 'Ms a client has to send a whole request, body included (408 and disconnected after). The time turnout takes to answer (the broker\'s confirm) does not count.' },
  httpMaxHeaders: { flag: 'http-max-headers', group: 'http', default: '200', ...int(1, 10000),
    doc: 'Most header lines in a request (431 above). Publish requests carry the message headers as x-* headers.' },
  httpMaxHeaderBytes: { flag: 'http-max-header-bytes', group: 'http', default: '16384', ...int(1024, 1048576, 'bytes'),
    doc: 'Largest request line plus headers, in bytes (431 above).' },
  httpMaxConnections: { flag: 'http-max-connections', group: 'http', default: '1024', ...int(1, 100000),
    doc: 'Open HTTP connections served at once. A connection opened past it gets 503 and is closed (GET /healthz and /readyz are still answered, so a flood does not fail the probes); 64 more past that are closed at once.' },
  logLevel: { flag: 'log-level', group: 'runtime', default: 'info', parse: logLevel, allowed: 'trace, debug, info, warn, error, fatal, silent',
    doc: 'Log level; logs are JSON lines on stdout.' },
  kafkaSaslMechanism: { flag: 'kafka-sasl-mechanism', group: 'broker', parse: saslMechanism, allowed: 'plain | scram-sha-256 | scram-sha-512',
    doc: 'Kafka SASL mechanism (with TURNOUT_KAFKA_USERNAME and TURNOUT_KAFKA_PASSWORD). Unset: no SASL.' },
  kafkaUsername: { flag: 'kafka-username', group: 'broker', parse: secret, allowed: 'a SASL user name',
    doc: 'Kafka SASL user name.' },
  kafkaPassword: { flag: 'kafka-password', group: 'broker', parse: secret, secret: true, allowed: 'a SASL password',
    doc: 'Kafka SASL password (prefer a Kubernetes secret mapped to this variable over the flag).' },
  kafkaTls: { flag: 'kafka-tls', group: 'broker', default: 'false', parse: bool, allowed: 'true | false',
    doc: 'Connect to Kafka over TLS (system CAs unless TURNOUT_KAFKA_TLS_CA_FILE). Setting any TURNOUT_KAFKA_TLS_*_FILE turns TLS on.' },
  kafkaTlsCaFile: { flag: 'kafka-tls-ca-file', group: 'broker', parse: str, allowed: 'a PEM file path',
    doc: 'CA bundle (PEM) that signed the Kafka brokers\' certificates.' },
  kafkaTlsCertFile: { flag: 'kafka-tls-cert-file', group: 'broker', parse: str, allowed: 'a PEM file path',
    doc: 'Client certificate (PEM) for Kafka mutual TLS; needs TURNOUT_KAFKA_TLS_KEY_FILE.' },
  kafkaTlsKeyFile: { flag: 'kafka-tls-key-file', group: 'broker', parse: str, allowed: 'a PEM file path',
    doc: 'Client private key (PEM) for Kafka mutual TLS.' },
  kafkaIdempotent: { flag: 'kafka-idempotent', group: 'broker', default: 'true', parse: bool, allowed: 'true | false',
    doc: 'Idempotent Kafka producer (acks from all in-sync replicas either way). false for clusters that refuse InitProducerId (missing IDEMPOTENT_WRITE ACL, librdkafka mock cluster).' },
  kafkaSessionTimeout: { flag: 'kafka-session-timeout', group: 'broker', default: '30000', ...int(1000, 3600000, 'ms'),
    doc: 'Kafka consumer group session timeout. Heartbeats run independently of message processing, so long deliveries do not need a larger value.' },
  kafkaFetchWait: { flag: 'kafka-fetch-wait', group: 'broker', default: '100', ...int(10, 10000, 'ms'),
    doc: 'Longest time a Kafka broker holds a fetch that finds nothing new (the consumer\'s max wait). It also bounds how long a partition whose buffer filled waits to be fetched again once it has room, so it caps how fast a backlog drains; longer: fewer fetch requests from an idle sidecar (1000 / this value per second per broker). Below a third of TURNOUT_KAFKA_SESSION_TIMEOUT (heartbeats go out between fetches).' },
  kafkaDeferTopic: { flag: 'kafka-defer-topic', group: 'broker', default: '{source}.turnout-defer', parse: str, allowed: 'a topic name; may contain {source}',
    doc: 'Kafka topic holding deferred messages until they are due (created like the source when missing).' },
  sqsWaitTime: { flag: 'sqs-wait-time', group: 'broker', default: '20', ...int(0, 20, 's'),
    doc: 'SQS long-poll wait per ReceiveMessage. Shorter: faster shutdown of an idle sidecar (it lets polls under way answer rather than cut them off, which could hide messages), more requests.' },
  sqsVisibilityExtension: { flag: 'sqs-visibility-extension', group: 'broker', ...int(5, 43200, 's'),
    doc: 'Seconds an SQS message is kept invisible per extension while the app works on it (renewed at half time, up to the 12 h SQS limit). Unset: the queue\'s own VisibilityTimeout (at least 5 s).' },
} as const satisfies Record<string, OptionSpec<unknown>>;

export type Schema = typeof schema;
export type OptionName = keyof Schema;

type Parsed<S> = S extends { parse: (raw: string) => infer T } ? T : never;
type HasDefault<S> = S extends { default: string } ? true : false;

/** The validated configuration: options with a default are always set. */
export type Config = {
  -readonly [K in OptionName]: HasDefault<Schema[K]> extends true ? Parsed<Schema[K]> : Parsed<Schema[K]> | undefined;
};

export const envName = (flag: string): string => `TURNOUT_${flag.toUpperCase().replace(/-/g, '_')}`;

export function parseOption<K extends OptionName>(name: K, raw: string, from: string): Parsed<Schema[K]> {
  const spec: OptionSpec<unknown> = schema[name];
  try {
    return spec.parse(raw) as Parsed<Schema[K]>;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const allowed = why.includes(spec.allowed) ? '' : ` (allowed: ${spec.allowed})`;
    // Secrets are not echoed, and a URL's password is masked (TURNOUT_BROKER=amqp://user:…@host).
    throw new ConfigError(`${from}=${shownValue(isSecretOption(name, spec.secret), raw)} ${redactUrls(why)}${allowed}`, envName(spec.flag));
  }
}
