// Everything under k8s/ against what turnout really is: every manifest
// parses and has the structure its API defines (test/deploy/k8s-schema.ts),
// every kustomization builds, every TURNOUT_* variable is an option of the
// schema and every turnout container's environment loads as a valid
// configuration, the translators and weight ConfigMaps are valid for the
// code that reads them, the pods are shaped for draining (native sidecar,
// probes, preStop, grace period, no service links), monitoring scrapes each
// turnout exactly once, and the alerts and the dashboard use only metrics and
// labels turnout exports.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { loadConfig } from '../../config/load.ts';
import { envName, schema, type Config } from '../../config/schema.ts';
import { expandTarget } from '../../lib/targets.ts';
import { decide } from '../../src/gate.ts';
import { METRIC_NAMES, Metrics } from '../../src/metrics.ts';
import { ROLLOUT_METRIC_NAMES, RolloutMetrics } from '../../src/rollout/metrics.ts';
import { parseWeight } from '../../src/router.ts';
import { loadTranslatorsFile, translate } from '../../src/translators.ts';
import { allYamlDocs, build, K8S, kustomizationDirs, listFiles, readYaml, rel, ROOT, type Build, type Doc } from './k8s-files.ts';
import { validateDocument } from './k8s-schema.ts';
import { admits, selectorMatches, type Peer } from './network-policy.ts';

// --- small typed views on the manifests -----------------------------------------
type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const list = (v: unknown): Rec[] => (Array.isArray(v) ? v.map(rec) : []);
const strMap = (v: unknown): Record<string, string> => rec(v) as Record<string, string>;
const nameOf = (d: Rec): string => String(rec(d.metadata).name ?? '');

interface Pod {
  deployment: Doc;
  name: string;
  labels: Record<string, string>;
  spec: Rec;
  containers: Rec[];
  initContainers: Rec[];
}

const podsOf = (docs: Doc[]): Pod[] =>
  docs.filter((d) => d.body.kind === 'Deployment').map((d) => {
    const template = rec(rec(d.body.spec).template);
    const spec = rec(template.spec);
    return { deployment: d, name: nameOf(d.body), labels: strMap(rec(template.metadata).labels), spec, containers: list(spec.containers), initContainers: list(spec.initContainers) };
  });

const isTurnoutImage = (image: unknown): boolean => typeof image === 'string' && /(^|\/)turnout(:|@|$)/.test(image);

interface Sidecar {
  pod: Pod;
  container: Rec;
  /** true = an init container (native sidecar), false = a regular container. */
  init: boolean;
  env: Record<string, string>;
  config: Config;
  role: 'consumer' | 'router' | 'producer';
}

// Values that come from Secrets in the manifests: plausible stand-ins so the
// rest of the environment can be validated as the process would see it.
const SECRET_STANDINS: Record<string, string> = {
  TURNOUT_BROKER: 'amqp://user:pass@rabbitmq:5672/',
  TURNOUT_ADMIN_TOKEN: 'stand-in-token',
};
/** Secrets the manifests expect to exist (created by hand, see docs/kubernetes.md). */
const EXTERNAL_SECRETS = new Set(['turnout-broker', 'turnout-admin']);

function sidecarOf(pod: Pod): Sidecar | undefined {
  const found = [
    ...pod.initContainers.filter((c) => isTurnoutImage(c.image)).map((c) => ({ c, init: true })),
    ...pod.containers.filter((c) => isTurnoutImage(c.image)).map((c) => ({ c, init: false })),
  ];
  if (found.length === 0) return undefined;
  assert.equal(found.length, 1, `${pod.deployment.where}: one turnout container per pod`);
  const { c, init } = found[0]!;
  const env: Record<string, string> = {};
  for (const e of list(c.env)) {
    const name = String(e.name);
    if (e.value !== undefined) env[name] = String(e.value);
    else if (e.valueFrom !== undefined) {
      const standIn = SECRET_STANDINS[name];
      assert.ok(standIn !== undefined, `${pod.deployment.where}: ${name} comes from valueFrom; add a stand-in value to SECRET_STANDINS`);
      env[name] = standIn;
    }
  }
  const { config, warnings } = loadConfig({}, env);
  assert.deepEqual(warnings, [], `${pod.deployment.where}: turnout would warn at start`);
  const role = config.source === undefined ? 'producer' : config.appUrl !== undefined ? 'consumer' : 'router';
  return { pod, container: c, init, env, config, role };
}

const selects = (selector: unknown, labels: Record<string, string>): boolean => {
  const ml = strMap(rec(selector).matchLabels);
  assert.equal(rec(selector).matchExpressions, undefined, 'matchExpressions are not followed by this test');
  return Object.keys(ml).length > 0 && Object.entries(ml).every(([k, v]) => labels[k] === v);
};

// --- what is under k8s/ --------------------------------------------------------------
const yamlDocs = allYamlDocs();
const jsonFiles = listFiles(K8S, ['.json']);
const kdirs = kustomizationDirs();
// A kustomization that does not build is reported by its test, not at load.
const buildErrors: string[] = [];
const builds = new Map<string, Build>(kdirs.flatMap((d): [string, Build][] => {
  try {
    return [[rel(d), build(d)]];
  } catch (err) {
    buildErrors.push((err as Error).message);
    return [];
  }
}));
const buildOf = (dir: string): Build => {
  const b = builds.get(dir);
  assert.ok(b, `${dir} is a kustomization`);
  return b;
};
/** Kustomizations that deploy workloads (roles and examples). */
const roleBuilds = [...builds.entries()].filter(([d]) => d.startsWith('k8s/overlays/') || d.startsWith('k8s/examples/')).map(([, b]) => b);
const docsOfKind = (kind: string): Doc[] => yamlDocs.filter((d) => d.body.kind === kind);
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const guide = existsSync(join(ROOT, 'docs/kubernetes.md')) ? readFileSync(join(ROOT, 'docs/kubernetes.md'), 'utf8') : '';

