// Peak resident memory of this process. The kernel's high-water mark
// (getrusage maxrss) cannot miss a short spike between samples; the periodic
// samples add where the memory is (V8 heap vs. buffers outside it), which is
// what one needs to know when a peak is too high. The file-backed part of
// RSS (mostly the node binary's own pages: clean, shared, reclaimable by the
// kernel) is told apart from anonymous memory (heap, malloc, stacks), which
// is what the process really holds.

import { readFileSync } from 'node:fs';

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
  /** Highest anonymous RSS (V8 heap, malloc, stacks) seen, MiB; NaN where /proc is missing. */
  anonPeakMiB: number;
  /** Highest file-backed RSS (the node binary's and libraries' pages) seen, MiB; NaN where /proc is missing. */
  filePeakMiB: number;
}

/** Anonymous and file-backed resident KiB from /proc/self/smaps_rollup (Linux ≥ 4.14). */
function rollup(): { anonKiB: number; fileKiB: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps_rollup', 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const rss = field('Rss');
  const anon = field('Anonymous');
  return { anonKiB: anon, fileKiB: rss - anon };
}

export class RssSampler {
  private rss = 0;
  private heap = 0;
  private external = 0;
  private anon = NaN;
  private file = NaN;
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
    const r = rollup();
    if (r) {
      this.anon = Number.isNaN(this.anon) ? r.anonKiB : Math.max(this.anon, r.anonKiB);
      this.file = Number.isNaN(this.file) ? r.fileKiB : Math.max(this.file, r.fileKiB);
    }
  }

  stop(): RssReport {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // maxRSS is in KiB.
    const hwm = (process.resourceUsage().maxRSS * 1024) / MiB;
    return { peakMiB: Math.max(hwm, this.rss / MiB), sampledPeakMiB: this.rss / MiB, heapTotalPeakMiB: this.heap / MiB, externalPeakMiB: this.external / MiB, anonPeakMiB: this.anon / 1024, filePeakMiB: this.file / 1024 };
  }
}
