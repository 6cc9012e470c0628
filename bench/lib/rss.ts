// Peak resident memory of this process. The kernel's high-water mark
// (getrusage maxrss) cannot miss a short spike between samples; the periodic
// samples add where the memory is (V8 heap vs. buffers outside it), which is
// what one needs to know when a peak is too high.

const MiB = 1024 * 1024;

export interface RssReport {
  /** The process's lifetime RSS high-water mark, MiB (includes start-up). */
  peakMiB: number;
  /** Highest RSS seen by sampling while the sampler ran. */
  sampledPeakMiB: number;
  /** Highest V8 heap size (committed) seen, MiB. */
  heapTotalPeakMiB: number;
  /** Highest memory outside the V8 heap (Buffers, native) seen, MiB. */
  externalPeakMiB: number;
}

export class RssSampler {
  private rss = 0;
  private heap = 0;
  private external = 0;
  private timer: NodeJS.Timeout | undefined;

  private ticks = 0;

  start(intervalMs = 50): this {
    this.sample();
    this.timer = setInterval(() => this.tick(), intervalMs);
    // Never keep a finished benchmark alive just to sample it.
    this.timer.unref();
    return this;
  }

  /** RSS alone is cheap; the full breakdown walks V8's heap, so it is taken every 10th tick. */
  private tick(): void {
    if (++this.ticks % 10 === 0) this.sample();
    else this.rss = Math.max(this.rss, process.memoryUsage.rss());
  }

  private sample(): void {
    const m = process.memoryUsage();
    this.rss = Math.max(this.rss, m.rss);
    this.heap = Math.max(this.heap, m.heapTotal);
    this.external = Math.max(this.external, m.external);
  }

  stop(): RssReport {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // maxRSS is in KiB.
    const hwm = (process.resourceUsage().maxRSS * 1024) / MiB;
    return { peakMiB: Math.max(hwm, this.rss / MiB), sampledPeakMiB: this.rss / MiB, heapTotalPeakMiB: this.heap / MiB, externalPeakMiB: this.external / MiB };
  }
}
