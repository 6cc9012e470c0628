// SIGTERM/SIGINT: drain once, then exit (0 after a clean drain, 1 when
// unfinished messages had to be handed back). A second signal does not cut
// the drain short; it only says that a drain is under way.

import type { Logger } from '../lib/log.ts';
import type { Turnout } from './turnout.ts';

export interface ShutdownHook {
  /** The sidecar to drain; a signal that came before it existed drains it at once. */
  attach(turnout: Turnout): void;
}

export function installShutdown(logger: Logger, exit: (code: number) => void = (c) => process.exit(c)): ShutdownHook {
  let turnout: Turnout | undefined;
  let signalled: string | undefined;
  const drain = (stopping: Turnout): void => {
    stopping.shutdown().then(
      (r) => {
        logger.info({ clean: r.clean, released: r.released }, 'stopped');
        logger.flush?.();
        exit(r.clean ? 0 : 1);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  const onSignal = (signal: string): void => {
    if (signalled !== undefined) {
      logger.info({ signal }, 'already draining; waiting for in-flight messages (TURNOUT_DRAIN_TIMEOUT)');
      return;
    }
    signalled = signal;
    logger.info({ signal }, 'shutdown requested');
    if (turnout) drain(turnout);
    else {
      // Still starting: nothing is in flight yet.
      logger.info('stopped before start-up finished');
      exit(0);
    }
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  return {
    attach(t) {
      turnout = t;
      if (signalled !== undefined) drain(t);
    },
  };
}
