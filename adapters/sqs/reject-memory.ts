// Ids of messages the app refused for good and that were handed back for the
// queue's redrive policy. SQS only moves a message to the redrive DLQ when it
// is received more than maxReceiveCount times, so each returning copy is
// rejected again at once instead of going through the app again. Bounded and
// time-limited: it is only a shortcut, the redrive policy stays in charge.

export class RejectMemory {
  private readonly ids = new Map<string, number>();
  private readonly max: number;
  private readonly ttlMs: number;

  constructor(max: number, ttlMs = 15 * 60_000) {
    this.max = max;
    this.ttlMs = ttlMs;
  }

  add(id: string): void {
    if (this.max === 0) return;
    this.ids.delete(id);
    this.ids.set(id, Date.now() + this.ttlMs);
    while (this.ids.size > this.max) {
      const oldest = this.ids.keys().next().value as string;
      this.ids.delete(oldest);
    }
  }

  has(id: string): boolean {
    const until = this.ids.get(id);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.ids.delete(id);
      return false;
    }
    return true;
  }
}
