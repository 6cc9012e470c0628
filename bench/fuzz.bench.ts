// The full hostile-input campaign (issue 11): at least 10 000 generated cases
// against the real turnout process, on the embedded broker and on RabbitMQ,
// plus translators files at start and on hot reload. The same categories as
// the fast subset in test/fuzz/*.test.ts, scaled up. Prints a summary (cases
// per category, outcomes, seed, duration); exit 1 on the first failing case,
// with the command that replays it.
//
//   npm run bench -- fuzz            (FUZZ_SEED=n to fix the seed; FUZZ_SCALE=x scales every category)
//   FUZZ_SEED=… FUZZ_ONLY=memory.publish FUZZ_PATH=… node bench/fuzz.bench.ts   replays one failing batch
//
// RabbitMQ categories are skipped (and said so) when RabbitMQ is not reachable.

import { canConnect } from '../src/net.ts';
import { fuzzSettings } from '../test/fuzz/lib/settings.ts';
import { Stats } from '../test/fuzz/lib/stats.ts';
import { amqpSuite, memorySuite } from '../test/fuzz/lib/suites.ts';
import { translatorsReloadSuite, translatorsStartSuite } from '../test/fuzz/lib/translators-suite.ts';

const FILE = 'bench/fuzz.bench.ts';
// Batches of up to 24 cases (about 6.3 on average, fast-check's array sizes): ~3 500 cases per category.
const PLAN = { publishRuns: 560, foreignRuns: 560, batch: 24 };
const TRANSLATOR_STARTS = 60;
const TRANSLATOR_RELOADS = 60;
const MIN_CASES = 10_000;

const s = fuzzSettings();
const stats = new Stats();
process.stderr.write(`fuzz campaign: seed ${s.seed} (FUZZ_SEED=${s.seed} reruns it)\n`);
let failed: unknown;
try {
  await memorySuite(s, stats, PLAN, FILE);
  if (await canConnect('127.0.0.1', 5672, 2000)) await amqpSuite(s, stats, PLAN, FILE);
  else process.stderr.write('fuzz campaign: RabbitMQ is not reachable on 127.0.0.1:5672; its categories are skipped\n');
  await translatorsStartSuite(s, stats, TRANSLATOR_STARTS, FILE);
  await translatorsReloadSuite(s, stats, TRANSLATOR_RELOADS, FILE);
} catch (err) {
  failed = err;
}
process.stdout.write(`${stats.summary(s.seed)}\n`);
if (failed !== undefined) {
  process.stderr.write(`${(failed as Error).message}\n`);
  process.exit(1);
}
if (s.only === undefined && s.scale >= 1 && stats.cases() < MIN_CASES) {
  process.stderr.write(`fuzz campaign: only ${stats.cases()} cases ran (at least ${MIN_CASES} expected)\n`);
  process.exit(1);
}
