// The product's external surface, read from the code itself (the schema,
// the HTTP server, the metrics, the header literals, the CLI), so that
// test/unit/reference.test.ts can hold the docs to it. Every function here
// derives its list from the source: a new variable, endpoint, metric, header,
// command or exit code shows up without touching this file.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { envName, schema } from '../../config/schema.ts';
import { Metrics } from '../../src/metrics.ts';
import { RolloutMetrics } from '../../src/rollout/metrics.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The repository's files: git's list, or (no git, e.g. an unpacked tarball) a walk that skips what git ignores. */
export function trackedFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter((f) => f !== '');
  } catch {
    const out: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        if (['.git', 'node_modules', '.cache', 'dist'].includes(name)) continue;
        const full = join(dir, name);
        if (statSync(full).isDirectory()) walk(full);
        else out.push(relative(ROOT, full));
      }
    };
    walk(ROOT);
    return out;
  }
}

/** Source files of the product (not tests, not benchmarks). */
export function productSources(): string[] {
  return trackedFiles().filter((f) => /^(src|adapters|config)\/.*\.ts$/.test(f));
}

/** Removes // and /* comments, so that words in comments are not taken for code. */
export function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Empties string literals ('…', "…", `…`), keeping the quotes. */
export function stripStrings(code: string): string {
  return code.replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, (m) => `${m[0]}${m[0]}`);
}

export interface Variable {
  variable: string;
  flag: string;
}

export function variables(): Variable[] {
  return Object.values(schema).map((spec) => ({ variable: envName(spec.flag), flag: `--${spec.flag}` }));
}

export interface Route {
  method: string;
  /** The path literal the server compares with. */
  literal: string;
  /** True for `path.startsWith(literal)`: the rest of the path is a parameter. */
  prefix: boolean;
}

export const SERVER_FILE = 'src/http/server.ts';

/**
 * The endpoints of the HTTP server: every `if (path === '…' || path.startsWith('…'))`
 * block of its dispatch and the method its first `only('…')` accepts.
 */
export function routes(): Route[] {
  const code = stripComments(read(SERVER_FILE));
  const out: Route[] = [];
  const block = /if \(((?:\s*(?:\|\|\s*)?path(?: === '[^']+'|\.startsWith\('[^']+'\)))+)\s*\)\s*\{([\s\S]*?)only\('([A-Z]+)'\)/g;
  for (const m of code.matchAll(block)) {
    const method = m[3] as string;
    for (const c of (m[1] as string).matchAll(/path(?: === '([^']+)'|\.startsWith\('([^']+)'\))/g)) {
      if (c[1] !== undefined) out.push({ method, literal: c[1], prefix: false });
      else out.push({ method, literal: c[2] as string, prefix: true });
    }
  }
  return out;
}

