// kafkajs errors → BrokerError, classified where they enter. kafkajs wraps
// the protocol error that matters (e.g. UNKNOWN_TOPIC_OR_PARTITION) in
// retry and aggregate errors, so the whole chain is searched.

import { BrokerError, type BrokerErrorCode } from '../broker.ts';

const BY_TYPE: Record<string, BrokerErrorCode> = {
  UNKNOWN_TOPIC_OR_PARTITION: 'unknown-queue',
  INVALID_TOPIC_EXCEPTION: 'unknown-queue',
  MESSAGE_TOO_LARGE: 'too-large',
  RECORD_LIST_TOO_LARGE: 'too-large',
  INVALID_RECORD: 'invalid',
  CORRUPT_MESSAGE: 'invalid',
  INVALID_REQUIRED_ACKS: 'invalid',
  TOPIC_AUTHORIZATION_FAILED: 'forbidden',
  GROUP_AUTHORIZATION_FAILED: 'forbidden',
  CLUSTER_AUTHORIZATION_FAILED: 'forbidden',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'forbidden',
  SASL_AUTHENTICATION_FAILED: 'forbidden',
  ILLEGAL_SASL_STATE: 'forbidden',
  UNSUPPORTED_SASL_MECHANISM: 'forbidden',
};

const BY_NAME: Record<string, BrokerErrorCode> = {
  KafkaJSSASLAuthenticationError: 'forbidden',
};

/** Every error in a kafkajs error's cause chain (and aggregate members). */
function chain(err: unknown): { name?: string; type?: string; message?: string }[] {
  const out: { name?: string; type?: string; message?: string }[] = [];
  const seen = new Set<unknown>();
  const walk = (e: unknown): void => {
    if (e === null || typeof e !== 'object' || seen.has(e) || out.length > 20) return;
    seen.add(e);
    const x = e as { name?: unknown; type?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    out.push({
      name: typeof x.name === 'string' ? x.name : undefined,
      type: typeof x.type === 'string' ? x.type : undefined,
      message: typeof x.message === 'string' ? x.message : undefined,
    });
    walk(x.cause);
    if (Array.isArray(x.errors)) for (const inner of x.errors) walk(inner);
  };
  walk(err);
  return out;
}

/** The code for a kafkajs error; anything unrecognised is a connectivity problem worth retrying. */
export function codeOf(err: unknown): BrokerErrorCode {
  if (err instanceof BrokerError) return err.code;
  for (const e of chain(err)) {
    const code = (e.type && BY_TYPE[e.type]) || (e.name && BY_NAME[e.name]);
    if (code) return code;
  }
  return 'unavailable';
}

/** Wraps a kafkajs error as a BrokerError saying what was being done. */
export function classify(err: unknown, what: string): BrokerError {
  if (err instanceof BrokerError) return err;
  const parts = chain(err);
  const detail = parts.map((e) => e.type ?? e.message ?? e.name).filter((s): s is string => !!s);
  const text = [...new Set(detail)].slice(0, 3).join(': ') || String(err);
  return new BrokerError(codeOf(err), `${what}: ${text}`, { cause: err });
}

/** Whether an error is the group telling this member to rejoin (not a fault). */
export function isRebalance(err: unknown): boolean {
  return chain(err).some((e) => e.type === 'REBALANCE_IN_PROGRESS' || e.type === 'ILLEGAL_GENERATION' || e.type === 'UNKNOWN_MEMBER_ID');
}
