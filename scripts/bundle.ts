// Bundles the production entry points with esbuild into OUT (default dist/):
//   node scripts/bundle.ts [OUT]        (npm run build; the Dockerfile's build stage)
//
// Two entries, both ES modules for Node 24:
//   OUT/cli.js      the command line (src/cli.ts)
//   OUT/worker.js   the translation worker process (src/translate/worker.ts),
//                   which src/translate/pool.ts forks as ./worker.js next to itself
// each a small starter (entryStub, below) of the bundled OUT/NAME.entry.js,
// plus shared chunks (OUT/chunk-*.js). Code splitting keeps every dynamic
// import() a separate file: a broker's client library (amqplib, the AWS SDK,
// kafkajs), yargs, and the rarely used commands are read from disk only by a
// process that imports them, so an AMQP sidecar never parses the AWS SDK.
// Entries and chunks share one folder on purpose: pool.ts finds the worker
// relative to its own module URL, whichever chunk it ends up in.
//
// Nothing is external: every production dependency bundles, so the image
// ships no node_modules at all. A dependency that ever needs to stay out
// (native addon, files read beside its sources) goes into EXTERNAL with the
// reason, and the Dockerfile must then copy it.
//
// Tried and not kept (bench/startup.bench.ts, router role): a V8 startup
// snapshot (node --build-snapshot) cannot hold this process: node:http's
// parser binding is not serializable, and everything that serves or sends
// HTTP loads it at module evaluation. Node's compile cache
// (NODE_COMPILE_CACHE, primed at build time) saved ~20 ms of CPU until ready
// for +0.3 MiB RSS and a cache keyed to the exact node binary and flags: not
// worth it. --optimize-for-size saved ~1 MiB idle at an unmeasured cost in
// throughput.

import { build, type Metafile, type Plugin } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXTERNAL: string[] = [];

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** What one import statement takes from a module: its default, and names (imported name, local name ignored). */
interface Clause {
  default: boolean;
  namespace: boolean;
  names: string[];
}

function clausesOf(source: string, specifier: string): Clause[] {
  const quoted = specifier.replace(/[/]/g, '\\/');
  const re = new RegExp(`import\\s+(?!type\\s)([^'";]*?)\\s*from\\s*['"]${quoted}['"]`, 'g');
  const out: Clause[] = [];
  for (const m of source.matchAll(re)) {
    const clause = m[1]!;
    const braces = /\{([^}]*)\}/.exec(clause);
    const outside = clause.replace(/\{[^}]*\}/, '').replace(/,/g, ' ').trim();
    const names = (braces?.[1] ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type ')).map((n) => n.split(/\s+as\s+/)[0]!.trim());
    out.push({ default: outside !== '' && !outside.startsWith('*'), namespace: outside.includes('*'), names });
  }
  return out;
}

/**
 * Node's built-in modules, imported from an ES module, through require().
 * Node builds an ES module namespace for a built-in by reading every one of
 * its exports, lazy getters included: `import … from 'node:http'` alone runs
 * http's WebSocket getter, which loads Node's own copy of undici (~250 ms of
 * compiling on a busy 2-core machine, and its heap), and `node:fs` loads its
 * streams. require() returns the module object without touching them. Each
 * importing module gets a stand-in that takes exactly the names its import
 * statements name from require()'s object; a namespace import
 * (`import * as`) or one the scan cannot read stays a real ES import.
 */
const builtinsByRequire: Plugin = {
  name: 'builtins-by-require',
  setup(b) {
    const sources = new Map<string, string>();
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      if (!BUILTINS.has(args.path) || args.kind !== 'import-statement') return undefined;
      let source = sources.get(args.importer);
      if (source === undefined) sources.set(args.importer, (source = readFileSync(args.importer, 'utf8')));
      const clauses = clausesOf(source, args.path);
      if (clauses.length === 0 || clauses.some((c) => c.namespace)) return { path: args.path, external: true };
      const names = [...new Set(clauses.flatMap((c) => c.names))].sort();
      const withDefault = clauses.some((c) => c.default);
      return { path: `${args.path.replace(/^node:/, '')}?${withDefault ? 'default,' : ''}${names.join(',')}`, namespace: 'builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => {
      const [name, list = ''] = args.path.split('?');
      const names = list.split(',').filter((n) => n !== '' && n !== 'default');
      const lines = [`const m = require('node:${name}');`];
      if (list.split(',').includes('default')) lines.push('export default m;');
      for (const n of names) lines.push(`export const ${n} = m.${n};`);
      return { contents: `${lines.join('\n')}\n`, loader: 'js' };
    });
  },
};

/**
 * OUT/modules.json: for each output file, the npm packages bundled into it
 * ("turnout" for the project's own modules). It tells which file holds what
 * (test/deploy/bundle.test.ts checks from it that an AMQP sidecar never reads
 * the AWS SDK's or kafkajs's files).
 */
/**
 * Parts of dependencies turnout never calls, replaced by a stub that throws
 * if anything ever does: prom-client's index loads its Pushgateway client
 * (https, tls, zlib) and its cluster aggregator (cluster) at start.
 */
const UNUSED: { from: RegExp; path: RegExp; what: string }[] = [
  { from: /node_modules\/prom-client\/index\.js$/, path: /^\.\/lib\/(pushgateway|cluster)$/, what: 'prom-client' },
];

const unusedParts: Plugin = {
  name: 'unused-parts',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => {
      const hit = UNUSED.find((u) => u.from.test(args.importer) && u.path.test(args.path));
      return hit ? { path: `${hit.what}/${args.path}`, namespace: 'unused' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'unused' }, (args) => ({
      contents: `module.exports = function unused() { throw new Error(${JSON.stringify(`${args.path} is not in the turnout bundle (scripts/bundle.ts)`)}); };\n`,
      loader: 'js',
    }));
  },
};

