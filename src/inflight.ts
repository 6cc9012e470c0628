// The messages in flight: at most TURNOUT_CONCURRENCY at once (the rest wait
// for a slot), counted from the moment they arrive, so that the drain can wait
// until none is left.

import { Semaphore } from './semaphore.ts';

export class InFlight {
  private readonly slots: Semaphore;
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(limit: number) {
    this.slots = new Semaphore(limit);
  }

  /** Messages taken and not finished, including those waiting for a slot. */
  get count(): number {
    return this.active;
  }

  /**
   * Runs `work` in a slot: at once when one is free (no promise and turn
   * spent on waiting), else once one is. Either way the outcome reaches the
   * caller no later than it did when every run awaited its slot.
   */
  run<T>(work: () => Promise<T>): Promise<T> {
    this.active++;
    return this.slots.tryAcquire() ? this.inSlot(work) : this.afterSlot(work);
  }

  private async inSlot<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.finished();
    }
  }

  private async afterSlot<T>(work: () => Promise<T>): Promise<T> {
    await this.slots.acquire();
    try {
      return await work();
    } finally {
      this.finished();
    }
  }

  private finished(): void {
    this.slots.release();
    if (--this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves true once nothing is in flight, false if `timeoutMs` passes first. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }
}
