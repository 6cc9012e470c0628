#!/usr/bin/env node
// turnout's command line: `run` (the sidecar, default), `check`, `demo`, `rollout`,
// `move` and `drained`.
// Options come from the one schema; every option is a flag and a variable.
//
// The sidecar's own start (`run` with no flags: the image's default command,
// configured by variables alone) does not load yargs at all, and every other
// command's modules are imported when that command runs: a sidecar keeps only
// what it uses resident (bench/startup.bench.ts measures it).

import type { Argv } from 'yargs';
import { ConfigError } from '../config/errors.ts';
import { loadConfig, type FlagValues } from '../config/load.ts';
import { redactUrls } from '../config/redact.ts';
import { envName, schema, type OptionName } from '../config/schema.ts';
import { scrubber, secretsOf } from '../config/secrets.ts';
import { limitsOf } from './http/limits.ts';
import { createLogger, logProcessWarnings } from '../lib/log.ts';
import { installShutdown } from './shutdown.ts';
import { Turnout } from './turnout.ts';

const GROUP_TITLES: Record<string, string> = {
  broker: 'Broker:',
  routing: 'Routing:',
  versions: 'Versions and translation:',
  delivery: 'Delivery and dead-lettering:',
  http: 'HTTP:',
  runtime: 'Runtime:',
};

function withOptions<T>(y: Argv<T>): Argv<T> {
  let out = y;
  for (const name of Object.keys(schema) as OptionName[]) {
    const spec = schema[name];
    const dflt = 'default' in spec ? ` [default: ${spec.default}]` : '';
    out = out.option(spec.flag, {
      type: 'string',
      describe: `${envName(spec.flag)}  ${spec.doc} Allowed: ${spec.allowed}.${dflt}`,
      group: GROUP_TITLES[spec.group],
    }) as Argv<T>;
  }
  return out;
}

function flagsFrom(argv: Record<string, unknown>): FlagValues {
  const flags: FlagValues = {};
  for (const name of Object.keys(schema) as OptionName[]) {
    const v = argv[schema[name].flag];
    if (v === undefined) continue;
    // A flag given twice arrives as an array: the last one wins, as usual for CLIs.
    flags[name] = String(Array.isArray(v) ? v[v.length - 1] : v);
  }
  return flags;
}

function configError(err: ConfigError, output: Output): never {
  process.stderr.write(output.scrub(`turnout: invalid configuration: ${err.message}\n  fix ${err.variable} (or its --flag); see turnout --help\n`));
  process.exit(2);
}

/** Masks the loaded configuration's secrets in what the CLI prints (errors included); set once it is loaded. */
interface Output {
  scrub: (text: string) => string;
}

async function run(argv: Record<string, unknown>, output: Output): Promise<void> {
  const { config, warnings } = loadConfig(flagsFrom(argv), process.env);
  output.scrub = scrubber(secretsOf(config));
  const logger = createLogger(config.logLevel, undefined, output.scrub);
  logProcessWarnings(logger);
  for (const w of warnings) logger.warn(w);
  const shutdown = installShutdown(logger);
  const turnout = await Turnout.start({ config, logger });
  shutdown.attach(turnout);
}

/** Writes to `out` with secrets masked. */
function scrubbed(out: NodeJS.WriteStream, output: Output): { write(text: string): unknown } {
  return { write: (text: string) => out.write(output.scrub(text)) };
}

/**
 * `turnout` or `turnout run` without flags: what yargs would hand to run()
 * (no flag set), without building its parser and help text first.
 */
function isPlainRun(args: string[]): boolean {
  return args.length === 0 || (args.length === 1 && args[0] === 'run');
}

