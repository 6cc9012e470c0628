// SQS client errors become BrokerErrors here, where they enter. The AWS SDK
// has already retried throttling, 5xx and network failures with backoff by
// the time an error reaches us, so what is left is either final (missing
// queue, credentials, a refused message) or an outage ('unavailable').

import { BrokerError, type BrokerErrorCode } from '../broker.ts';

const FORBIDDEN = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'MissingAuthenticationTokenException',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidSecurity',
  'KmsAccessDenied',
  'KmsDisabled',
  'KmsNotFound',
  'KmsInvalidState',
  'KmsInvalidKeyUsage',
  'CredentialsProviderError',
  'OptInRequired',
  'RequestExpired',
]);

const UNKNOWN_QUEUE = new Set(['QueueDoesNotExist', 'NonExistentQueue', 'QueueDeletedRecently', 'InvalidAddress']);

const TOO_LARGE = new Set(['BatchRequestTooLong', 'RequestEntityTooLarge']);

const INVALID = new Set([
  'InvalidParameterValue',
  'InvalidParameterCombination',
  'MissingParameter',
  'InvalidMessageContents',
  'InvalidAttributeName',
  'InvalidAttributeValue',
  'UnsupportedOperation',
  'InvalidBatchEntryId',
  'BatchEntryIdsNotDistinct',
  'TooManyEntriesInBatchRequest',
  'EmptyBatchRequest',
  'ValidationError',
  'ValidationException',
  'SerializationException',
]);

/** The short error code of an SDK error or a batch entry ("AWS.SimpleQueueService.NonExistentQueue" → "NonExistentQueue"). */
function codesOf(err: unknown): string[] {
  if (typeof err !== 'object' || err === null) return [];
  const e = err as { name?: unknown; Code?: unknown; code?: unknown; __type?: unknown };
  const out: string[] = [];
  for (const raw of [e.name, e.Code, e.code, e.__type]) {
    if (typeof raw !== 'string' || raw === '') continue;
    out.push(raw.replace(/^.*[.#]/, ''));
  }
  return out;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'Message' in err) return String((err as { Message: unknown }).Message);
  return String(err);
}

export function codeOf(err: unknown): BrokerErrorCode {
  const codes = codesOf(err);
  const text = messageOf(err);
  if (codes.some((c) => UNKNOWN_QUEUE.has(c))) return 'unknown-queue';
  if (codes.some((c) => FORBIDDEN.has(c))) return 'forbidden';
  if (codes.some((c) => TOO_LARGE.has(c))) return 'too-large';
  // SQS reports an oversized message as a plain InvalidParameterValue.
  if (/must be shorter than|too long|exceeds the (maximum|allowed) size/i.test(text)) return 'too-large';
  if (codes.some((c) => INVALID.has(c))) return 'invalid';
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  if (status === 401 || status === 403) return 'forbidden';
  if (status === 413) return 'too-large';
  // Throttling, 5xx, time-outs, refused connections, aborted requests: an outage.
  return 'unavailable';
}

/** Wraps any client error as a BrokerError with a message saying what we were doing. */
export function classify(err: unknown, doing: string): BrokerError {
  if (err instanceof BrokerError) return err;
  const code = codeOf(err);
  const why = messageOf(err);
  const hint =
    code === 'forbidden'
      ? ' (check the AWS credentials chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web identity or instance role, and the IAM policy)'
      : '';
  return new BrokerError(code, `SQS: ${doing} failed: ${why}${hint}`, { cause: err });
}

/** A receipt handle that no longer names an in-flight copy: the message was handed out again or is gone. */
export function isStaleReceipt(err: unknown): boolean {
  return codesOf(err).some((c) => c === 'ReceiptHandleIsInvalid' || c === 'MessageNotInflight' || c === 'InvalidIdFormat');
}
