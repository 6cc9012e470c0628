// Waiting, written once: the exponential backoff every retry in turnout uses
// (with or without jitter) and the one sleep (cut short by an AbortSignal).

/** Longest wait between two attempts: the cap of TURNOUT_RETRY_BACKOFF's doubling. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * The un-jittered delay after `failedAttempt` (1-based): base doubled per
 * attempt, capped. Every exponential wait in turnout (delivery retries, broker
 * reconnects, receive and commit retries) is this, with or without jitter.
 */
export function backoffCeiling(failedAttempt: number, baseMs: number, capMs: number = MAX_BACKOFF_MS): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, failedAttempt - 1), 40));
}

/**
 * Delay before the attempt after `failedAttempt` (1-based): backoffCeiling
 * with "equal jitter" (half fixed, half random) so a fleet of sidecars
 * retrying after one outage does not retry in lockstep.
 */
export function backoffDelay(failedAttempt: number, baseMs: number, random: () => number = Math.random, capMs: number = MAX_BACKOFF_MS): number {
  const exp = backoffCeiling(failedAttempt, baseMs, capMs);
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Sleeps `ms`; resolves false early if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
