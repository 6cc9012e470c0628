// The container image without a container engine: scripts/build-bundle.sh
// replays the Dockerfile (its stages, COPY, RUN npm ci / npm run build, which
// bundles with esbuild) into a clean temporary folder, and this test runs the
// result the way the image would: ENTRYPOINT + CMD from the Dockerfile, in
// its WORKDIR, with its ENV. It checks what the image holds (the bundle only:
// no node_modules, no sources), then `--help`, `check`, a short `run` on the
// embedded broker with one message published over HTTP and delivered to a
// small HTTP app, one translated by the bundled worker process, SIGTERM and a
// clean exit; and that a process loads only its role's libraries (an AMQP
// sidecar never reads the AWS SDK's or kafkajs's files). The Dockerfile is
// parsed here too, so that what it copies, where it runs and how it is
// health-checked are asserted against the bundle, not assumed.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IMAGE_ENV, IMAGE_NODE_ARGS } from '../../bench/lib/runtime.ts';
import { envName, schema } from '../../config/schema.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// --- the Dockerfile, as data ------------------------------------------------------
interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function parseDockerfile(text: string): { instructions: Instruction[]; stages: { image: string; name?: string }[] } {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) || (current === '' && raw.trim() === '')) continue;
    if (/\\\s*$/.test(raw)) {
      current += raw.replace(/\\\s*$/, ' ');
      continue;
    }
    lines.push(current + raw);
    current = '';
  }
  const instructions: Instruction[] = [];
  const stages: { image: string; name?: string }[] = [];
  for (const line of lines) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    assert.ok(m, `cannot read Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(f, `FROM ${args}`);
      stages.push(f[2] !== undefined ? { image: f[1]!, name: f[2] } : { image: f[1]! });
    }
    instructions.push({ op, args, stage: stages.length - 1 });
  }
  return { instructions, stages };
}

const dockerfileText = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const { instructions, stages } = parseDockerfile(dockerfileText);
const finalStage = stages.length - 1;
const inFinal = (op: string): Instruction[] => instructions.filter((i) => i.stage === finalStage && i.op === op);
const one = (op: string): Instruction => {
  const found = inFinal(op);
  assert.equal(found.length, 1, `the final stage has one ${op}`);
  return found[0]!;
};
const jsonArray = (s: string): string[] => {
  const v = JSON.parse(s) as unknown;
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `exec form expected: ${s}`);
  return v as string[];
};
const globalArgs = new Map<string, string>();
for (const i of instructions.filter((x) => x.op === 'ARG' && x.stage === -1)) {
  const [k, v] = i.args.split('=');
  if (k !== undefined && v !== undefined) globalArgs.set(k.trim(), v.trim());
}
const expandArgs = (s: string): string => s.replace(/\$\{?(\w+)\}?/g, (_, n: string) => globalArgs.get(n) ?? '');

const entrypoint = jsonArray(one('ENTRYPOINT').args);
const cmd = jsonArray(one('CMD').args);
const workdir = one('WORKDIR').args;
const finalEnv: Record<string, string> = {};
for (const i of inFinal('ENV')) {
  for (const kv of i.args.split(/\s+/)) {
    const [k, ...v] = kv.split('=');
    if (k !== undefined) finalEnv[k] = v.join('=');
  }
}
const healthcheck = (() => {
  const h = one('HEALTHCHECK').args;
  const m = /\bCMD\s+(\[.*\])\s*$/.exec(h);
  assert.ok(m, `HEALTHCHECK must use the exec form: ${h}`);
  return jsonArray(m[1]!);
})();

/** Sources each COPY takes from the build context (not from another stage). */
const contextCopies = instructions
  .filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))
  .flatMap((i) => {
    const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
    return words.slice(0, -1);
  });
/** Top-level entries the final stage puts into its WORKDIR. */
const finalEntries = inFinal('COPY').flatMap((i) => {
  const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
  const dest = words[words.length - 1]!;
  const sources = words.slice(0, -1);
  if (dest === './' || dest === '.') return sources.map((s) => s.replace(/\/$/, '').split('/').pop()!);
  return [dest.replace(/^\.\//, '').replace(/\/$/, '').split('/')[0]!];
});

// --- running the bundle ---------------------------------------------------------------
let bundle = '';
let buildSeconds = 0;
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NODE_ENV comes from the Dockerfile's ENV; NODE_EXTRA_CA_CERTS and the like stay (npm needs them).
    if (v === undefined || k.startsWith('TURNOUT_') || k === 'NODE_ENV' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return env;
};
/** The image's ENTRYPOINT with these arguments, in its WORKDIR, with its ENV. */
const imageCommand = (args: string[]): { file: string; argv: string[] } => {
  assert.equal(entrypoint[0], 'node', 'the entrypoint runs node directly (PID 1 gets the signals)');
  return { file: process.execPath, argv: [...entrypoint.slice(1), ...args] };
};
function runImage(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const c = imageCommand(args);
  const r = spawnSync(c.file, c.argv, { cwd: bundle, env: { ...cleanEnv(), ...finalEnv, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface RunningImage {
  child: ChildProcess;
  port: number;
  base: string;
  out(): string;
  logs(): Record<string, unknown>[];
  /** The exit code, or a failure after ms. */
  exitWithin(ms: number): Promise<number | string>;
  kill(): Promise<void>;
}

/** The image's default command (ENTRYPOINT + CMD) with these variables (and extra node flags), ready. */
async function startImage(env: Record<string, string>, nodeFlags: string[] = []): Promise<RunningImage> {
  const c = imageCommand(cmd);
  const script = c.argv.indexOf(entrypoint.at(-1)!);
  const argv = [...c.argv.slice(0, script), ...nodeFlags, ...c.argv.slice(script)];
  const child = spawn(c.file, argv, {
    cwd: bundle,
    env: { ...cleanEnv(), ...finalEnv, TURNOUT_PORT: '0', TURNOUT_HOST: '127.0.0.1', TURNOUT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const logs = (): Record<string, unknown>[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    const port = await waitFor('the bundle to listen', (): number | undefined => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
      const l = logs().find((x) => x.msg === 'HTTP listening');
      return l ? Number(l.port) : undefined;
    }, 20_000) as number; // waitFor returns only a truthy value
    const base = `http://127.0.0.1:${port}`;
    await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 10_000);
    return {
      child, port, base, out: () => out, logs, kill,
      exitWithin: (ms) => Promise.race([exited, new Promise<string>((r) => setTimeout(() => r(`still running ${ms} ms after the signal`), ms).unref())]),
    };
  } catch (err) {
    await kill();
    throw new Error(`${String(err)}\n--- output ---\n${out}`);
  }
}

