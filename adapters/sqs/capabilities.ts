// What SQS can do. Loads no client library: config/load.ts reads it.

import type { Capabilities } from '../broker.ts';

export const capabilities: Capabilities = {
  setting: 'sqs',
  name: 'SQS',
  // A reject goes back to SQS, whose RedrivePolicy moves it to the queue's DLQ after maxReceiveCount receives.
  nativeDeadLetter: true,
  // Deferred copies are re-sent with DelaySeconds (and a not-before time beyond 15 minutes or on FIFO queues).
  delayedRedelivery: 'broker',
  durable: true,
  consumerGroups: false,
};
