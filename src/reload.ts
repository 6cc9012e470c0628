// The two files turnout re-reads while it runs: the translators file
// (TURNOUT_TRANSLATORS) and the weight file (TURNOUT_WEIGHT_FILE). At start a
// bad file is a ConfigError (exit code 2); later, a bad or unreadable version
// is logged and what was loaded before stays in use.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.ts';
import { watchFileContent, type FileWatch } from './file-watch.ts';
import type { Logger } from '../lib/log.ts';
import type { Metrics } from './metrics.ts';
import { parseWeight, type Router } from './router.ts';
import { logEngines, parseTranslators, readTranslatorsFile, TranslatorFileError, type TranslatorSet } from './translators.ts';

/** The translators file as the start-up (and `turnout check`) reads it; its text is the reload baseline. */
export function loadTranslators(file: string): { set: TranslatorSet; text: string } {
  try {
    return readTranslatorsFile(file);
  } catch (err) {
    if (err instanceof TranslatorFileError) throw new ConfigError(`TURNOUT_TRANSLATORS: ${err.message}`, 'TURNOUT_TRANSLATORS');
    throw err;
  }
}

/** The weight file as the start-up reads it; its text is the reload baseline. */
export function loadWeight(file: string): { weight: number; text: string } {
  try {
    const text = readFileSync(file, 'utf8');
    return { weight: parseWeight(text), text };
  } catch (err) {
    throw new ConfigError(`TURNOUT_WEIGHT_FILE: ${file}: ${(err as Error).message}`, 'TURNOUT_WEIGHT_FILE');
  }
}

/** Calls `use` with each valid new version of the translators file. */
export function watchTranslators(
  file: string,
  baseline: string,
  use: (set: TranslatorSet) => void,
  report: { logger: Logger; metrics: Metrics },
): FileWatch {
  const { logger, metrics } = report;
  return watchFileContent(file, baseline, (text) => {
    let set: TranslatorSet;
    try {
      set = parseTranslators(text, file);
    } catch (err) {
      metrics.reloadFailures.inc();
      logger.error({ err: (err as Error).message }, 'translators file is invalid; the previous set stays active');
      return;
    }
    use(set);
    logger.info({ steps: set.stepLabels() }, 'translators reloaded');
    logEngines(set, logger);
  }, (err) => logger.warn({ err: String(err) }, 'cannot read the translators file; the previous set stays active'));
}

/** Sets the router's weight from each valid new version of the weight file. */
export function watchWeight(file: string, baseline: string, router: Router, logger: Logger): FileWatch {
  return watchFileContent(file, baseline, (text) => {
    try {
      router.setWeight(parseWeight(text), 'file');
    } catch (err) {
      logger.error({ err: (err as Error).message, file }, 'weight file is invalid; the weight stays as it was');
    }
  }, (err) => logger.warn({ err: String(err) }, 'cannot read the weight file; the weight stays as it was'));
}