describe('k8s manifests', () => {
  test('every YAML and JSON file under k8s/ parses, and the expected pieces are there', () => {
    assert.ok(yamlDocs.length >= 20, `found only ${yamlDocs.length} YAML documents`);
    for (const f of jsonFiles) assert.doesNotThrow(() => JSON.parse(readFileSync(f, 'utf8')), rel(f));
    const kinds = new Set(yamlDocs.map((d) => String(d.body.kind)));
    for (const k of ['Deployment', 'Service', 'ConfigMap', 'PodDisruptionBudget', 'NetworkPolicy', 'PodMonitor', 'ServiceMonitor', 'PrometheusRule', 'ScaledObject', 'Kustomization']) {
      assert.ok(kinds.has(k), `no ${k} under k8s/`);
    }
    for (const d of ['k8s/base', 'k8s/overlays/consumer', 'k8s/overlays/router', 'k8s/overlays/producer', 'k8s/examples/blue-green', 'k8s/monitoring']) {
      assert.ok(builds.has(d), `${d} is a kustomization`);
    }
    assert.ok(existsSync(join(K8S, 'grafana/turnout-dashboard.json')));
    const scalers = docsOfKind('ScaledObject').map((d) => String(list(rec(d.body.spec).triggers)[0]?.type));
    assert.deepEqual(scalers.sort(), ['aws-sqs-queue', 'kafka', 'rabbitmq']);
  });

  test('every manifest has the structure its API defines', () => {
    const errors = yamlDocs.flatMap((d) => validateDocument(d.body, d.where));
    assert.deepEqual(errors, []);
  });

  test('the structural check catches typos and wrong types (it can fail)', () => {
    const [consumer] = readYaml(join(K8S, 'overlays/consumer/deployment.yaml'));
    assert.ok(consumer);
    const broken = structuredClone(consumer.body) as Rec;
    const sidecar = list(rec(rec(rec(broken.spec).template).spec).initContainers)[0]!;
    sidecar.readinesProbe = sidecar.readinessProbe;
    rec(rec(rec(broken.spec).template).metadata).labels = { 'turnout.dev/metrics': true };
    const errors = validateDocument(broken, 'mutated');
    assert.ok(errors.some((e) => e.includes('unknown field readinesProbe')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('turnout.dev/metrics') && e.includes('label value')), errors.join('\n'));
  });

  test('every kustomization builds (resources exist, nothing defined twice) and every YAML file is used by one', () => {
    // build() throws on a missing resource or a duplicate object.
    assert.deepEqual(buildErrors, []);
    const used = new Set<string>();
    for (const b of builds.values()) for (const f of b.files) used.add(f);
    // k8s/keda holds one-of examples: apply the file for your broker (its README says why).
    const orphans = listFiles(K8S, ['.yaml', '.yml']).map(rel).filter((f) => !used.has(f) && !f.startsWith('k8s/keda/'));
    assert.deepEqual(orphans, []);
    for (const b of roleBuilds) {
      for (const pod of podsOf(b.docs)) {
        const s = sidecarOf(pod);
        if (!s) continue;
        const image = String(s.container.image).replace(/[:@].*$/, '');
        assert.ok(b.images.has(image), `${rel(b.dir)}: images: has no entry for ${image}, so kustomize edit set image would miss it`);
      }
    }
  });

  test('every TURNOUT_* variable named under k8s/ and in the guide is an option of the schema', () => {
    const options = new Set(Object.values(schema).map((s) => envName(s.flag)));
    // Named in comments only, as what a Kubernetes service link would inject.
    const serviceLinkNames = new Set(['TURNOUT_SERVICE_HOST']);
    const texts = [...listFiles(K8S, ['.yaml', '.yml', '.json', '.md']).map((f) => ({ f: rel(f), t: readFileSync(f, 'utf8') })), { f: 'docs/kubernetes.md', t: guide }];
    const bad: string[] = [];
    let seen = 0;
    for (const { f, t } of texts) {
      for (const m of t.matchAll(/\bTURNOUT_[A-Z0-9_]+\b/g)) {
        seen++;
        if (!options.has(m[0]) && !serviceLinkNames.has(m[0])) bad.push(`${f}: ${m[0]}`);
      }
    }
    assert.deepEqual(bad, []);
    assert.ok(seen > 50, `only ${seen} mentions: is the scan reading the files?`);
    for (const pod of roleBuilds.flatMap((b) => podsOf(b.docs))) {
      for (const c of [...pod.containers, ...pod.initContainers]) {
        for (const e of list(c.env)) {
          const n = String(e.name);
          if (n.startsWith('TURNOUT_')) assert.ok(options.has(n), `${pod.deployment.where}: ${n} is not an option`);
        }
      }
    }
  });

  test("every turnout container's environment is a valid configuration for its role", () => {
    const roles = new Map<string, string>();
    for (const b of roleBuilds) {
      for (const pod of podsOf(b.docs)) {
        const s = sidecarOf(pod); // loadConfig throws ConfigError on any invalid value or combination
        assert.ok(s, `${pod.deployment.where}: no turnout container`);
        roles.set(`${rel(b.dir)}:${pod.name}`, s.role);
      }
    }
    assert.equal(roles.get('k8s/overlays/consumer:orders-consumer'), 'consumer');
    assert.equal(roles.get('k8s/overlays/router:orders-router'), 'router');
    assert.equal(roles.get('k8s/overlays/producer:orders-api'), 'producer');
    assert.equal(roles.get('k8s/examples/blue-green:orders-consumer-blue'), 'consumer');
    assert.equal(roles.get('k8s/examples/blue-green:orders-consumer-green'), 'consumer');
  });

  test('pods are shaped for turnout: sidecar placement, probes, preStop, grace period, no service links, non-root', () => {
    const user = /^USER\s+(\d+)(?::(\d+))?\s*$/m.exec(dockerfile);
    assert.ok(user, 'the Dockerfile sets a numeric USER');
    const uid = Number(user[1]);
    for (const b of roleBuilds) {
      for (const pod of podsOf(b.docs)) {
        const where = `${rel(b.dir)} ${pod.name}`;
        const s = sidecarOf(pod);
        assert.ok(s);
        const c = s.container;
        const { config } = s;
        // Service links would inject TURNOUT_PORT=tcp://… from a Service named "turnout".
        assert.equal(pod.spec.enableServiceLinks, false, `${where}: enableServiceLinks must be false`);
        // Sidecar placement by role.
        if (s.role === 'router') {
          assert.equal(s.init, false, `${where}: a router runs turnout as its main container`);
          assert.equal(pod.containers.length, 1, `${where}: a router pod is turnout alone`);
          assert.equal(c.restartPolicy, undefined, `${where}: restartPolicy belongs on init containers only`);
        } else {
          assert.equal(s.init, true, `${where}: turnout must be a native sidecar (initContainers)`);
          assert.equal(c.restartPolicy, 'Always', `${where}: the sidecar init container needs restartPolicy: Always`);
          assert.ok(pod.containers.length >= 1, `${where}: no app container`);
          assert.ok(c.startupProbe, `${where}: a startupProbe makes the app start after turnout listens`);
        }
        // Ports and probes.
        const ports = list(c.ports);
        const named = ports.find((p) => p.containerPort === config.port);
        assert.ok(named && typeof named.name === 'string', `${where}: turnout's containerPort ${config.port} (TURNOUT_PORT) must be declared and named`);
        const probe = (k: string, path: string): void => {
          const g = rec(rec(c[k]).httpGet);
          assert.equal(g.path, path, `${where}: ${k} must GET ${path}`);
          assert.ok(g.port === named.name || g.port === config.port, `${where}: ${k} must use turnout's port`);
        };
        probe('readinessProbe', '/readyz');
        probe('livenessProbe', '/healthz');
        if (c.startupProbe) probe('startupProbe', '/healthz');
        const allPorts = [...pod.containers, ...pod.initContainers].flatMap((x) => list(x.ports));
        const names = allPorts.map((p) => p.name).filter((n) => n !== undefined);
        assert.equal(new Set(names).size, names.length, `${where}: port names must be unique in a pod`);
        const numbers = allPorts.map((p) => p.containerPort);
        assert.equal(new Set(numbers).size, numbers.length, `${where}: two containers of one pod cannot listen on one port`);
        // Draining: the grace period must let turnout finish.
        const grace = Number(pod.spec.terminationGracePeriodSeconds ?? 30);
        if (s.role === 'consumer') {
          assert.ok(config.drainTimeout >= config.deliveryTimeout, `${where}: TURNOUT_DRAIN_TIMEOUT (${config.drainTimeout}) must cover one whole delivery (TURNOUT_DELIVERY_TIMEOUT ${config.deliveryTimeout})`);
          const need = (config.deliveryTimeout + config.drainTimeout) / 1000;
          assert.ok(grace >= need, `${where}: terminationGracePeriodSeconds ${grace} < longest job + drain (${need} s)`);
          // The consumer's app is reached on localhost, at a port an app container declares.
          const app = new URL(config.appUrl ?? '');
          assert.ok(['127.0.0.1', 'localhost'].includes(app.hostname), `${where}: TURNOUT_APP_URL must point at the pod itself`);
          const appPorts = pod.containers.flatMap((x) => list(x.ports)).map((p) => p.containerPort);
          assert.ok(appPorts.includes(Number(app.port || 80)), `${where}: no app container listens on ${app.port}`);
          // preStop starts the drain before the app is signalled.
          const cmd = rec(rec(rec(c.lifecycle).preStop).exec).command;
          assert.ok(Array.isArray(cmd) && cmd[0] === 'node' && /process\.kill\(1, 'SIGTERM'\)/.test(String(cmd[2])), `${where}: the consumer's turnout needs the preStop that sends it SIGTERM`);
        } else {
          assert.ok(grace >= config.drainTimeout / 1000 + 10, `${where}: terminationGracePeriodSeconds ${grace} must exceed TURNOUT_DRAIN_TIMEOUT with a margin`);
          // A producer's app publishes through turnout until it exits: turnout must outlive it.
          if (s.role === 'producer') assert.equal(rec(c.lifecycle).preStop, undefined, `${where}: a producer's turnout must not drain before the app`);
        }
        // Non-root, with the image's numeric user.
        const psc = rec(pod.spec.securityContext);
        assert.equal(psc.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(psc.runAsUser, uid, `${where}: runAsUser must be the image's USER (${uid})`);
        const csc = rec(c.securityContext);
        assert.equal(csc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.equal(csc.readOnlyRootFilesystem, true, `${where}: turnout writes nothing to its filesystem`);
        // Resources on every container.
        for (const x of [...pod.containers, ...pod.initContainers]) {
          const r = rec(x.resources);
          assert.ok(rec(r.requests).cpu && rec(r.requests).memory && rec(r.limits).memory, `${where}: container ${String(x.name)} needs cpu/memory requests and a memory limit`);
        }
        // Selector and template agree.
        assert.ok(selects(rec(pod.deployment.body.spec).selector, pod.labels), `${where}: the selector does not match the pod template`);
      }
    }
  });

  test('references resolve within each kustomization: ConfigMaps, Secrets, Services, PodDisruptionBudgets', () => {
    for (const b of roleBuilds) {
      const pods = podsOf(b.docs);
      const configMaps = new Set(b.docs.filter((d) => d.body.kind === 'ConfigMap').map((d) => nameOf(d.body)));
      for (const pod of pods) {
        for (const v of list(pod.spec.volumes)) {
          const cm = rec(v.configMap);
          if (cm.name !== undefined) assert.ok(configMaps.has(String(cm.name)), `${rel(b.dir)} ${pod.name}: ConfigMap ${String(cm.name)} is not in the kustomization`);
        }
        for (const c of [...pod.containers, ...pod.initContainers]) {
          for (const e of list(c.env)) {
            const ref = rec(rec(e.valueFrom).secretKeyRef);
            if (ref.name !== undefined) {
              assert.ok(EXTERNAL_SECRETS.has(String(ref.name)), `${pod.name}: Secret ${String(ref.name)} is not one the guide tells users to create`);
            }
          }
        }
      }
      for (const d of b.docs.filter((x) => x.body.kind === 'PodDisruptionBudget')) {
        assert.ok(pods.some((p) => selects(rec(d.body.spec).selector, p.labels)), `${d.where}: selects no pod`);
      }
      for (const d of b.docs.filter((x) => x.body.kind === 'Service')) {
        const name = nameOf(d.body);
        // A Service named turnout… would inject TURNOUT_… variables through service links.
        assert.ok(!name.toUpperCase().replace(/-/g, '_').startsWith('TURNOUT'), `${d.where}: a Service named ${name} injects TURNOUT_* variables`);
        const sel = strMap(rec(d.body.spec).selector);
        const targets = pods.filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v));
        assert.ok(Object.keys(sel).length > 0 && targets.length > 0, `${d.where}: selects no pod`);
        for (const port of list(rec(d.body.spec).ports)) {
          if (typeof port.targetPort !== 'string') continue;
          for (const p of targets) {
            const has = [...p.containers, ...p.initContainers].some((c) => list(c.ports).some((x) => x.name === port.targetPort));
            assert.ok(has, `${d.where}: targetPort ${port.targetPort} is not a port of ${p.name}`);
          }
        }
      }
    }
    for (const secret of EXTERNAL_SECRETS) {
      assert.match(guide, new RegExp(`kubectl (-n \\S+ )?create secret generic ${secret} `), `docs/kubernetes.md must show how to create Secret ${secret}`);
    }
  });

  test('the mounted translators and weight ConfigMaps are valid for the code that reads them', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'turnout-k8s-'));
    try {
      let checked = 0;
      for (const b of roleBuilds) {
        const configMaps = new Map(b.docs.filter((d) => d.body.kind === 'ConfigMap').map((d) => [nameOf(d.body), strMap(d.body.data)]));
        for (const pod of podsOf(b.docs)) {
          const s = sidecarOf(pod);
          assert.ok(s);
          /** The ConfigMap content behind a file path, through this container's mounts. */
          const contentOf = (path: string): string => {
            const mount = list(s.container.volumeMounts).find((m) => path.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`));
            assert.ok(mount, `${pod.name}: nothing is mounted at ${path}`);
            // subPath mounts never see ConfigMap updates; turnout's reload depends on them.
            assert.equal(mount.subPath, undefined, `${pod.name}: mount ${String(mount.mountPath)} with subPath would not receive ConfigMap updates`);
            assert.equal(mount.readOnly, true, `${pod.name}: config mounts are read-only`);
            const volume = list(pod.spec.volumes).find((v) => v.name === mount.name);
            const cmName = String(rec(volume?.configMap).name);
            const data = configMaps.get(cmName);
            assert.ok(data, `${pod.name}: volume ${String(mount.name)} is not a ConfigMap of this kustomization`);
            const key = path.slice(String(mount.mountPath).replace(/\/$/, '').length + 1);
            const content = data[key];
            assert.ok(content !== undefined, `${pod.name}: ConfigMap ${cmName} has no key ${key} for ${path}`);
            return content;
          };
          if (s.config.weightFile !== undefined) {
            const w = parseWeight(contentOf(s.config.weightFile));
            assert.equal(w, 0, `${pod.name}: a migration starts with the green weight at 0`);
            checked++;
          }
          if (s.config.translators !== undefined) {
            const file = join(tmp, `${pod.name}-${basename(s.config.translators)}`);
            writeFileSync(file, contentOf(s.config.translators));
            const set = loadTranslatorsFile(file); // throws on a bad step, as turnout does at start
            const accept = s.config.accept;
            assert.ok(accept !== null, `${pod.name}: a consumer with translators says what it accepts`);
            // Every version of the example payloads reaches this app, translated correctly.
            const v1 = { id: 'o-1', customer: { id: 'c-7' }, email: 'a@example.com' };
            const v2 = { id: 'o-1', customer: { id: 'c-7' }, contact: { email: 'a@example.com' } };
            for (const [version, payload] of [[1, v1], [2, v2]] as const) {
              const d = decide({ [s.config.versionHeader]: String(version) }, { ...s.config, accept }, set);
              if (accept.includes(version)) {
                assert.equal(d.kind, 'pass');
                continue;
              }
              assert.equal(d.kind, 'translate', `${pod.name}: v${version} must translate to an accepted version, got ${d.kind}`);
              if (d.kind !== 'translate') continue;
              const out = JSON.parse((await translate(d.chain, Buffer.from(JSON.stringify(payload)))).toString('utf8')) as unknown;
              assert.deepEqual(out, d.chain.to === 1 ? v1 : v2, `${pod.name}: v${version} -> v${d.chain.to}`);
            }
            checked++;
          }
        }
      }
      assert.ok(checked >= 4, `only ${checked} mounted files checked`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('blue/green example: the router feeds the two consumers, and green dead-letters to blue', () => {
    const b = buildOf('k8s/examples/blue-green');
    const sidecars = podsOf(b.docs).map((p) => sidecarOf(p)).filter((s): s is Sidecar => s !== undefined);
    const router = sidecars.find((s) => s.role === 'router');
    assert.ok(router, 'the example has a router');
    const src = (s: Sidecar): string[] => s.config.source ?? [];
    const [routerSource] = src(router);
    assert.ok(routerSource !== undefined && src(router).length === 1);
    const blueQueue = expandTarget(router.config.blue ?? '', routerSource);
    const greenQueue = expandTarget(router.config.green ?? '', routerSource);
    const blue = sidecars.find((s) => s.role === 'consumer' && src(s).includes(blueQueue));
    const green = sidecars.find((s) => s.role === 'consumer' && src(s).includes(greenQueue));
    assert.ok(blue, `no consumer reads the blue target ${blueQueue}`);
    assert.ok(green, `no consumer reads the green target ${greenQueue}`);
    assert.equal(green.pod.labels['turnout.dev/color'], 'green');
    assert.equal(blue.pod.labels['turnout.dev/color'], 'blue');
    // The migration's safety net: what green cannot handle is processed by blue.
    assert.equal(expandTarget(green.config.dlq ?? '', greenQueue), blueQueue);
    // And blue's failures end in a real dead-letter queue, not back in green or the router's input.
    const blueDlq = expandTarget(blue.config.dlq ?? '', blueQueue);
    assert.ok(![greenQueue, routerSource, blueQueue].includes(blueDlq), `blue's TURNOUT_DLQ ${blueDlq} would loop`);
    // The legacy side keeps the old version, the new side the new one.
    assert.deepEqual(blue.config.accept, [1]);
    assert.deepEqual(green.config.accept, [2]);
  });

  test('monitoring scrapes every turnout pod exactly once, on its named port', () => {
    const podMonitors = docsOfKind('PodMonitor');
    const serviceMonitors = docsOfKind('ServiceMonitor');
    for (const b of roleBuilds) {
      const services = b.docs.filter((d) => d.body.kind === 'Service');
      for (const pod of podsOf(b.docs)) {
        const s = sidecarOf(pod);
        assert.ok(s);
        const portName = list(s.container.ports).find((p) => p.containerPort === s.config.port)?.name;
        let scrapes = 0;
        for (const pm of podMonitors) {
          if (!selects(rec(pm.body.spec).selector, pod.labels)) continue;
          for (const ep of list(rec(pm.body.spec).podMetricsEndpoints)) {
            assert.equal(ep.port, portName, `${pm.where} scrapes port ${String(ep.port)} of ${pod.name}, turnout's is ${String(portName)}`);
            assert.equal(ep.path ?? '/metrics', '/metrics');
            scrapes++;
          }
        }
        for (const svc of services) {
          const sel = strMap(rec(svc.body.spec).selector);
          if (!Object.entries(sel).every(([k, v]) => pod.labels[k] === v)) continue;
          const svcLabels = strMap(rec(svc.body.metadata).labels);
          for (const sm of serviceMonitors) {
            if (!selects(rec(sm.body.spec).selector, svcLabels)) continue;
            for (const ep of list(rec(sm.body.spec).endpoints)) {
              const svcPort = list(rec(svc.body.spec).ports).find((p) => p.name === ep.port);
              assert.ok(svcPort, `${sm.where}: Service ${nameOf(svc.body)} has no port ${String(ep.port)}`);
              assert.equal(svcPort.targetPort, portName, `${svc.where}: port ${String(ep.port)} must lead to turnout's port`);
              scrapes++;
            }
          }
        }
        assert.equal(scrapes, 1, `${rel(b.dir)} ${pod.name} is scraped ${scrapes} times`);
      }
    }
  });

  test('KEDA ScaledObjects scale a turnout consumer on its own source, group and broker Secret', () => {
    const consumer = buildOf('k8s/overlays/consumer');
    const deployments = new Map(podsOf(consumer.docs).map((p) => [p.name, p]));
    const auths = new Map(docsOfKind('TriggerAuthentication').map((d) => [nameOf(d.body), d]));
    for (const so of docsOfKind('ScaledObject')) {
      const spec = rec(so.body.spec);
      const target = String(rec(spec.scaleTargetRef).name);
      const pod = deployments.get(target);
      assert.ok(pod, `${so.where}: scales ${target}, which k8s/overlays/consumer does not define`);
      const s = sidecarOf(pod);
      assert.ok(s && s.role === 'consumer');
      const sources = s.config.source ?? [];
      assert.ok(Number(spec.maxReplicaCount) >= Number(spec.minReplicaCount ?? 1));
      for (const t of list(spec.triggers)) {
        const md = strMap(t.metadata);
        switch (t.type) {
          case 'rabbitmq':
            assert.ok(sources.includes(md.queueName ?? ''), `${so.where}: queueName ${md.queueName} is not ${sources.join(',')}`);
            break;
          case 'kafka': {
            assert.ok(sources.includes(md.topic ?? ''), `${so.where}: topic ${md.topic}`);
            assert.equal(md.consumerGroup, expandTarget(s.config.group, md.topic ?? ''), `${so.where}: consumerGroup must be turnout's TURNOUT_GROUP`);
            break;
          }
          case 'aws-sqs-queue':
            assert.ok(sources.includes(String(md.queueURL).split('/').pop() ?? ''), `${so.where}: queueURL must end in the source queue's name`);
            break;
          default:
            assert.fail(`${so.where}: unexpected trigger ${String(t.type)}`);
        }
        const authName = rec(t.authenticationRef).name;
        if (authName === undefined) continue;
        const auth = auths.get(String(authName));
        assert.ok(auth, `${so.where}: TriggerAuthentication ${String(authName)} is not defined`);
        assert.equal(auth.file, so.file, `${so.where}: keep the TriggerAuthentication in the same example file`);
        for (const ref of list(rec(auth.body.spec).secretTargetRef)) {
          // KEDA must read the broker URL the sidecar uses, from the same Secret key.
          const brokerRef: Rec | undefined = list(s.container.env).find((e) => e.name === 'TURNOUT_BROKER');
          assert.deepEqual({ name: ref.name, key: ref.key }, { name: rec(rec(brokerRef?.valueFrom).secretKeyRef).name, key: rec(rec(brokerRef?.valueFrom).secretKeyRef).key });
        }
      }
    }
  });
});

// --- PromQL: metrics and labels -------------------------------------------------------
// Labels Prometheus adds to every series scraped through the Prometheus Operator.
const TARGET_LABELS = new Set(['namespace', 'pod', 'container', 'job', 'instance', 'endpoint', 'service']);

interface Exported {
  type: string;
  labels: Set<string>;
}

async function exportedMetrics(): Promise<Map<string, Exported>> {
  const registry = new Registry();
  new Metrics(registry, { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false });
  // The rollout controller's metrics (k8s/rollout) are read by the alerts and the dashboard too.
  new RolloutMetrics(registry, [], { defaultMetrics: false });
  const out = new Map<string, Exported>();
  for (const m of await registry.getMetricsAsJSON()) {
    const metric = registry.getSingleMetric(m.name);
    // prom-client keeps each metric's label names on the instance; its typings do not expose them.
    const labelNames = (metric as unknown as { labelNames?: string[] } | undefined)?.labelNames;
    assert.ok(Array.isArray(labelNames), `cannot read the label names of ${m.name}`);
    out.set(m.name, { type: String(m.type), labels: new Set(labelNames) });
  }
  // The check below must not pass by reading nothing.
  assert.deepEqual([...(out.get('turnout_messages_received_total')?.labels ?? [])].sort(), ['source', 'version']);
  assert.deepEqual([...out.keys()].sort(), [...METRIC_NAMES, ...ROLLOUT_METRIC_NAMES].sort(), 'METRIC_NAMES (src/metrics.ts, src/rollout/metrics.ts) and the registry disagree');
  return out;
}

/** The exported metric a series name belongs to (histogram series end in _bucket/_sum/_count). */
function baseMetric(series: string, exported: Map<string, Exported>): { name: string; extra: string[] } | undefined {
  if (exported.has(series)) return { name: series, extra: [] };
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = series.slice(0, -suffix.length);
    if (series.endsWith(suffix) && exported.get(base)?.type === 'histogram') return { name: base, extra: suffix === '_bucket' ? ['le'] : [] };
  }
  return undefined;
}

/** The parenthesised expression that starts at `open` (which must be "("). */
function balanced(expr: string, open: number): string {
  assert.equal(expr[open], '(', `expected "(" at ${open} in ${expr}`);
  let depth = 0;
  for (let i = open; i < expr.length; i++) {
    if (expr[i] === '(') depth++;
    else if (expr[i] === ')' && --depth === 0) return expr.slice(open + 1, i);
  }
  throw new Error(`unbalanced parentheses in ${expr}`);
}

/** Problems with one PromQL expression; returns the labels its aggregations keep. */
function checkExpr(expr: string, exported: Map<string, Exported>, where: string, problems: string[]): Set<string> {
  const kept = new Set<string>();
  const labelsOf = (series: string): Set<string> | undefined => {
    const b = baseMetric(series, exported);
    if (!b) return undefined;
    return new Set([...(exported.get(b.name)?.labels ?? []), ...b.extra, ...TARGET_LABELS]);
  };
  let depth = 0;
  for (const ch of expr) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) break;
  }
  if (depth !== 0) problems.push(`${where}: unbalanced parentheses`);
  for (const m of expr.matchAll(/\bturnout_[a-z0-9_]+/g)) {
    if (!baseMetric(m[0], exported)) problems.push(`${where}: ${m[0]} is not a metric turnout exports`);
  }
  for (const m of expr.matchAll(/\b(turnout_[a-z0-9_]+)\s*\{([^}]*)\}/g)) {
    const allowed = labelsOf(m[1]!);
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)) {
      if (allowed && !allowed.has(l[1]!)) problems.push(`${where}: ${m[1]} has no label ${l[1]}`);
    }
  }
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)\s*/g)) {
    const open = (m.index ?? 0) + m[0].length;
    if (expr[open] !== '(') {
      problems.push(`${where}: write "sum by (…) (…)" so the check can see what is aggregated`);
      continue;
    }
    const inner = balanced(expr, open);
    const by = (m[1] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const series of inner.match(/\bturnout_[a-z0-9_]+/g) ?? []) {
      const allowed = labelsOf(series);
      for (const l of by) if (allowed && !allowed.has(l)) problems.push(`${where}: aggregates ${series} by ${l}, a label it does not have`);
    }
    for (const l of by) kept.add(l);
  }
  return kept;
}

