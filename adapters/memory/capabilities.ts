// What the embedded broker can do. Loads nothing: config/load.ts reads it.

import type { Capabilities } from '../broker.ts';

export const capabilities: Capabilities = {
  setting: 'memory',
  name: 'the embedded broker',
  // A reject keeps the message in its queue (handed out again).
  nativeDeadLetter: false,
  delayedRedelivery: 'process',
  durable: false,
  consumerGroups: false,
};
