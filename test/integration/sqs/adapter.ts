// Builds SQS adapters for the tests from a turnout configuration, the way
// the CLI does (TURNOUT_* variables through config/load.ts).

import { loadConfig } from '../../../config/load.ts';
import { SqsBroker, type SqsOptions } from '../../../adapters/sqs/index.ts';
import { createLogger } from '../../../lib/log.ts';

export const testLogger = createLogger(process.env.TURNOUT_TEST_LOG_LEVEL ?? 'silent');

export function sqsAdapter(env: Record<string, string> = {}, options: Partial<SqsOptions> = {}): SqsBroker {
  const { config } = loadConfig({}, { TURNOUT_BROKER: 'sqs', ...env });
  return new SqsBroker({ config, logger: testLogger }, options);
}