describe('alerts and dashboard', () => {
  test('every metric and label used in the PrometheusRule is one turnout exports; the required alerts exist', async () => {
    const exported = await exportedMetrics();
    const problems: string[] = [];
    const alerts: string[] = [];
    for (const d of docsOfKind('PrometheusRule')) {
      for (const g of list(rec(d.body.spec).groups)) {
        for (const r of list(g.rules)) {
          const where = `${d.where} ${String(r.alert ?? r.record)}`;
          const kept = checkExpr(String(r.expr), exported, where, problems);
          alerts.push(String(r.alert));
          for (const text of Object.values(strMap(r.annotations))) {
            for (const l of text.matchAll(/\$labels\.(\w+)/g)) {
              if (!kept.has(l[1]!)) problems.push(`${where}: an annotation uses $labels.${l[1]}, which the expression does not keep`);
            }
          }
          assert.ok(rec(r.labels).severity, `${where}: no severity`);
        }
      }
    }
    assert.deepEqual(problems, []);
    for (const want of [/DeadLetter/, /Deferral/, /BrokerDown/, /Draining/]) {
      assert.ok(alerts.some((a) => want.test(a)), `no alert matching ${want}`);
    }
  });

  test('every metric and label used in the Grafana dashboard is one turnout exports; required panels are there', async () => {
    const exported = await exportedMetrics();
    const dashboard = JSON.parse(readFileSync(join(K8S, 'grafana/turnout-dashboard.json'), 'utf8')) as Rec;
    const panels = list(dashboard.panels);
    const problems: string[] = [];
    const variables = new Set(list(rec(dashboard.templating).list).map((v) => String(v.name)));
    const ids = new Set<unknown>();
    const cells = new Set<string>();
    const used = new Set<string>();
    for (const p of panels) {
      const title = String(p.title);
      assert.ok(!ids.has(p.id), `panel id ${String(p.id)} is used twice`);
      ids.add(p.id);
      const g = rec(p.gridPos);
      const [x, y, w, h] = [g.x, g.y, g.w, g.h].map(Number) as [number, number, number, number];
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${title}: gridPos ${JSON.stringify(g)} is off the 24-column grid`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          assert.ok(!cells.has(`${i},${j}`), `${title} overlaps another panel at ${i},${j}`);
          cells.add(`${i},${j}`);
        }
      }
      for (const t of list(p.targets)) {
        const expr = String(t.expr);
        const kept = checkExpr(expr, exported, `panel "${title}"`, problems);
        for (const m of expr.matchAll(/\bturnout_[a-z0-9_]+/g)) used.add(baseMetric(m[0], exported)?.name ?? m[0]);
        for (const v of expr.matchAll(/\$(?:\{)?([a-zA-Z_]\w*)/g)) {
          if (!v[1]!.startsWith('__') && !variables.has(v[1]!)) problems.push(`panel "${title}": $${v[1]} is not a dashboard variable`);
        }
        for (const l of String(t.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
          if (!kept.has(l[1]!)) problems.push(`panel "${title}": legend {{${l[1]}}} is not a label the query keeps`);
        }
        assert.equal(rec(t.datasource).uid, '${datasource}', `panel "${title}": use the datasource variable`);
      }
    }
    assert.deepEqual(problems, []);
    const titles = panels.map((p) => String(p.title));
    for (const want of [/Traffic split by color/, /Messages by version/, /Translations/, /Deferrals/, /Dead-letters by reason/, /Delivery latency/]) {
      assert.ok(titles.some((t) => want.test(t)), `no panel titled like ${want}`);
    }
    // Every metric of docs/reference.md is on the dashboard somewhere.
    const missing = METRIC_NAMES.filter((n) => !used.has(n) && n !== 'turnout_translators_reload_failures_total');
    assert.deepEqual(missing, []);
  });

  test('the PromQL check can fail: a wrong metric, a wrong label and a wrong legend are caught', async () => {
    const exported = await exportedMetrics();
    const problems: string[] = [];
    checkExpr('sum by (source) (rate(turnout_messages_translated_total[5m]))', exported, 'a', problems);
    checkExpr('rate(turnout_messages_recieved_total{namespace="x"}[5m])', exported, 'b', problems);
    checkExpr('turnout_green_weight{color="green"}', exported, 'c', problems);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.deepEqual([...checkExpr('histogram_quantile(0.9, sum by (le) (rate(turnout_delivery_duration_seconds_bucket[5m])))', exported, 'd', problems)], ['le']);
    assert.equal(problems.length, 3, problems.join('\n'));
  });
});

describe('deployment guide', () => {
  test('docs/kubernetes.md exists and every k8s/ path it names exists', () => {
    assert.ok(guide.length > 0, 'docs/kubernetes.md is missing');
    const paths = [...guide.matchAll(/\bk8s\/[\w./-]*[\w/]/g)].map((m) => m[0]);
    assert.ok(paths.length >= 8, `the guide names only ${paths.length} manifest paths`);
    for (const p of paths) assert.ok(existsSync(join(ROOT, p)), `docs/kubernetes.md names ${p}, which does not exist`);
    for (const section of ['Apply', 'Ramp', 'dashboard', 'Roll back', 'Remove']) {
      assert.match(guide, new RegExp(`^#+ .*${section}`, 'mi'), `the guide has no section about "${section}"`);
    }
  });
});

