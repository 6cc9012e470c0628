// Groups calls per queue into SQS batch requests (at most 10 entries). An
// entry waits at most `lingerMs` for company; each caller's promise settles
// with its own entry's outcome.

interface Pending<E> {
  entry: E;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Slot<E> {
  entries: Pending<E>[];
  timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
}

/** Sends one batch; returns, per entry in order, undefined for success or the entry's error. */
export type SendBatch<E> = (queueUrl: string, entries: E[]) => Promise<(unknown | undefined)[]>;

export class Batcher<E> {
  private readonly slots = new Map<string, Slot<E>>();
  private readonly sending = new Set<Promise<void>>();
  private readonly send: SendBatch<E>;
  private readonly lingerMs: number;
  private readonly max: number;

  constructor(send: SendBatch<E>, lingerMs: number, max = 10) {
    this.send = send;
    this.lingerMs = lingerMs;
    this.max = max;
  }

  add(queueUrl: string, entry: E): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let slot = this.slots.get(queueUrl);
      if (!slot) {
        slot = { entries: [], timer: undefined };
        this.slots.set(queueUrl, slot);
      }
      slot.entries.push({ entry, resolve, reject });
      if (slot.entries.length >= this.max) this.flush(queueUrl);
      else if (slot.timer === undefined) {
        slot.timer = this.lingerMs > 0 ? setTimeout(() => this.flush(queueUrl), this.lingerMs) : setImmediate(() => this.flush(queueUrl));
      }
    });
  }

  private flush(queueUrl: string): void {
    const slot = this.slots.get(queueUrl);
    if (!slot) return;
    this.slots.delete(queueUrl);
    if (slot.timer !== undefined) {
      clearTimeout(slot.timer as NodeJS.Timeout);
      clearImmediate(slot.timer as NodeJS.Immediate);
    }
    for (let i = 0; i < slot.entries.length; i += this.max) {
      const chunk = slot.entries.slice(i, i + this.max);
      const p = this.send(queueUrl, chunk.map((c) => c.entry)).then(
        (results) => {
          chunk.forEach((c, j) => {
            const err = results[j];
            if (err === undefined) c.resolve();
            else c.reject(err);
          });
        },
        (err: unknown) => {
          for (const c of chunk) c.reject(err);
        },
      );
      this.sending.add(p);
      void p.finally(() => this.sending.delete(p));
    }
  }

  /** Sends everything waiting now and waits for every batch under way. */
  async flushAll(): Promise<void> {
    for (const url of [...this.slots.keys()]) this.flush(url);
    await Promise.allSettled([...this.sending]);
  }
}
