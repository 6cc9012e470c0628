// How the benchmarks run the processes they measure: as the image runs
// turnout. That means JavaScript (Node's type stripping alone adds ~18 MiB
// RSS: tsc's output here; the image's esbuild bundle, scripts/bundle.ts, where
// a benchmark measures the real process's footprint), the Dockerfile
// ENTRYPOINT's node flags and runtime ENV, and the heap Node sizes under the
// sidecar's 256 Mi limit. Baselines get the same
// settings, so the comparison stays fair. test/deploy/bundle.test.ts checks
// these against the Dockerfile.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * V8's heap as Node sizes it in a 256 MiB container (Heap::HeapSizeFromPhysicalMemory:
 * 256 MiB old generation), then the Dockerfile ENTRYPOINT's flags.
 */
export const IMAGE_NODE_ARGS = ['--max-heap-size=259', '--max-semi-space-size=4', '--liftoff-only', '--no-maglev'];
/** The Dockerfile's runtime ENV for glibc malloc. */
export const IMAGE_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' };

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Non-TypeScript files modules locate next to themselves: the Kafka mock-cluster launcher (test/integration/kafka/cluster.ts). */
const ASSETS = ['test/kafka'];

/** Compiles the tree with tsc into a fresh folder under .cache/; `js(file)` maps a source file to its output. */
export function compileTree(): { js: (sourceFile: string) => string; cleanup: () => void } {
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  const out = mkdtempSync(join(ROOT, '.cache', 'bench-js-'));
  const cleanup = (): void => rmSync(out, { recursive: true, force: true });
  process.stderr.write('bench: compiling to JavaScript with tsc…\n');
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json'), '--noEmit', 'false', '--outDir', out], { stdio: 'pipe' });
  } catch (err) {
    // Type errors elsewhere in the shared tree do not stop tsc from emitting; a missing output does.
    const detail = (err as { stdout?: Buffer }).stdout?.toString().trim().split('\n').slice(0, 5).join('\n') ?? '';
    process.stderr.write(`bench: tsc reported errors (emitting anyway):\n${detail}\n`);
  }
  // What the compiled tree needs besides JavaScript, found relative to the modules that use it.
  for (const asset of ASSETS) {
    mkdirSync(dirname(join(out, asset)), { recursive: true });
    symlinkSync(join(ROOT, asset), join(out, asset));
  }
  const js = (sourceFile: string): string => {
    const file = join(out, relative(ROOT, sourceFile)).replace(/\.ts$/, '.js');
    if (!existsSync(file)) {
      cleanup();
      throw new Error(`tsc did not produce ${file}`);
    }
    return file;
  };
  return { js, cleanup };
}

/** Set in a benchmark that runs under the image's runtime: its children get IMAGE_NODE_ARGS. */
const MARK = 'BENCH_IMAGE_RUNTIME';

/**
 * For the broker benchmarks, at the top of their entry: when the benchmark
 * runs from its .ts source, compile the tree and run the compiled benchmark
 * in its place, with IMAGE_ENV (its children inherit it) and the mark that
 * makes childNodeArgs() give its children IMAGE_NODE_ARGS. The benchmark's own
 * process keeps the host defaults: it hosts the app and the producer, which
 * are not what is measured. Returns the exit code to end with, or undefined
 * when this process is the one to run (already compiled, or
 * BENCH_RUNTIME=host asks for the sources with the host's defaults).
 */
export async function runCompiled(metaUrl: string): Promise<number | undefined> {
  const self = fileURLToPath(metaUrl);
  if (self.endsWith('.js') || process.env.BENCH_RUNTIME === 'host') return undefined;
  const { js, cleanup } = compileTree();
  try {
    const child = spawn(process.execPath, [js(self), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, ...IMAGE_ENV, [MARK]: '1' } });
    return await new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
  } finally {
    cleanup();
  }
}

/**
 * Node flags for a process the benchmark measures: the image's under
 * runCompiled(), none otherwise; then BENCH_NODE_ARGS (space-separated, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" or a flag to compare), which win.
 */
export function childNodeArgs(): string[] {
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  return [...(process.env[MARK] === '1' ? IMAGE_NODE_ARGS : []), ...extra];
}

/** Where the CLI is, next to the calling module's tree: its compiled .js or its .ts source. */
export function cliEntryFor(metaUrl: string, relativeToCaller: string): string {
  const ext = metaUrl.endsWith('.js') ? '.js' : '.ts';
  const entry = fileURLToPath(new URL(`${relativeToCaller}${ext}`, metaUrl));
  if (!existsSync(entry)) throw new Error(`turnout CLI not found at ${entry}`);
  return entry;
}