// --- network access ---------------------------------------------------------------
// The peers docs/kubernetes.md names, by the labels it documents, and some that
// must be kept out. The manifests are applied in one namespace ("orders" here).
const APP_NS = { 'kubernetes.io/metadata.name': 'orders' };
const PEERS: Record<string, Peer> = {
  prometheus: { pod: { 'app.kubernetes.io/name': 'prometheus' }, namespace: { 'kubernetes.io/metadata.name': 'monitoring' }, sameNamespace: false },
  rollout: { pod: { 'turnout.dev/client': 'rollout' }, namespace: APP_NS, sameNamespace: true },
  fleetCheck: { pod: { 'turnout.dev/client': 'fleet-check' }, namespace: APP_NS, sameNamespace: true },
  neighbour: { pod: { 'app.kubernetes.io/name': 'orders-api', 'app.kubernetes.io/component': 'producer' }, namespace: APP_NS, sameNamespace: true },
  unlabelled: { pod: {}, namespace: APP_NS, sameNamespace: true },
  otherNamespace: { pod: {}, namespace: { 'kubernetes.io/metadata.name': 'default' }, sameNamespace: false },
  prometheusLookalike: { pod: { 'app.kubernetes.io/name': 'prometheus' }, namespace: { 'kubernetes.io/metadata.name': 'default' }, sameNamespace: false },
  rolloutElsewhere: { pod: { 'turnout.dev/client': 'rollout' }, namespace: { 'kubernetes.io/metadata.name': 'default' }, sameNamespace: false },
};
/** Who reaches turnout's port, by role: probes come from the kubelet on the node, which NetworkPolicy always admits. */
const TURNOUT_PORT_PEERS: Record<Sidecar['role'], string[]> = {
  consumer: ['prometheus', 'rollout', 'fleetCheck'],
  router: ['prometheus', 'rollout', 'fleetCheck'],
  producer: ['prometheus', 'fleetCheck'],
};

