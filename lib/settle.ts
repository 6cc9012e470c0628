// Waiting for work to end, with a bound: shutdown paths wait for what is
// under way (channel closes, long polls) but never for ever.

/**
 * Resolves true once every promise has settled, or false after `ms` (its
 * timer is then cleared, so it holds no process open either way).
 */
export function settledWithin(promises: Iterable<Promise<unknown>>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void Promise.allSettled(promises).then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
