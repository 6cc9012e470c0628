// What RabbitMQ can do. Loads no client library: config/load.ts reads it.

import type { Capabilities } from '../broker.ts';

export const capabilities: Capabilities = {
  setting: 'amqp://…',
  name: 'RabbitMQ',
  // A reject is a nack without requeue: the queue's dead-letter exchange (argument or policy) takes it.
  nativeDeadLetter: true,
  // Deferred copies wait in turnout's per-source delay queue until their TTL sends them back.
  delayedRedelivery: 'broker',
  durable: true,
  consumerGroups: false,
};
