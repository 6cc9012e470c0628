// Tunables of the SQS adapter. The defaults are what production wants; tests
// shorten some of them. waitTimeSeconds and visibilityExtensionSeconds are
// also TURNOUT_SQS_WAIT_TIME and TURNOUT_SQS_VISIBILITY_EXTENSION (config/schema.ts);
// the rest stay internal.

export interface SqsOptions {
  /** ReceiveMessage long-poll wait, 0–20 s. */
  waitTimeSeconds: number;
  /**
   * How long close() waits for long polls under way to answer before cutting
   * them off. Default: WaitTimeSeconds + 5 s, so a healthy poll is never cut off.
   */
  closeWaitMs: number;
  /** Messages per ReceiveMessage, 1–10. */
  receiveBatch: number;
  /** With fewer than half the prefetch (at most a batch) free, wait this long for more room before receiving. */
  receiveFillMs: number;
  /**
   * Seconds a message is kept invisible per extension while the app works on
   * it. Undefined: the queue's own VisibilityTimeout (at least 5 s).
   */
  visibilityExtensionSeconds: number | undefined;
  /** Extend when this share of the current invisibility has passed (0.1–0.9). */
  heartbeatFraction: number;
  /** SQS refuses to keep a message invisible longer than this after it was received. */
  maxVisibilitySeconds: number;
  /** How long deletes and visibility changes wait to fill a batch of 10. */
  batchLingerMs: number;
  /** Rejected message ids remembered so a redelivered copy goes straight back to the redrive policy. */
  rejectMemory: number;
  /**
   * Send requests to the queue URL's host rather than the configured endpoint.
   * Undefined: true, unless AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL point the
   * client at an emulator whose queue URLs name hosts that may not resolve.
   */
  useQueueUrlAsEndpoint: boolean | undefined;
}

export const defaultSqsOptions: SqsOptions = {
  waitTimeSeconds: 20,
  closeWaitMs: 25_000,
  receiveBatch: 10,
  receiveFillMs: 20,
  visibilityExtensionSeconds: undefined,
  heartbeatFraction: 0.5,
  maxVisibilitySeconds: 43_200,
  batchLingerMs: 5,
  rejectMemory: 10_000,
  useQueueUrlAsEndpoint: undefined,
};

export function resolveOptions(over: Partial<SqsOptions> = {}): SqsOptions {
  const o = { ...defaultSqsOptions, ...over };
  if (over.closeWaitMs === undefined) o.closeWaitMs = (Math.min(20, Math.max(0, o.waitTimeSeconds)) + 5) * 1000;
  const clamp = (v: number, min: number, max: number): number => Math.min(max, Math.max(min, v));
  return {
    ...o,
    waitTimeSeconds: clamp(Math.round(o.waitTimeSeconds), 0, 20),
    receiveBatch: clamp(Math.round(o.receiveBatch), 1, 10),
    heartbeatFraction: clamp(o.heartbeatFraction, 0.1, 0.9),
    maxVisibilitySeconds: clamp(Math.round(o.maxVisibilitySeconds), 1, 43_200),
    batchLingerMs: clamp(o.batchLingerMs, 0, 1000),
    receiveFillMs: clamp(o.receiveFillMs, 0, 1000),
    rejectMemory: Math.max(0, Math.round(o.rejectMemory)),
  };
}