/** dist/modules.json: output file -> the packages bundled into it. */
function readManifest(): Record<string, string[]> {
  return JSON.parse(readFileSync(join(bundle, 'dist', 'modules.json'), 'utf8')) as Record<string, string[]>;
}

/**
 * A node flag that records every file the process loads (ES imports,
 * dynamic import() and require alike: module.registerHooks) into `log`, and
 * the packages those files of the bundle hold, by dist/modules.json. A load
 * hook, not a resolve hook: the bundle's entry resolves its own chunks with a
 * hook that answers before this one would be asked (scripts/bundle.ts,
 * entryStub), but every file is loaded.
 */
function moduleRecorder(): { flag: string; env: Record<string, string>; packages(): Set<string>; files(): string[] } {
  const log = join(mkdtempSync(join(tmpdir(), 'turnout-modules-')), 'loaded.txt');
  writeFileSync(log, '');
  const code = "import{registerHooks}from'node:module';import{appendFileSync}from'node:fs';const f=process.env.MODULES_LOG;"
    + "registerHooks({load(u,c,n){if(u.startsWith('file:'))appendFileSync(f,u+'\\n');return n(u,c);}});";
  const files = (): string[] => [...new Set(readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((u) => relative(join(bundle, 'dist'), fileURLToPath(u))))];
  return {
    flag: `--import=data:text/javascript,${encodeURIComponent(code)}`,
    env: { MODULES_LOG: log },
    files,
    packages: () => {
      const manifest = readManifest();
      const out = new Set<string>();
      for (const f of files()) {
        assert.ok(manifest[f] !== undefined, `loaded ${f}, which is not a file of the bundle`);
        for (const p of manifest[f]) out.add(p);
      }
      return out;
    },
  };
}