describe('network access', () => {
  const policiesOf = (b: Build): Rec[] => b.docs.filter((d) => d.body.kind === 'NetworkPolicy').map((d) => d.body);
  const portNumberIn = (pod: Pod) => (name: string): number | undefined =>
    [...pod.containers, ...pod.initContainers].flatMap((c) => list(c.ports)).find((p) => p.name === name)?.containerPort as number | undefined;
  const appPortsOf = (pod: Pod): number[] => pod.containers.filter((c) => !isTurnoutImage(c.image)).flatMap((c) => list(c.ports)).map((p) => Number(p.containerPort));

  test('every turnout pod is isolated for ingress by a NetworkPolicy of its kustomization, whose named ports exist in the pod', () => {
    let pods = 0;
    for (const b of roleBuilds) {
      for (const pod of podsOf(b.docs)) {
        pods++;
        const selecting = policiesOf(b).filter((p) => {
          const spec = rec(p.spec);
          const types = Array.isArray(spec.policyTypes) ? spec.policyTypes : [];
          // Selected by name, not by an empty selector that would take in every pod of the namespace.
          return Object.keys(rec(spec.podSelector)).length > 0 && selectorMatches(spec.podSelector, pod.labels) && types.includes('Ingress');
        });
        assert.ok(selecting.length >= 1, `${rel(b.dir)} ${pod.name}: no NetworkPolicy isolates it for ingress`);
        for (const p of selecting) {
          for (const rule of list(rec(p.spec).ingress)) {
            for (const port of list(rule.ports)) {
              if (typeof port.port === 'string') assert.ok(portNumberIn(pod)(port.port) !== undefined, `${nameOf(p)}: named port ${port.port} is not a port of ${pod.name}`);
            }
          }
        }
      }
    }
    assert.ok(pods >= 5, `only ${pods} pods checked`);
  });

  test("turnout's port admits exactly the peers each role needs: Prometheus, the rollout controller (consumers, routers), fleet checks", () => {
    for (const b of roleBuilds) {
      const policies = policiesOf(b);
      for (const pod of podsOf(b.docs)) {
        const s = sidecarOf(pod);
        assert.ok(s);
        const where = `${rel(b.dir)} ${pod.name} (${s.role})`;
        const wanted = new Set(TURNOUT_PORT_PEERS[s.role]);
        for (const [name, peer] of Object.entries(PEERS)) {
          assert.equal(admits(policies, pod.labels, s.config.port, peer, portNumberIn(pod)), wanted.has(name), `${where}: ${name} on turnout's port ${s.config.port}`);
        }
      }
    }
  });

  test("nothing else reaches a pod: a consumer's app port is closed (turnout delivers over localhost), a producer's app port is open to its clients only", () => {
    for (const b of roleBuilds) {
      const policies = policiesOf(b);
      for (const pod of podsOf(b.docs)) {
        const s = sidecarOf(pod);
        assert.ok(s);
        const where = `${rel(b.dir)} ${pod.name} (${s.role})`;
        const appPorts = appPortsOf(pod);
        for (const port of [...appPorts, 9090, 15000]) {
          for (const [name, peer] of Object.entries(PEERS)) {
            const open: boolean = s.role === 'producer' && appPorts.includes(port);
            assert.equal(admits(policies, pod.labels, port, peer, portNumberIn(pod)), open, `${where}: ${name} on port ${port}`);
          }
        }
        if (s.role === 'producer') assert.ok(appPorts.length > 0, `${where}: the producer's app declares its port`);
      }
    }
  });

  test('the NetworkPolicy check can fail: an open rule, a namespace-wide peer and a missing policy are caught', () => {
    const b = buildOf('k8s/overlays/consumer');
    const [pod] = podsOf(b.docs);
    assert.ok(pod);
    const [policy] = policiesOf(b);
    assert.ok(policy);
    const port = 8787;
    assert.equal(admits([policy], pod.labels, port, PEERS.neighbour!, portNumberIn(pod)), false);
    type Spec = { ingress: { from?: Rec[]; ports?: Rec[] }[]; podSelector: Rec };
    const mutated = (change: (spec: Spec) => void): Rec => {
      const copy = structuredClone(policy);
      change(copy.spec as Spec);
      return copy;
    };
    const openRule = mutated((spec) => spec.ingress.push({ ports: [{ port }] }));
    assert.equal(admits([openRule], pod.labels, port, PEERS.neighbour!, portNumberIn(pod)), true);
    const wide = mutated((spec) => spec.ingress[0]?.from?.push({ namespaceSelector: {} }));
    assert.equal(admits([wide], pod.labels, port, PEERS.otherNamespace!, portNumberIn(pod)), true);
    assert.equal(admits([], pod.labels, port, PEERS.otherNamespace!, portNumberIn(pod)), true, 'no policy: everything is admitted');
    const elsewhere = mutated((spec) => {
      spec.podSelector = { matchLabels: { 'app.kubernetes.io/name': 'someone-else' } };
    });
    assert.equal(admits([elsewhere], pod.labels, port, PEERS.neighbour!, portNumberIn(pod)), true, 'a policy selecting other pods does not isolate this one');
  });

  test('docs/kubernetes.md documents the labels the policies select on and the tokens as Secrets', () => {
    for (const text of ['turnout.dev/client: rollout', 'turnout.dev/client: fleet-check', 'app.kubernetes.io/name: prometheus', 'TURNOUT_PUBLISH_TOKEN', 'TURNOUT_PUBLISH_QUEUES', 'NetworkPolicy']) {
      assert.ok(guide.includes(text), `docs/kubernetes.md does not mention ${text}`);
    }
  });
});
