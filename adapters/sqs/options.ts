// Tunables of the SQS adapter. waitTimeSeconds and visibilityExtensionSeconds
// are TURNOUT_SQS_WAIT_TIME and TURNOUT_SQS_VISIBILITY_EXTENSION: their
// defaults are the schema's (config/schema.ts), mapped by sqsOptions(). The
// rest stay internal, with defaults here that production wants; tests
// shorten some of them.

import type { Config } from '../../config/schema.ts';

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
  /**
   * The SQS endpoint for this adapter only. Undefined: the SDK's own
   * (AWS_ENDPOINT_URL_SQS, else the region's). Tests route one adapter
   * through a loopback proxy with it.
   */
  endpoint: string | undefined;
}

/** The options turnout's configuration sets. */
type Configured = Pick<SqsOptions, 'waitTimeSeconds' | 'visibilityExtensionSeconds'>;

export const defaultSqsOptions: Omit<SqsOptions, keyof Configured> = {
  closeWaitMs: 25_000,
  receiveBatch: 10,
  receiveFillMs: 20,
  heartbeatFraction: 0.5,
  maxVisibilitySeconds: 43_200,
  batchLingerMs: 5,
  rejectMemory: 10_000,
  useQueueUrlAsEndpoint: undefined,
  endpoint: undefined,
};

/** TURNOUT_SQS_WAIT_TIME and TURNOUT_SQS_VISIBILITY_EXTENSION. */
export function sqsOptions(config: Config): Configured {
  return { waitTimeSeconds: config.sqsWaitTime, visibilityExtensionSeconds: config.sqsVisibilityExtension };
}

/** The configured options, with the internal defaults and what a test overrides, clamped to what SQS allows. */
export function resolveOptions(configured: Configured, over: Partial<SqsOptions> = {}): SqsOptions {
  const options: SqsOptions = { ...defaultSqsOptions, ...configured, ...over };
  if (over.closeWaitMs === undefined) options.closeWaitMs = (Math.min(20, Math.max(0, options.waitTimeSeconds)) + 5) * 1000;
  const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));
  return {
    ...options,
    waitTimeSeconds: clamp(Math.round(options.waitTimeSeconds), 0, 20),
    receiveBatch: clamp(Math.round(options.receiveBatch), 1, 10),
    heartbeatFraction: clamp(options.heartbeatFraction, 0.1, 0.9),
    maxVisibilitySeconds: clamp(Math.round(options.maxVisibilitySeconds), 1, 43_200),
    batchLingerMs: clamp(options.batchLingerMs, 0, 1000),
    receiveFillMs: clamp(options.receiveFillMs, 0, 1000),
    rejectMemory: Math.max(0, Math.round(options.rejectMemory)),
  };
}
