// What Kafka can do. Loads no client library: config/load.ts reads it.

import type { Capabilities } from '../broker.ts';

export const capabilities: Capabilities = {
  setting: 'kafka://…',
  name: 'Kafka',
  // No dead-letter mechanism of its own: TURNOUT_DLQ is required, and a reject keeps the message (handed out again).
  nativeDeadLetter: false,
  // Deferred copies wait on the deferral topic turnout owns for the source, with a not-before time.
  delayedRedelivery: 'broker',
  durable: true,
  consumerGroups: true,
};