/** Every path-like string literal of the server file ('/…'), to catch routes the extraction does not understand. */
export function serverPathLiterals(): string[] {
  const code = stripComments(read(SERVER_FILE));
  return [...new Set([...code.matchAll(/'(\/[^']+)'/g)].map((m) => m[1] as string))];
}

/** The files of the sidecar's HTTP server: src/http/*.ts (dispatch, access rules, limits, body). */
export const httpFiles = (): string[] => productSources().filter((f) => /^src\/http\/[^/]+\.ts$/.test(f));

/**
 * Statuses node:http itself answers for an option that src/http/limits.ts
 * passes to createServer (serverOptions()): the timeouts 408, the header size
 * 431; server.maxHeadersCount (limitServer()) is 431 too.
 */
const NODE_HTTP_STATUS: Record<string, number> = { headersTimeout: 408, requestTimeout: 408, maxHeaderSize: 431, maxHeadersCount: 431 };

/** Status codes given as the status argument of send/fail/writeHead, a status table or PublishRefused in `code`. */
function statusesIn(code: string): Set<number> {
  const places = [
    /\b(?:send|fail)\(res,\s*([^,]+),/g,
    /\bwriteHead\(([^,]+),/g,
    /^\s*'?[\w-]*'?:\s*(\d{3}),?\s*$/gm,
    /\bPublishRefused\((\d{3})/g,
    /\bstatus:\s*(\d{3})\b/g,
  ];
  const found = new Set<number>();
  for (const re of places) for (const m of code.matchAll(re)) for (const d of (m[1] as string).matchAll(/\b([1-5]\d\d)\b/g)) found.add(Number(d[1]));
  return found;
}

/**
 * HTTP status codes the server can answer with: the status argument of every
 * send/fail/writeHead in src/http/ (dispatch, access refusals, the connection
 * cap), the broker-error table, the publish refusals, and what node:http
 * answers for the limits the server sets.
 */
export function statusCodes(): number[] {
  const files = [...httpFiles(), 'src/publish.ts'];
  const found = statusesIn(files.map((f) => stripStrings(stripComments(read(f)))).join('\n'));
  const limits = stripComments(read('src/http/limits.ts'));
  for (const [option, status] of Object.entries(NODE_HTTP_STATUS)) if (new RegExp(`\\b${option}\\b`).test(limits)) found.add(status);
  return [...found].sort();
}

export const ROLLOUT_HTTP_FILE = 'src/rollout/http.ts';

/**
 * The endpoints of the rollout controller (turnout rollout): every
 * `if (path === '…')` block with the method its `only('…')` accepts, and one
 * route per name of its COMMANDS list for the `/^\/v1\/rollout\/([a-z]+)$/`
 * pattern, with the method of the `only('…')` after it.
 */
export function rolloutRoutes(): Route[] {
  const code = stripComments(read(ROLLOUT_HTTP_FILE));
  const out: Route[] = [];
  for (const m of code.matchAll(/if \(path === '([^']+)'\)\s*\{[\s\S]*?only\('([A-Z]+)'\)/g)) out.push({ method: m[2] as string, literal: m[1] as string, prefix: false });
  const names = /\bCOMMANDS\b[^=]*=\s*\[([^\]]*)\]/.exec(code);
  const pattern = /\/\^((?:\\\/[a-z0-9-]+)+)\\\/\(\[a-z\]\+\)\$\/\.exec\(path\)[\s\S]*?only\('([A-Z]+)'\)/.exec(code);
  if (names && pattern) {
    const base = (pattern[1] as string).replace(/\\\//g, '/');
    for (const n of (names[1] as string).matchAll(/'([a-z]+)'/g)) out.push({ method: pattern[2] as string, literal: `${base}/${n[1]}`, prefix: false });
  }
  return out;
}

/** Every path-like string literal and regular expression of the controller's HTTP file, to catch routes rolloutRoutes() does not understand. */
export function rolloutPathLiterals(): string[] {
  const code = stripComments(read(ROLLOUT_HTTP_FILE));
  const literals = [...code.matchAll(/'(\/[^']+)'/g)].map((m) => m[1] as string);
  const patterns = [...code.matchAll(/\/\^((?:\\\/[a-z0-9-]+)+)[^/]*\/\.exec/g)].map((m) => (m[1] as string).replace(/\\\//g, '/'));
  return [...new Set([...literals, ...patterns])];
}

/** Status codes the controller's HTTP API answers with: its own sends and refusals and the controller's command results. */
export function rolloutStatusCodes(): number[] {
  const code = ['src/rollout/http.ts', 'src/rollout/controller.ts'].map((f) => stripStrings(stripComments(read(f)))).join('\n');
  return [...statusesIn(code)].sort();
}

export interface MetricInfo {
  name: string;
  type: string;
  labels: string[];
}

/** turnout's own metrics, as they are registered on a fresh Registry (the default process metrics left out). */
export function metrics(): MetricInfo[] {
  const registry = new Registry();
  new Metrics(registry, { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
  return registry.getMetricsAsArray().map((m) => {
    const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    return { name: m.name, type: String(m.type), labels: [...labels] };
  });
}

/** The rollout controller's metrics (turnout rollout), as they are registered on a fresh Registry. */
export function rolloutMetrics(): MetricInfo[] {
  const registry = new Registry();
  new RolloutMetrics(registry, [], { defaultMetrics: false });
  return registry.getMetricsAsArray().map((m) => {
    const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    return { name: m.name, type: String(m.type), labels: [...labels] };
  });
}

/**
 * The headers turnout names in its code: every quoted literal starting with
 * x-turnout, every `*_HEADER = '…'` constant, and the default version header.
 * A literal ending in '-' is a prefix the code matches on (startsWith), not a header.
 */
export function headers(): string[] {
  const found = new Set<string>();
  for (const file of productSources()) {
    const code = stripComments(read(file));
    for (const m of code.matchAll(/['"](x-turnout(?:[a-z0-9-]*[a-z0-9])?)['"]/gi)) found.add((m[1] as string).toLowerCase());
    for (const m of code.matchAll(/\b[A-Z_]*HEADER\s*=\s*['"]([^'"]+)['"]/g)) found.add((m[1] as string).toLowerCase());
  }
  found.add(schema.versionHeader.default);
  return [...found].sort();
}

export const CLI_FILE = 'src/cli.ts';

/**
 * The commands of the CLI: the first word of every `.command('…')` in the CLI
 * file (`'rollout <plan>'` is rollout) and of every `command: '…'` of a yargs
 * CommandModule in the product's sources (`turnout move`, `turnout drained`).
 */
export function commands(): string[] {
  const found: string[] = [];
  const cli = stripComments(read(CLI_FILE));
  for (const m of cli.matchAll(/\.command\(\s*(?:\[\s*)?'([a-z][a-z0-9-]*)[^']*'/g)) found.push(m[1] as string);
  for (const file of productSources()) {
    for (const m of stripComments(read(file)).matchAll(/\bcommand:\s*'([a-z][a-z0-9-]*)[^']*'/g)) found.push(m[1] as string);
  }
  return [...new Set(found)];
}

/**
 * Every exit code the product's code can produce: arguments of exit(…), values
 * given to process.exitCode, and the small numbers command functions return
 * (runCheck, runDemo: what becomes process.exitCode), and 128 + a signal's
 * number where a command answers a signal so. HTTP statuses (three digits)
 * are not exit codes and are left out.
 */
export function exitCodes(): number[] {
  const codes = new Set<number>();
  const add = (text: string): void => {
    for (const d of text.matchAll(/\b(\d{1,2})\b/g)) codes.add(Number(d[1]));
  };
  for (const file of productSources().filter((f) => f.startsWith('src/'))) {
    const code = stripComments(read(file));
    for (const m of code.matchAll(/\bexit\(([^()]*)\)/g)) add(m[1] as string);
    for (const m of code.matchAll(/exitCode\s*=\s*(\d{1,2})\b/g)) add(m[1] as string);
    for (const m of code.matchAll(/return\s+(\d{1,2})\s*;/g)) add(m[1] as string);
    for (const m of code.matchAll(/return\s+[^;\n]*\?\s*(\d{1,2})\s*:\s*(\d{1,2})\s*;/g)) add(`${m[1]} ${m[2]}`);
    // 128 + a signal's number (130 SIGINT, 143 SIGTERM), returned for a process stopped by that signal
    for (const m of code.matchAll(/\?\s*(1[2-6]\d)\s*:\s*(1[2-6]\d)\b/g)) for (const n of [m[1], m[2]]) if (Number(n) > 128 && Number(n) < 160) codes.add(Number(n));
  }
  return [...codes].sort();
}