/**
 * undici for turnout's own modules: the two things src/delivery.ts takes from
 * it (Pool and errors) plus the request API undici's index puts on every
 * dispatcher, without the index's fetch, WebSocket, cache, mock agents and
 * proxy agents, which it loads at start. The package's exports map hides
 * these files from a normal import, so the plugin names them by path.
 */
const slimUndici: Plugin = {
  name: 'slim-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, (args) => (args.importer.includes('/node_modules/') ? undefined : { path: 'undici', namespace: 'slim-undici' }));
    b.onLoad({ filter: /.*/, namespace: 'slim-undici' }, () => {
      const lib = join(ROOT, 'node_modules', 'undici', 'lib');
      return {
        contents: [
          `import Pool from ${JSON.stringify(join(lib, 'dispatcher', 'pool.js'))};`,
          `import Dispatcher from ${JSON.stringify(join(lib, 'dispatcher', 'dispatcher.js'))};`,
          `import api from ${JSON.stringify(join(lib, 'api', 'index.js'))};`,
          `import errors from ${JSON.stringify(join(lib, 'core', 'errors.js'))};`,
          'Object.assign(Dispatcher.prototype, api);',
          'export { Pool, errors };',
        ].join('\n'),
        loader: 'js',
        resolveDir: lib,
      };
    });
  },
};

export function manifestOf(meta: Metafile, outdir: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [file, o] of Object.entries(meta.outputs)) {
    const packages = new Set<string>();
    for (const input of Object.keys(o.inputs)) {
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      packages.add(m ? m[1]! : input.startsWith('builtin:') ? 'node' : 'turnout');
    }
    out[relative(outdir, resolve(ROOT, file))] = [...packages].sort();
  }
  return out;
}

const ENTRY_SUFFIX = '.entry';

/**
 * What starts an entry point: NAME.js installs a resolve hook for the
 * bundle's own chunks, then imports NAME.entry.js (the bundled entry).
 *
 * Why: Node resolves each `import "./chunk-….js"` of the ~30 files a router
 * starts with (171 resolutions) through realpathSync and pathToFileURL, both
 * path.resolve(); node's path functions turn hot and, with --no-maglev, are
 * compiled by TurboFan within the first second, which pages ~4 MiB of
 * TurboFan's own machine code (the node binary's .text) into a process that
 * then sits idle. Measured (bench/startup.bench.ts, router role): idle RSS
 * 65.7 → 58.2 MiB. A sibling chunk needs no such lookup: the folder is flat,
 * written by this script, and every .js file in it is an ES module
 * (package.json beside them), so its URL is the specifier resolved against
 * the importer's URL. Any other specifier (node: built-ins, a path that
 * leaves the folder) takes Node's own resolution.
 */
function entryStub(entry: string): string {
  return `#!/usr/bin/env node
// Written by scripts/bundle.ts (entryStub): why it exists is explained there.
import * as mod from 'node:module';
const here = new URL('./', import.meta.url).href;
mod.registerHooks?.({
  resolve(specifier, context, next) {
    const parent = context.parentURL;
    if (specifier.startsWith('./') && specifier.endsWith('.js') && !specifier.includes('/', 2) && parent !== undefined && parent.startsWith(here) && !parent.includes('/', here.length)) {
      return { url: new URL(specifier, parent).href, format: 'module', shortCircuit: true };
    }
    return next(specifier, context);
  },
});
await import(${JSON.stringify(entry)});
`;
}

/** The image's entry points: output name -> source. */
export const ENTRIES: Record<string, string> = { cli: 'src/cli.ts', worker: 'src/translate/worker.ts' };

/**
 * Bundles `entries` (the image's by default; a benchmark adds its own
 * script, keeping worker.js beside it) into outdir, `external` left out.
 */
export async function bundle(outdir: string, entries: Record<string, string> = ENTRIES, external: string[] = []): Promise<Metafile> {
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    // Each entry is built as NAME.entry.js and started through NAME.js (entryStub).
    entryPoints: Object.fromEntries(Object.entries(entries).map(([name, source]) => [`${name}${ENTRY_SUFFIX}`, source])),
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: [...EXTERNAL, ...external],
    plugins: [builtinsByRequire, unusedParts, slimUndici],
    // CommonJS dependencies (amqplib, kafkajs, prom-client, the AWS SDK) call
    // require() for Node's built-ins; an ES module has no require of its own.
    banner: { js: "import { createRequire as __turnoutRequire } from 'node:module'; const require = __turnoutRequire(import.meta.url);" },
    // Minified identifiers and whitespace only: fewer bytes to read and parse at
    // start; syntax left as written keeps stack traces readable with names.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  // The folder is self-contained: Node reads its .js files as ES modules
  // because of this file, whatever lies above it.
  writeFileSync(join(outdir, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
  const manifest = manifestOf(result.metafile, outdir);
  for (const name of Object.keys(entries)) {
    writeFileSync(join(outdir, `${name}.js`), entryStub(`./${name}${ENTRY_SUFFIX}.js`), { mode: 0o755 });
    manifest[`${name}.js`] = ['turnout'];
  }
  writeFileSync(join(outdir, 'modules.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  return result.metafile;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(ROOT, process.argv[2] ?? 'dist');
  const meta = await bundle(out);
  const files = Object.entries(meta.outputs).map(([f, o]) => ({ f, kb: o.bytes / 1024 }));
  const total = files.reduce((s, x) => s + x.kb, 0);
  process.stderr.write(`bundle: ${files.length} files, ${(total / 1024).toFixed(1)} MiB into ${out}\n`);
}