async function main(output: Output): Promise<void> {
  const args = process.argv.slice(2);
  if (isPlainRun(args)) return run({}, output);
  const [{ default: yargs }, { drainedCommand, moveCommand }] = await Promise.all([import('yargs'), import('./migrate/commands.ts')]);
  const cli = withOptions(
    yargs(args)
      .scriptName('turnout')
      .usage('turnout [run|check|demo|rollout|move|drained] [options]\n\nEvery option is also an environment variable: --green-weight 10 is TURNOUT_GREEN_WEIGHT=10. Flags win over variables.')
      .command(['run', '$0'], 'Run the sidecar (default).', () => {}, (argv) => run(argv, output))
      .command(
        'check',
        'Validate configuration and translators; print what the app gets for each version. Exit 1 when a version the fleet produces reaches no accepted version.',
        (y) =>
          y
            .option('sample', { type: 'string', describe: 'JSON payload file to run through every chain' })
            .option('versions', { type: 'string', describe: 'Versions the fleet produces, comma-separated [default: every version the translators, TURNOUT_DEFAULT_VERSION and TURNOUT_PRODUCE_VERSION name]' })
            .option('fleet', { type: 'string', describe: 'Check running sidecars instead: their GET /v1/info, comma-separated URLs; dns+http://name:port reads every address of the name. Versions: --versions, else what the producer sidecars listed stamp' }),
        async (argv) => {
          if (argv.fleet !== undefined) {
            const { runFleetCheck } = await import('./fleet/check.ts');
            process.exitCode = await runFleetCheck({ fleet: argv.fleet, versions: argv.versions, out: process.stdout });
            return;
          }
          const { config, warnings } = loadConfig(flagsFrom(argv), process.env);
          output.scrub = scrubber(secretsOf(config));
          const { runCheck } = await import('./check.ts');
          const code = await runCheck(config, { sample: argv.sample, versions: argv.versions, warnings, out: scrubbed(process.stdout, output) });
          process.exitCode = code;
        },
      )
      .command(
        'demo',
        'Run a complete blue/green rollout on the embedded broker and print where every message went.',
        (y) =>
          y
            .option('messages', { type: 'number', default: 600, describe: 'Messages the producer sends' })
            .option('rate', { type: 'number', default: 150, describe: 'Messages per second' })
            .option('rollout', { type: 'boolean', default: false, describe: 'Let turnout rollout ramp the weight, judging green from its metrics' })
            .option('failing-green', { type: 'boolean', default: false, describe: 'With --rollout: a green release that fails 20 % of customers (rolled back)' })
            .option('hold', { type: 'boolean', default: false, describe: 'After the summary, keep the status pages up until Ctrl-C (SIGINT/SIGTERM)' }),
        async (argv) => {
          const { runDemo } = await import('./demo/demo.ts');
          const hold = argv.hold
            ? new Promise<void>((resolve) => {
              for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
            })
            : undefined;
          process.exitCode = await runDemo({ messages: argv.messages, rate: argv.rate, out: process.stdout, rollout: argv.rollout, failingGreen: argv['failing-green'], ...(hold ? { hold } : {}) });
        },
      )
      .command(
        'rollout <plan>',
        'Progressive rollout: ramp the green weight on every router step by step, judge green from metrics, promote or roll back (exit 0 promoted, 1 rolled back/aborted, 2 invalid plan). turnout rollout status|pause|resume|promote|abort --controller URL drives a running controller.',
        (y) =>
          y
            .positional('plan', { type: 'string', demandOption: true, describe: 'PLAN.yaml, or status | pause | resume | promote | abort with --controller' })
            .option('restart', { type: 'boolean', default: false, describe: 'Start afresh even if the state file says this rollout ended' })
            .option('keep-serving', { type: 'boolean', default: false, describe: 'After the end, keep serving the status and metrics until SIGTERM (for a Deployment)' })
            .option('controller', { type: 'string', describe: "A running controller's base URL (for status, pause, resume, promote, abort)" }),
        async (argv) => {
          const { config } = loadConfig(flagsFrom(argv), process.env);
          const plan = String(argv.plan);
          if (['status', 'pause', 'resume', 'promote', 'abort'].includes(plan)) {
            if (argv.controller === undefined) {
              process.stderr.write(`turnout: rollout ${plan} needs --controller URL\n`);
              process.exit(2);
            }
            const { runRolloutClient } = await import('./rollout/client.ts');
            process.exitCode = await runRolloutClient(plan, argv.controller, config.adminToken, process.stdout, process.stderr);
            return;
          }
          const { runRolloutCommand } = await import('./rollout/main.ts');
          process.exitCode = await runRolloutCommand({ planFile: plan, restart: argv.restart, keepServing: argv['keep-serving'], port: config.port, host: config.host, adminToken: config.adminToken, logLevel: config.logLevel, limits: limitsOf(config) });
        },
      )
      .command(moveCommand(flagsFrom))
      .command(drainedCommand(flagsFrom))
      .strict()
      .help()
      .alias('h', 'help')
      .version(false)
      .wrap(Math.min(120, process.stdout.columns || 120))
      .fail((msg, err) => {
        if (err) throw err;
        process.stderr.write(`turnout: ${msg}\n  see turnout --help\n`);
        process.exit(2);
      }),
  );
  await cli.parseAsync();
}

// Until the configuration is loaded, only URL passwords can be recognised.
const output: Output = { scrub: redactUrls };
main(output).catch((err: unknown) => {
  if (err instanceof ConfigError) configError(err, output);
  process.stderr.write(output.scrub(`turnout: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`));
  process.exit(1);
});
