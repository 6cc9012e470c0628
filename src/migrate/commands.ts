// The yargs commands `turnout move` and `turnout drained`. The broker comes
// from the same TURNOUT_* variables and flags as the sidecar, validated by the
// same loadConfig (exit 2 naming the variable); logs go to stderr, so stdout
// carries only the answer (move's JSON line, drained's table or JSON).

import type { Argv, CommandModule } from 'yargs';
import { isBrokerError, type BrokerAdapter } from '../../adapters/broker.ts';
import { createBroker } from '../../adapters/index.ts';
import { ConfigError } from '../../config/errors.ts';
import { loadConfig, type FlagValues } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { expandTarget } from '../../lib/targets.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { runDrained } from './drained.ts';
import { scrubber, secretsOf } from '../../config/secrets.ts';
import { parseDuration } from './duration.ts';
import { parseWhere } from './filters.ts';
import { exitCodeOf, runMove, type MoveSummary } from './move.ts';

export type FlagsFrom = (argv: Record<string, unknown>) => FlagValues;

/** Commands log what is worth acting on unless TURNOUT_LOG_LEVEL/--log-level says otherwise. */
function commandSetup(flags: FlagValues): { config: Config; logger: Logger } {
  const { config } = loadConfig(flags, process.env);
  const explicit = flags.logLevel !== undefined || (process.env.TURNOUT_LOG_LEVEL ?? '') !== '';
  // The same scrubbing as the sidecar's logs: no token or broker password in a line.
  return { config, logger: createLogger(explicit ? config.logLevel : 'warn', process.stderr, scrubber(secretsOf(config))) };
}

async function connected(config: Config, logger: Logger): Promise<BrokerAdapter> {
  const broker = await createBroker({ config, logger });
  await broker.connect();
  return broker;
}

/** A broker refusal (missing queue, no connection, no permission) is a one-line answer and exit 1, not a stack trace. */
async function brokerWork(command: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (!isBrokerError(err)) throw err;
    process.stderr.write(`turnout ${command}: ${err.message}\n`);
    process.exitCode = 1;
  }
}

/** SIGINT/SIGTERM stop after the message at hand; a second one ends the process (nothing unconfirmed is removed either way). */
function interruptible(): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(1);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    done() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function positive(name: string, v: unknown, allowDecimals: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (!allowDecimals && !Number.isInteger(n))) {
    throw new ConfigError(`--${name} ${String(v)} must be a positive ${allowDecimals ? 'number' : 'whole number'}`, `--${name}`);
  }
  return n;
}

function progressLine(stream: NodeJS.WriteStream): { update(s: MoveSummary): void; end(): void } {
  if (!stream.isTTY) return { update() {}, end() {} };
  let last = 0;
  let wrote = false;
  const started = Date.now();
  const render = (s: MoveSummary): void => {
    const rate = s.moved / Math.max(0.001, (Date.now() - started) / 1000);
    stream.write(`\r\x1b[Kseen ${s.seen}  moved ${s.moved}  skipped ${s.skipped}  failed ${s.failed}  ${rate.toFixed(0)}/s`);
    wrote = true;
  };
  let latest: MoveSummary | undefined;
  return {
    update(s) {
      latest = s;
      if (Date.now() - last < 200) return;
      last = Date.now();
      render(s);
    },
    end() {
      if (latest) render(latest);
      if (wrote) stream.write('\n');
    },
  };
}

/** --max-moves when not given (yargs' default, and the fallback should yargs leave it unset). */
const DEFAULT_MAX_MOVES = 3;

export function moveCommand(flagsFrom: FlagsFrom): CommandModule {
  return {
    command: 'move',
    describe: 'Move messages between queues/topics (redrive a dead-letter queue with --to @source, or move what lingers on an old queue). Prints one JSON line; exit 0 when everything that matched moved, 1 when something did not, 2 for bad arguments.',
    builder: (y: Argv) =>
      y
        .option('from', { type: 'string', demandOption: true, describe: 'Queue/topic to move from' })
        .option('to', { type: 'string', demandOption: true, describe: 'Queue/topic to move to, or @source: each message back to its x-turnout-source' })
        .option('where', { type: 'string', array: true, describe: 'reason=R, version=N or header:NAME=VALUE; several: all must hold' })
        .option('max', { type: 'number', describe: 'Move at most N messages' })
        .option('rate', { type: 'number', describe: 'Move at most N messages per second' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'Count what would move (by reason, version, source); change nothing' })
        .option('max-moves', { type: 'number', default: DEFAULT_MAX_MOVES, describe: 'Skip a message already moved this often (x-turnout-moves)' }),
    handler: async (argv) => {
      const where = ((argv.where as string[] | undefined) ?? []).map(parseWhere);
      const max = positive('max', argv.max, false);
      const rate = positive('rate', argv.rate, true);
      const maxMoves = positive('max-moves', argv['max-moves'], false) ?? DEFAULT_MAX_MOVES;
      const from = String(argv.from).trim();
      const to = String(argv.to).trim();
      if (from === '') throw new ConfigError('--from must name a queue', '--from');
      if (to === '') throw new ConfigError('--to must name a queue or @source', '--to');
      if (from === to) throw new ConfigError('--from and --to name the same queue', '--to');
      const { config, logger } = commandSetup(flagsFrom(argv));
      await brokerWork('move', async () => {
        const broker = await connected(config, logger);
        const stop = interruptible();
        const progress = progressLine(process.stderr);
        try {
          const summary = await runMove(broker, {
            from,
            to,
            where,
            max,
            rate,
            dryRun: argv['dry-run'] === true,
            maxMoves,
            group: `turnout-move-${from}`,
            versionHeader: config.versionHeader,
            defaultVersion: config.defaultVersion,
            signal: stop.signal,
            progress: (s) => progress.update(s),
            logger,
          });
          progress.end();
          const { moved, skipped, remaining, byReason, byVersion, bySource, failed } = summary;
          process.stdout.write(`${JSON.stringify({ moved, skipped, remaining, byReason, byVersion, bySource, failed })}\n`);
          process.exitCode = exitCodeOf(summary);
        } finally {
          stop.done();
          await broker.close();
        }
      });
    },
  };
}

export function drainedCommand(flagsFrom: FlagsFrom): CommandModule {
  return {
    command: 'drained <queues..>',
    describe: 'Depth, in-flight and deferred messages of each queue (Kafka: the lag of --group). Exit 0 only when all are zero: the queue is safe to delete.',
    builder: (y: Argv) =>
      y
        .positional('queues', { type: 'string', array: true, describe: 'Queues/topics to look at' })
        .option('wait', { type: 'string', describe: 'Poll until drained, at most this long (30s, 5m, 1h); exit 1 when the time runs out' })
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON instead of a table' }),
    handler: async (argv) => {
      const queues = ((argv.queues as string[] | undefined) ?? []).map(String);
      const waitMs = argv.wait !== undefined ? parseDuration(String(argv.wait), '--wait') : undefined;
      const { config, logger } = commandSetup(flagsFrom(argv));
      await brokerWork('drained', async () => {
        const broker = await connected(config, logger);
        const stop = interruptible();
        try {
          process.exitCode = await runDrained(broker, {
            queues,
            groupOf: (queue) => expandTarget(config.group, queue),
            waitMs,
            json: argv.json === true,
            out: process.stdout,
            signal: stop.signal,
          });
        } finally {
          stop.done();
          await broker.close();
        }
      });
    },
  };
}