/** The child processes of pid, with their command lines. */
function childrenOf(pid: number): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(name), cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '') });
    } catch {
      // The process ended while it was being read.
    }
  }
  return out;
}

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

async function depth(base: string, q: string): Promise<{ depth: number; inflight: number }> {
  return (await (await fetch(`${base}/v1/queues/${q}`)).json()) as { depth: number; inflight: number };
}

describe('container image (Dockerfile replayed by scripts/build-bundle.sh)', () => {
  before(() => {
    const parent = mkdtempSync(join(tmpdir(), 'turnout-image-'));
    bundle = join(parent, 'app');
    // The bundle must not resolve packages from anywhere but its own node_modules.
    for (let d = parent; d !== dirname(d); d = dirname(d)) {
      assert.ok(!existsSync(join(d, 'node_modules')), `${d}/node_modules would leak into the bundle's module resolution`);
    }
    const t0 = Date.now();
    const r = spawnSync('bash', [join(ROOT, 'scripts/build-bundle.sh'), bundle], { encoding: 'utf8', timeout: 240_000, env: cleanEnv() });
    buildSeconds = (Date.now() - t0) / 1000;
    assert.equal(r.status, 0, `build-bundle.sh failed:\n${r.stdout}\n${r.stderr}`);
  });
  after(() => {
    if (bundle !== '') rmSync(dirname(bundle), { recursive: true, force: true });
  });

  test('the Dockerfile: Node 24 slim stages, non-root numeric user, SIGTERM, exec-form entrypoint, health check on /healthz', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const s of stages) assert.equal(expandArgs(s.image), 'node:24-slim');
    const user = one('USER').args;
    assert.match(user, /^\d+(:\d+)?$/, 'a numeric USER, so runAsNonRoot can verify it');
    assert.notEqual(Number(user.split(':')[0]), 0, 'not root');
    assert.equal(one('STOPSIGNAL').args, 'SIGTERM');
    assert.equal(entrypoint[0], 'node');
    assert.equal(entrypoint.at(-1), 'dist/cli.js');
    for (const flag of entrypoint.slice(1, -1)) assert.match(flag, /^--[a-z-]+(=\S+)?$/, `entrypoint items between node and the CLI are node flags: ${flag}`);
    // The benchmarks measure what the image runs: same node flags, same malloc settings.
    const mallocEnv = Object.entries(finalEnv).filter(([k]) => k.startsWith('MALLOC_'));
    assert.ok(mallocEnv.length > 0, 'the runtime stage sets the glibc malloc variables the benchmarks measured');
    assert.deepEqual(IMAGE_NODE_ARGS.filter((a) => !a.startsWith('--max-heap-size=')), entrypoint.slice(1, -1), 'bench/lib/runtime.ts IMAGE_NODE_ARGS = the ENTRYPOINT flags (plus the emulated container heap)');
    assert.deepEqual(IMAGE_ENV, Object.fromEntries(mallocEnv), 'bench/lib/runtime.ts IMAGE_ENV = the Dockerfile ENV for malloc');
    assert.deepEqual(cmd, ['run']);
    assert.equal(healthcheck[0], 'node');
    assert.ok(healthcheck.some((a) => a.includes('/healthz')), 'HEALTHCHECK probes /healthz');
    assert.equal(one('EXPOSE').args, schema.port.default);
    // The bundle is built in a stage of its own; the final stage takes only its output.
    assert.ok(instructions.some((i) => i.op === 'RUN' && i.stage < finalStage && /\bnpm run build\b/.test(i.args)), 'a build stage runs npm run build');
    assert.equal(inFinal('RUN').length, 0, 'the final stage only copies: nothing installed or built there');
    assert.deepEqual(inFinal('COPY').map((i) => i.args), ['--from=build /app/dist ./dist'], 'the final stage copies the bundle, and nothing else');
  });

  test('.dockerignore allows exactly what the Dockerfile copies from the context', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
    assert.equal(lines[0], '*', 'an allowlist');
    const allowed = lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
    const copied = [...new Set(contextCopies.map((c) => c.replace(/^\.\//, '').replace(/\/$/, '')))];
    assert.deepEqual([...copied].sort(), [...allowed].sort());
  });

  test('the bundle holds exactly what the final stage copies: dist/ with every production dependency bundled, no node_modules, no sources', () => {
    assert.deepEqual(readdirSync(bundle).sort(), [...new Set(finalEntries)].sort());
    assert.deepEqual(finalEntries, ['dist']);
    const dist = join(bundle, 'dist');
    const shipped = readdirSync(dist);
    assert.ok(shipped.every((f) => statSync(join(dist, f)).isFile()), 'one flat folder (the pool finds worker.js next to its own chunk)');
    assert.deepEqual(shipped.filter((f) => !f.endsWith('.js')).sort(), ['modules.json', 'package.json'], 'only JavaScript besides the two JSON files');
    assert.ok(shipped.includes('cli.js') && shipped.includes('worker.js'), 'the two entry points');
    assert.deepEqual(JSON.parse(readFileSync(join(dist, 'package.json'), 'utf8')), { type: 'module' });
    // Every production dependency is in some file of the bundle, no devDependency is.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const manifest = readManifest();
    const bundled = new Set(Object.values(manifest).flat());
    for (const dep of Object.keys(pkg.dependencies)) assert.ok(bundled.has(dep), `dependency ${dep} is not bundled`);
    for (const dev of Object.keys(pkg.devDependencies)) assert.ok(!bundled.has(dev), `devDependency ${dev} is in the bundle`);
    assert.deepEqual(Object.keys(manifest).sort(), shipped.filter((f) => f.endsWith('.js')).sort(), 'modules.json lists every file');
    const mib = (p: string): string => (Number(spawnSync('du', ['-sk', p], { encoding: 'utf8' }).stdout.split('\t')[0]) / 1024).toFixed(1);
    process.stdout.write(`# bundle built in ${buildSeconds.toFixed(1)} s: ${shipped.length} files, ${mib(dist)} MiB\n`);
  });

  test('turnout --help lists every variable', () => {
    const r = runImage(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const spec of Object.values(schema)) assert.ok(r.stdout.includes(envName(spec.flag)), `--help does not list ${envName(spec.flag)}`);
  });

  test('turnout check validates the translators of k8s/base for a v1 app', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turnout-check-'));
    try {
      // The translators the manifests ship, as a file like the mounted ConfigMap.
      const cm = readFileSync(join(ROOT, 'k8s/base/translators-configmap.yaml'), 'utf8');
      const body = /translators\.yaml: \|\n((?: {4}.*\n?)+)/.exec(cm);
      assert.ok(body, 'translators.yaml block in the ConfigMap');
      const file = join(dir, 'translators.yaml');
      writeFileSync(file, body[1]!.replace(/^ {4}/gm, ''));
      const r = runImage(['check'], { TURNOUT_BROKER: 'memory', TURNOUT_SOURCE: 'orders', TURNOUT_APP_URL: 'http://127.0.0.1:8080/', TURNOUT_DLQ: 'orders.dlq', TURNOUT_ACCEPT: '1', TURNOUT_TRANSLATORS: file });
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /v2\s+translate via 2->1/);
      assert.match(r.stdout, /v1\s+pass/);
      const bad = runImage(['check'], { TURNOUT_PORT: 'tcp://10.0.0.1:8787' });
      assert.equal(bad.code, 2, 'a Kubernetes service-link value is refused at start');
      assert.match(bad.stderr, /enableServiceLinks/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('turnout run on the embedded broker', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp(() => 200);
    });
    after(async () => {
      await app.close();
    });

    test('a message published over HTTP is delivered once to the app; health check, metrics, SIGTERM and exit 0', async () => {
      const modules = moduleRecorder();
      const t = await startImage({ TURNOUT_BROKER: 'memory', TURNOUT_SOURCE: 'orders', TURNOUT_APP_URL: app.url, TURNOUT_DLQ: 'orders.dlq', ...modules.env }, [modules.flag]);
      try {
        const base = t.base;
        // The Dockerfile's own HEALTHCHECK command, as Docker would run it inside the container.
        const health = spawnSync(process.execPath, healthcheck.slice(1), { env: { ...cleanEnv(), TURNOUT_PORT: String(t.port) }, encoding: 'utf8', timeout: 10_000 });
        assert.equal(health.status, 0, `HEALTHCHECK failed: ${health.stderr}`);

        const id = `bundle-${Date.now()}`;
        const res = await fetch(`${base}/v1/publish/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-turnout-message-id': id, 'x-schema-version': '1' },
          body: JSON.stringify({ id, customer: { id: 'c-1' } }),
        });
        assert.equal(res.status, 202, await res.text());
        await waitFor(`delivery of ${id}`, () => app.accepted.has(id), 10_000);
        const got = app.accepted.get(id) ?? [];
        assert.equal(got.length, 1, 'delivered exactly once');
        assert.deepEqual(JSON.parse(got[0]!.body.toString('utf8')), { id, customer: { id: 'c-1' } });
        assert.equal(got[0]!.headers['x-turnout-source'], 'orders');
        // Account for it everywhere: acknowledged at the source, nothing dead-lettered.
        await waitFor('the source to be settled', async () => {
          const d = await depth(base, 'orders');
          return d.depth === 0 && d.inflight === 0;
        }, 5_000);
        assert.equal((await depth(base, 'orders.dlq')).depth, 0);
        const metrics = await (await fetch(`${base}/metrics`)).text();
        assert.match(metrics, /^turnout_messages_delivered_total\{source="orders"\} 1$/m);
        assert.match(metrics, /^turnout_messages_received_total\{source="orders",version="1"\} 1$/m);
        // prom-client's collectors, loaded one by one (src/process-metrics.ts), are in the bundle too.
        assert.match(metrics, /^process_cpu_seconds_total \d/m);
        assert.match(metrics, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
        assert.match(metrics, /^nodejs_eventloop_lag_p99_seconds \d/m);
        assert.equal(app.deliveries.length, 1, 'the app saw one request in all');
        // A consumer on the embedded broker: undici for the app, no broker client, no yargs.
        const loaded = modules.packages();
        for (const p of ['turnout', 'pino', 'prom-client', 'undici']) assert.ok(loaded.has(p), `${p} was not loaded: ${[...loaded].join(', ')}`);
        for (const p of ['amqplib', 'kafkajs', '@aws-sdk/client-sqs', 'yargs']) assert.ok(!loaded.has(p), `${p} was loaded by a consumer on the embedded broker`);

        t.child.kill('SIGTERM');
        assert.equal(await t.exitWithin(10_000), 0, t.out());
        assert.ok(t.logs().some((l) => l.msg === 'drained: every in-flight message finished'), t.out());
        // And the health check now fails, as it should for a stopped container.
        const down = spawnSync(process.execPath, healthcheck.slice(1), { env: { ...cleanEnv(), TURNOUT_PORT: String(t.port) }, encoding: 'utf8', timeout: 10_000 });
        assert.equal(down.status, 1);
      } finally {
        await t.kill();
      }
    });
    test('messages the app cannot take as is are translated, compiled in the sidecar and by the bundled worker process, and delivered once', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'turnout-translate-'));
      const translators = join(dir, 'translators.yaml');
      // 1->2 is in the compiled subset (runs in the sidecar); 3->2 uses ~>, which is not (runs in a worker).
      writeFileSync(translators, `"1->2": '$merge([$, {"shape": "v2"}])'\n"3->2": '$merge([$, {"shape": $uppercase("v2") ~> $lowercase()}])'\n`);
      const t = await startImage({ TURNOUT_BROKER: 'memory', TURNOUT_SOURCE: 'translated', TURNOUT_APP_URL: app.url, TURNOUT_DLQ: 'translated.dlq', TURNOUT_ACCEPT: '2', TURNOUT_TRANSLATORS: translators });
      try {
        for (const from of ['1', '3']) {
          const id = `bundle-translated-v${from}-${Date.now()}`;
          const res = await fetch(`${t.base}/v1/publish/translated`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-turnout-message-id': id, 'x-schema-version': from },
            body: JSON.stringify({ id }),
          });
          assert.equal(res.status, 202, await res.text());
          await waitFor(`delivery of ${id}`, () => app.accepted.has(id), 10_000);
          const got = app.accepted.get(id) ?? [];
          assert.equal(got.length, 1, 'delivered exactly once');
          assert.deepEqual(JSON.parse(got[0]!.body.toString('utf8')), { id, shape: 'v2' });
          assert.equal(got[0]!.headers['x-schema-version'], '2');
          assert.equal(got[0]!.headers['x-turnout-translated-from'], from);
        }
        await waitFor('the source to be settled', async () => {
          const d = await depth(t.base, 'translated');
          return d.depth === 0 && d.inflight === 0;
        }, 5_000);
        assert.equal((await depth(t.base, 'translated.dlq')).depth, 0);
        // The translation ran in worker processes forked from the bundle's own worker.js.
        const workers = childrenOf(t.child.pid!).filter((c) => c.cmdline.some((a) => a.endsWith('worker.js')));
        assert.ok(workers.length >= 1, `no translation worker among ${JSON.stringify(childrenOf(t.child.pid!))}`);
        for (const w of workers) assert.equal(w.cmdline.find((a) => a.endsWith('worker.js')), join(bundle, 'dist', 'worker.js'));
        // Each worker is a process of its own: its memory counts for the pod too.
        process.stdout.write(`# translation workers: ${workers.map((w) => `${rssMiB(w.pid).toFixed(1)} MiB`).join(', ')} RSS, sidecar ${rssMiB(t.child.pid!).toFixed(1)} MiB\n`);
        t.child.kill('SIGTERM');
        assert.equal(await t.exitWithin(10_000), 0, t.out());
      } finally {
        await t.kill();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  // Per-role loading: an AMQP sidecar reads amqplib's file of the bundle and
  // never the AWS SDK's, kafkajs's, undici's (no app) or yargs's. RabbitMQ
  // runs at 127.0.0.1:5672 for the integration tests; nothing is published.
  test('an AMQP publish-only sidecar loads amqplib and none of the other brokers\' libraries', async () => {
    const modules = moduleRecorder();
    const t = await startImage({ TURNOUT_BROKER: 'amqp://guest:guest@127.0.0.1:5672', ...modules.env }, [modules.flag]);
    try {
      const loaded = modules.packages();
      assert.ok(loaded.has('amqplib'), `amqplib was not loaded: ${[...loaded].join(', ')}`);
      for (const p of ['@aws-sdk/client-sqs', '@smithy/core', 'kafkajs', 'undici', 'yargs']) assert.ok(!loaded.has(p), `${p} was loaded by an AMQP sidecar (files: ${modules.files().join(', ')})`);
      t.child.kill('SIGTERM');
      assert.equal(await t.exitWithin(10_000), 0, t.out());
    } finally {
      await t.kill();
    }
  });

  // The consumer pod's shutdown as k8s/overlays/consumer/deployment.yaml
  // arranges it: turnout's preStop sends it SIGTERM while the app is in the
  // middle of a job; the app then gets its own SIGTERM and stops accepting
  // connections but finishes the request it is serving; later the kubelet
  // sends turnout SIGTERM again. The job must be acknowledged, nothing new
  // may reach the app, and turnout must exit 0.
  test('consumer shutdown order: preStop SIGTERM mid-job, app stops gracefully, second SIGTERM; the job is acked, nothing new is taken', async () => {
    const requests: string[] = [];
    let finishJob: () => void = () => {};
    let jobStarted: () => void = () => {};
    const jobRunning = new Promise<void>((r) => (jobStarted = r));
    const appServer: Server = createServer((req, res) => {
      requests.push(String(req.headers['x-turnout-message-id']));
      req.resume();
      // The job runs until the test lets it finish; a second request would be a violation anyway.
      finishJob = () => void res.writeHead(200).end();
      jobStarted();
    });
    await new Promise<void>((r) => appServer.listen(0, '127.0.0.1', r));
    const appUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/messages`;
    const t = await startImage({ TURNOUT_BROKER: 'memory', TURNOUT_SOURCE: 'orders', TURNOUT_APP_URL: appUrl, TURNOUT_DLQ: 'orders.dlq', TURNOUT_CONCURRENCY: '1', TURNOUT_DRAIN_TIMEOUT: '20000' });
    try {
      for (const id of ['job-1', 'job-2']) {
        const res = await fetch(`${t.base}/v1/publish/orders`, { method: 'POST', headers: { 'x-turnout-message-id': id }, body: '{}' });
        assert.equal(res.status, 202);
      }
      await jobRunning;
      assert.deepEqual(requests, ['job-1']);
      // 1. preStop: turnout drains first.
      t.child.kill('SIGTERM');
      await waitFor('readyz 503', async () => (await fetch(`${t.base}/readyz`)).status === 503, 5_000);
      // 2. The app's SIGTERM: no new connections, the request in progress goes on.
      appServer.close();
      // 3. The kubelet's SIGTERM for the sidecar comes later; it must not cut the drain short.
      await new Promise((r) => setTimeout(r, 300));
      t.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(t.child.exitCode, null, 'turnout waits for the job in flight');
      finishJob();
      assert.equal(await t.exitWithin(10_000), 0, t.out());
      assert.deepEqual(requests, ['job-1'], 'nothing was delivered after SIGTERM');
      assert.ok(t.logs().some((l) => l.msg === 'drained: every in-flight message finished'), t.out());
      // job-2 was never taken: with a real broker it stays in the queue for the next pod
      // (the embedded broker says it still held it when the process ended).
      assert.ok(t.logs().some((l) => l.heldInMemory === 1), t.out());
    } finally {
      await t.kill();
      appServer.closeAllConnections();
    }
  });
});

describe('scripts/build-bundle.sh refuses what it cannot replay', () => {
  const attempt = (dockerfile: string): { code: number | null; stderr: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'turnout-df-'));
    try {
      writeFileSync(join(dir, 'Dockerfile'), dockerfile);
      const r = spawnSync('bash', [join(ROOT, 'scripts/build-bundle.sh'), join(dir, 'out')], { encoding: 'utf8', env: { ...cleanEnv(), TURNOUT_DOCKERFILE: join(dir, 'Dockerfile') }, timeout: 60_000 });
      return { code: r.status, stderr: r.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  test('an instruction it does not know (ADD) stops it', () => {
    const r = attempt('FROM node:24-slim\nWORKDIR /app\nADD https://example.com/x.tgz /app/\n');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /instruction ADD is not supported/);
  });
  test('a COPY of something .dockerignore excludes stops it, as the file would be missing in a real build', () => {
    const r = attempt('FROM node:24-slim\nWORKDIR /app\nCOPY test ./test\n');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /COPY test: excluded by \.dockerignore/);
  });
  test('a base image that is not Node 24 stops it', () => {
    const r = attempt('FROM node:20-slim\nWORKDIR /app\n');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not a node:24 image/);
  });
});
