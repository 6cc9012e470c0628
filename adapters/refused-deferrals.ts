// Messages whose deferred copy the broker refused for its shape or size
// (RabbitMQ: a header table past 64 KiB once turnout's deferral count is
// added; SQS: a copy past the queue's MaximumMessageSize): the message itself
// goes back to the broker, and its next delivery carries the refusal
// (Received.deferRefused) so that the pipeline dead-letters it instead of
// deferring it again, which would circle for ever. By message id, in memory,
// bounded (oldest first out): a restart or an evicted id costs one more
// refused deferral, not a loss. (Kafka keeps the refusal on the record it
// hands out again: adapters/kafka/partition.ts.)

import { RecentMap } from '../lib/recent.ts';

export class RefusedDeferrals {
  private readonly why: RecentMap<string>;

  constructor(bound = 1024) {
    this.why = new RecentMap(bound);
  }

  set(id: string, why: string): void {
    this.why.set(id, why);
  }

  /** The refusal recorded for `id`, forgotten as it is read. */
  take(id: string): string | undefined {
    const why = this.why.get(id);
    if (why !== undefined) this.why.delete(id);
    return why;
  }
}
