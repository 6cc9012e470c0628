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

/** How long an adapter's close() waits for its publishes under way (UnderWay.finish). */
export const PUBLISH_FINISH_WAIT_MS = 5_000;

/**
 * Work under way (publishes, channel closes), so that closing a connection
 * can let it finish first: a publish failed by the close may have reached
 * the broker, and its caller would send it again.
 */
export class UnderWay {
  private readonly calls = new Set<Promise<unknown>>();

  /** Starts `call` and keeps it until it settles. */
  run<T>(call: () => Promise<T>): Promise<T> {
    return this.track(call());
  }

  /** Keeps `p` until it settles. */
  track<T>(p: Promise<T>): Promise<T> {
    this.calls.add(p);
    const forget = (): void => void this.calls.delete(p);
    p.then(forget, forget);
    return p;
  }

  get size(): number {
    return this.calls.size;
  }

  /** settledWithin() over the work under way now. */
  finish(ms = PUBLISH_FINISH_WAIT_MS): Promise<boolean> {
    return this.calls.size === 0 ? Promise.resolve(true) : settledWithin([...this.calls], ms);
  }
}
