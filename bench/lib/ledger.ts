// Accounting for a long run: message n's fate in typed arrays (an hour at
// 1 000 msg/s is 3.6 M messages; a Set of string ids would itself be the
// memory growth being measured). Each message has an expected end: the app
// (accepted once) or the DLQ with one reason; the ledger counts every copy
// that arrived where, and says what is missing, doubled or misplaced.

export type End = { at: 'app' } | { at: 'dlq'; reason: string };

export class Ledger {
  private app: Uint8Array;
  private dlq: Uint8Array;
  private wrongReason = 0;
  private unknown = 0;
  private sent = 0;
  private readonly expected: (n: number) => End;

  constructor(capacity: number, expected: (n: number) => End) {
    this.app = new Uint8Array(capacity);
    this.dlq = new Uint8Array(capacity);
    this.expected = expected;
  }

  /** Message n was sent (its expected end now counts). */
  published(n: number): void {
    if (n >= this.app.length) this.grow(n + 1);
    this.sent = Math.max(this.sent, n + 1);
  }

  atApp(n: number | undefined): void {
    if (n === undefined || n >= this.sent) return void this.unknown++;
    this.app[n] = Math.min(255, (this.app[n] ?? 0) + 1);
  }

  atDlq(n: number | undefined, reason: string): void {
    if (n === undefined || n >= this.sent) return void this.unknown++;
    this.dlq[n] = Math.min(255, (this.dlq[n] ?? 0) + 1);
    const e = this.expected(n);
    if (e.at !== 'dlq' || e.reason !== reason) this.wrongReason++;
  }

  /** Messages published but not yet where they belong. */
  outstanding(): number {
    let n = 0;
    for (let i = 0; i < this.sent; i++) if (((this.expected(i).at === 'app' ? this.app[i] : this.dlq[i]) ?? 0) === 0) n++;
    return n;
  }

  /** Copies that reached the app of the messages `which` selects. */
  arrivedAtApp(which: (n: number) => boolean): number {
    let c = 0;
    for (let i = 0; i < this.sent; i++) if (which(i)) c += this.app[i] ?? 0;
    return c;
  }

  report(): { published: number; atApp: number; atDlq: number; missing: number; duplicates: number; misplaced: number; unknown: number } {
    let atApp = 0;
    let atDlq = 0;
    let missing = 0;
    let duplicates = 0;
    let misplaced = this.wrongReason;
    for (let i = 0; i < this.sent; i++) {
      const a = this.app[i] ?? 0;
      const d = this.dlq[i] ?? 0;
      atApp += a;
      atDlq += d;
      const e = this.expected(i);
      if ((e.at === 'app' ? a : d) === 0) missing++;
      if (a + d > 1) duplicates += a + d - 1;
      if (e.at === 'app' && d > 0) misplaced++;
      if (e.at === 'dlq' && a > 0) misplaced++;
    }
    return { published: this.sent, atApp, atDlq, missing, duplicates, misplaced, unknown: this.unknown };
  }

  private grow(size: number): void {
    const cap = Math.max(size, this.app.length * 2);
    const a = new Uint8Array(cap);
    a.set(this.app);
    this.app = a;
    const d = new Uint8Array(cap);
    d.set(this.dlq);
    this.dlq = d;
  }
}
