// Keeps one received message invisible while turnout works on it. SQS hands
// a message to another consumer once its visibility timeout lapses, so a job
// longer than the queue's VisibilityTimeout would run twice; the lease
// extends the timeout when part of it has passed, until the work ends, the
// message is released, or SQS's limit (12 h after receipt) is reached.

import type { Logger } from '../../lib/log.ts';
import { isStaleReceipt } from './errors.ts';

export interface LeaseSettings {
  /** Seconds of invisibility asked for per extension. */
  extendSeconds: number;
  /** Extend once this share of the current invisibility has passed. */
  fraction: number;
  /** SQS's ceiling on invisibility counted from receipt. */
  maxSeconds: number;
}

export type ChangeVisibility = (receiptHandle: string, seconds: number) => Promise<void>;

export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight: Promise<void> | undefined;
  private readonly receiptHandle: string;
  private readonly receivedAt: number;
  private readonly settings: LeaseSettings;
  private readonly change: ChangeVisibility;
  private readonly logger: Logger;
  private readonly label: Record<string, string>;

  /**
   * @param receivedAt when the ReceiveMessage call started (SQS's clock starts no earlier)
   * @param initialSeconds the invisibility the message was received with (the queue's VisibilityTimeout)
   */
  constructor(options: {
    receiptHandle: string;
    receivedAt: number;
    initialSeconds: number;
    settings: LeaseSettings;
    change: ChangeVisibility;
    logger: Logger;
    label: Record<string, string>;
  }) {
    this.receiptHandle = options.receiptHandle;
    this.receivedAt = options.receivedAt;
    this.settings = options.settings;
    this.change = options.change;
    this.logger = options.logger;
    this.label = options.label;
    this.schedule(options.initialSeconds);
  }

  private schedule(currentSeconds: number): void {
    if (this.stopped) return;
    const waitMs = Math.max(200, currentSeconds * 1000 * this.settings.fraction);
    this.timer = setTimeout(() => this.extend(), waitMs);
    // Leases alone must not keep a process alive.
    this.timer.unref();
  }

  private extend(): void {
    if (this.stopped) return;
    const elapsed = (Date.now() - this.receivedAt) / 1000;
    const seconds = Math.min(this.settings.extendSeconds, Math.floor(this.settings.maxSeconds - elapsed));
    if (seconds < 1) {
      this.logger.warn(
        { ...this.label, maxSeconds: this.settings.maxSeconds },
        'message reached the SQS visibility limit (12 h after receipt); it will become visible to other consumers',
      );
      this.stopped = true;
      return;
    }
    this.inFlight = this.change(this.receiptHandle, seconds).then(
      () => this.schedule(seconds),
      (err: unknown) => {
        if (isStaleReceipt(err)) {
          this.logger.warn({ ...this.label, err }, 'lost the lease on a message (its visibility lapsed); it may be handled twice');
          this.stopped = true;
          return;
        }
        this.logger.warn({ ...this.label, err }, 'extending message visibility failed; retrying');
        // Try again soon, but within what is left of the current invisibility.
        this.schedule(Math.min(2, seconds));
      },
    );
  }

  /** Stops extending; resolves once no extension is under way, so a following release cannot be overtaken by one. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.inFlight?.catch(() => {});
  }
}
