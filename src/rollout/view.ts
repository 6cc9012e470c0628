// The live progress view on a terminal: phase, step, weight, and each
// check's value against its bound, redrawn in place. Only on a TTY; the
// JSON log lines are the record everywhere else.

import type { Status } from './status.ts';

const fmtBound = (min: number | null, max: number | null): string =>
  min !== null && max !== null ? `${min}..${max}` : max !== null ? `≤ ${max}` : min !== null ? `≥ ${min}` : '';

export function renderStatus(s: Status, now = Date.now()): string[] {
  const lines: string[] = [];
  const judge = s.judgeAt !== undefined ? `  judged in ${Math.max(0, Math.ceil((Date.parse(s.judgeAt) - now) / 1000))}s` : '';
  lines.push(`turnout rollout  ${s.phase.padEnd(11)}  step ${s.step}/${s.steps.length}  weight ${String(s.weight).padStart(3)}%  failures ${s.failures}/${s.failureLimit}${judge}`);
  lines.push(`  steps ${s.steps.map((w, i) => (i + 1 === s.step ? `[${w}]` : String(w))).join(' → ')}`);
  for (const c of s.checks) {
    const value = c.value === null ? (c.result === 'no-data' ? 'no data' : '…') : String(c.value);
    lines.push(`  ${c.result === 'pass' ? '✓' : c.result === 'fail' ? '✗' : c.result === 'no-data' ? '?' : '·'} ${c.name.padEnd(24)} ${value.padStart(10)}  ${fmtBound(c.min, c.max)}${c.reason ? `  (${c.reason})` : ''}`);
  }
  if (s.held !== undefined) lines.push(`  held: ${s.held}`);
  if (s.reason !== undefined) lines.push(`  ${s.reason}`);
  return lines;
}

export class TerminalView {
  private drawn = 0;
  private readonly out: NodeJS.WriteStream;
  private timer: NodeJS.Timeout | undefined;
  private last: Status | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.out = out;
  }

  start(): void {
    this.timer = setInterval(() => this.last && this.draw(this.last), 1000);
    this.timer.unref();
  }

  draw(s: Status): void {
    this.last = s;
    const width = Math.max(20, this.out.columns ?? 120);
    const lines = renderStatus(s).map((l) => l.slice(0, width - 1));
    // Move up over the previous frame and clear it.
    let text = this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : '';
    text += `${lines.join('\n')}\n`;
    this.out.write(text);
    this.drawn = lines.length;
  }

  /**
   * A log destination for when the log shares the terminal: each line is
   * written above the view, which is drawn again below it.
   */
  logDestination(stdout: NodeJS.WritableStream): { write(chunk: string): boolean } {
    return {
      write: (chunk: string): boolean => {
        if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}F\x1b[J`);
        this.drawn = 0;
        const ok = stdout.write(chunk);
        if (this.last) this.draw(this.last);
        return ok;
      },
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
