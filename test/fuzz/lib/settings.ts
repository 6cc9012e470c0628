// The campaign's knobs, from the environment, and how a failure is replayed.
//
//   FUZZ_SEED=n      the seed of every category (default: random, printed)
//   FUZZ_ONLY=name   run only the categories whose name contains it (e.g. memory.publish)
//   FUZZ_PATH=p      fast-check's replay path of a failing run (with FUZZ_SEED and FUZZ_ONLY)
//   FUZZ_SCALE=x     multiplies the number of runs (the bench sets it for the full campaign)
//   FUZZ_SHRINK=1    shrink a failing batch to a minimal one (slower)
//   FUZZ_HEALTH_MS   bound for the /healthz probe after every batch (default 500)

export interface FuzzSettings {
  seed: number;
  only: string | undefined;
  path: string | undefined;
  scale: number;
  shrink: boolean;
  healthMs: number;
}

export function fuzzSettings(env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  const seed = env.FUZZ_SEED !== undefined && env.FUZZ_SEED !== '' ? Number(env.FUZZ_SEED) : (Math.random() * 2 ** 31) | 0;
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${env.FUZZ_SEED}`);
  const scale = env.FUZZ_SCALE !== undefined ? Number(env.FUZZ_SCALE) : 1;
  if (!(scale > 0)) throw new Error(`FUZZ_SCALE must be a positive number, got ${env.FUZZ_SCALE}`);
  return {
    seed,
    only: env.FUZZ_ONLY || undefined,
    path: env.FUZZ_PATH || undefined,
    scale,
    shrink: env.FUZZ_SHRINK === '1',
    healthMs: Number(env.FUZZ_HEALTH_MS ?? 500),
  };
}

export const wanted = (s: FuzzSettings, category: string): boolean => s.only === undefined || category.includes(s.only);

/** The command line that replays one failing category. */
export function replayHint(s: FuzzSettings, category: string, path: string | undefined, file: string): string {
  return `FUZZ_SEED=${s.seed} FUZZ_ONLY=${category}${path !== undefined ? ` FUZZ_PATH=${path}` : ''} node ${file.endsWith('.test.ts') ? '--test ' : ''}${file}`;
}
