// Every broker's declared capabilities by TURNOUT_BROKER kind, without
// loading any client library (config/load.ts reads them to validate).

import type { BrokerUrl } from '../config/schema.ts';
import { capabilities as amqp } from './amqp/capabilities.ts';
import type { Capabilities } from './broker.ts';
import { capabilities as kafka } from './kafka/capabilities.ts';
import { capabilities as memory } from './memory/capabilities.ts';
import { capabilities as sqs } from './sqs/capabilities.ts';

const byKind: Record<BrokerUrl['kind'], Capabilities> = { memory, amqp, sqs, kafka };

export function capabilitiesOf(kind: BrokerUrl['kind']): Capabilities {
  return byKind[kind];
}
