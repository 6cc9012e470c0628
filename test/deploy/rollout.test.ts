// The rollout controller's deployment: k8s/rollout rendered by real
// kustomize (`kubectl kustomize`), its plan valid for the code that reads it
// and pointing at Services that reach every router and green pod; the
// monitoring scrapes it; the alert rules pass `promtool check rules` and
// their unit tests (`promtool test rules`).

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../config/load.ts';
import { parsePlan } from '../../src/rollout/plan.ts';
import { K8S } from './k8s-files.ts';

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const list = (v: unknown): Rec[] => (Array.isArray(v) ? v.map(rec) : []);

/** What `kubectl kustomize DIR` renders, as documents. */
function kustomize(dir: string): Rec[] {
  const out = execFileSync('kubectl', ['kustomize', join(K8S, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => rec(d.toJS()));
}
const named = (docs: Rec[], kind: string, name?: string): Rec[] => docs.filter((d) => d.kind === kind && (name === undefined || rec(d.metadata).name === name));
const podTemplate = (d: Rec): { labels: Record<string, string>; spec: Rec } => {
  const t = rec(rec(d.spec).template);
  return { labels: rec(rec(t.metadata).labels) as Record<string, string>, spec: rec(t.spec) };
};
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('k8s/rollout: the rollout controller', () => {
  const docs = kustomize('rollout');
  const [deployment] = named(docs, 'Deployment', 'orders-rollout');
  assert.ok(deployment, 'k8s/rollout renders the orders-rollout Deployment');
  const pod = podTemplate(deployment);
  const [container] = list(pod.spec.containers);
  assert.ok(container);

  test('one replica, never two at once, and nothing that needs RBAC', () => {
    assert.equal(rec(deployment.spec).replicas, 1);
    assert.equal(rec(rec(deployment.spec).strategy).type, 'Recreate');
    for (const kind of ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']) assert.deepEqual(named(docs, kind), [], `no ${kind}`);
    assert.equal(pod.spec.serviceAccountName, undefined);
    assert.equal(pod.spec.enableServiceLinks, false);
    assert.equal(String(container.image).replace(/[:@].*$/, ''), 'registry.example.com/turnout');
  });

  test('the mounted plan is a valid plan whose URLs reach every router and green pod through headless Services', () => {
    const args = (container.args as string[]) ?? [];
    assert.equal(args[0], 'rollout');
    const planPath = args[1] as string;
    assert.ok(args.includes('--keep-serving'), 'a Deployment keeps the ended rollout visible instead of crash-looping');
    const mount = list(container.volumeMounts).find((m) => planPath.startsWith(`${String(m.mountPath)}/`));
    assert.ok(mount && mount.readOnly === true, `the plan ${planPath} is mounted read-only`);
    const volume = list(pod.spec.volumes).find((v) => v.name === mount.name);
    const [cm] = named(docs, 'ConfigMap', String(rec(volume?.configMap).name));
    assert.ok(cm, 'the plan ConfigMap is in the kustomization');
    const plan = parsePlan(String(rec(cm.data)[planPath.slice(String(mount.mountPath).length + 1)]));
    // The state file is on a writable volume (the root filesystem is read-only).
    assert.equal(rec(container.securityContext).readOnlyRootFilesystem, true);
    assert.ok(plan.stateFile, 'the plan keeps a state file so a restarted controller resumes');
    const stateMount = list(container.volumeMounts).find((m) => plan.stateFile?.startsWith(`${String(m.mountPath)}/`));
    assert.ok(stateMount && stateMount.readOnly !== true, 'the state file is on a writable mount');
    assert.ok(list(pod.spec.volumes).some((v) => v.name === stateMount.name && v.emptyDir !== undefined));

    // Every dns+http URL names a headless Service of this kustomization that selects the right pods.
    const routers = kustomize('overlays/router');
    const blueGreen = kustomize('examples/blue-green');
    const [routerDeployment] = named(routers, 'Deployment', 'orders-router');
    const [greenDeployment] = named(blueGreen, 'Deployment', 'orders-consumer-green');
    assert.ok(routerDeployment && greenDeployment);
    const reaches = (url: string, target: Rec): void => {
      const u = new URL(url.replace(/^dns\+/, ''));
      assert.ok(url.startsWith('dns+'), `${url}: use dns+http:// so every replica is reached`);
      const [svc] = named(docs, 'Service', u.hostname);
      assert.ok(svc, `${url}: no Service ${u.hostname} in k8s/rollout`);
      assert.equal(rec(svc.spec).clusterIP, 'None', `${u.hostname} must be headless (its name resolves to every pod)`);
      const t = podTemplate(target);
      assert.ok(matches(rec(rec(svc.spec).selector) as Record<string, string>, t.labels), `${u.hostname} does not select ${String(rec(target.metadata).name)}'s pods`);
      const port = list(rec(svc.spec).ports).find((p) => String(p.port) === u.port);
      assert.ok(port, `${u.hostname} has no port ${u.port}`);
      const c = [...list(t.spec.containers), ...list(t.spec.initContainers)].find((x) => list(x.ports).some((p) => p.name === port.targetPort && String(p.containerPort) === u.port));
      assert.ok(c, `${u.hostname}: targetPort ${String(port.targetPort)} is not turnout's port ${u.port} in ${String(rec(target.metadata).name)}`);
    };
    for (const r of plan.routers) reaches(r, routerDeployment);
    for (const s of plan.analysis.scrape ?? []) reaches(s, greenDeployment);
    // The built-ins look at the source green consumes.
    const greenContainer = [...list(podTemplate(greenDeployment).spec.initContainers), ...list(podTemplate(greenDeployment).spec.containers)].find((c) => String(c.image).includes('turnout'));
    const greenSource = list(greenContainer?.env).find((e) => e.name === 'TURNOUT_SOURCE')?.value;
    for (const c of plan.analysis.checks) assert.deepEqual(c.sources, [greenSource], `${c.name} looks at green's source`);
  });

  test("the controller's environment is valid, its admin token is the routers' Secret, and its probes and port are turnout's", () => {
    const env: Record<string, string> = {};
    for (const e of list(container.env)) env[String(e.name)] = e.value !== undefined ? String(e.value) : 'stand-in';
    const { config, warnings } = loadConfig({}, env);
    assert.deepEqual(warnings, []);
    const token = list(container.env).find((e) => e.name === 'TURNOUT_ADMIN_TOKEN');
    assert.deepEqual(rec(rec(token?.valueFrom).secretKeyRef), { name: 'turnout-admin', key: 'token' }, 'not optional: without it the routers refuse the weight');
    const port = list(container.ports).find((p) => p.containerPort === config.port);
    assert.ok(port, `containerPort ${config.port}`);
    for (const probe of ['readinessProbe', 'livenessProbe']) assert.equal(rec(rec(container[probe]).httpGet).path, '/healthz');
    const [svc] = named(docs, 'Service', 'orders-rollout');
    assert.ok(svc && matches(rec(rec(svc.spec).selector) as Record<string, string>, pod.labels));
    // Scraped once, by the ServiceMonitor for the rollout metrics.
    const monitors = named(kustomize('monitoring'), 'ServiceMonitor').filter((m) => matches(rec(rec(rec(m.spec).selector).matchLabels) as Record<string, string>, rec(rec(svc.metadata).labels) as Record<string, string>));
    assert.equal(monitors.length, 1);
    const ep = list(rec(monitors[0]?.spec).endpoints)[0];
    assert.ok(list(rec(svc.spec).ports).some((p) => p.name === ep?.port && p.targetPort === port.name));
  });
});

describe('alert rules: promtool', () => {
  const rules = named(kustomize('monitoring'), 'PrometheusRule');
  const dir = mkdtempSync(join(tmpdir(), 'turnout-rules-'));
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, stringify({ groups: rules.flatMap((r) => list(rec(r.spec).groups)) }));

  test('promtool check rules accepts every rule', () => {
    const r = spawnSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  });

  test('promtool test rules: a rolled-back rollout alerts at once, a progressing or promoted one does not; a long pause alerts', () => {
    const testFile = join(dir, 'rollout.test.yaml');
    const labels = (phase: string, pod: string): string => `turnout_rollout_phase{namespace="shop", pod="${pod}", phase="${phase}"}`;
    writeFileSync(testFile, stringify({
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            // orders-rollout-a: progressing for 5 minutes, then rolled back.
            { series: labels('progressing', 'orders-rollout-a'), values: '1 1 1 1 1 0 0 0' },
            { series: labels('rolled-back', 'orders-rollout-a'), values: '0 0 0 0 0 1 1 1' },
            // orders-rollout-b: promoted.
            { series: labels('promoted', 'orders-rollout-b'), values: '1 1 1 1 1 1 1 1' },
            { series: labels('rolled-back', 'orders-rollout-b'), values: '0 0 0 0 0 0 0 0' },
            // orders-rollout-c: paused for two hours.
            { series: labels('paused', 'orders-rollout-c'), values: '1x130' },
          ],
          alert_rule_test: [
            { eval_time: '4m', alertname: 'TurnoutRolloutRolledBack', exp_alerts: [] },
            {
              eval_time: '6m',
              alertname: 'TurnoutRolloutRolledBack',
              exp_alerts: [{
                exp_labels: { severity: 'warning', namespace: 'shop', pod: 'orders-rollout-a' },
                exp_annotations: {
                  summary: 'turnout rollout in orders-rollout-a rolled green back',
                  description: 'The rollout controller shop/orders-rollout-a judged green unhealthy and set the green weight to 0 on every router. `turnout rollout status --controller URL` shows the failing check, its value and its bound; a new plan (or --restart) starts a new rollout.',
                },
              }],
            },
            { eval_time: '30m', alertname: 'TurnoutRolloutPausedTooLong', exp_alerts: [] },
            {
              eval_time: '90m',
              alertname: 'TurnoutRolloutPausedTooLong',
              exp_alerts: [{
                exp_labels: { severity: 'info', namespace: 'shop', pod: 'orders-rollout-c' },
                exp_annotations: {
                  summary: 'turnout rollout in orders-rollout-c has been paused for an hour',
                  description: 'shop/orders-rollout-c holds its weight; its status says why (no data for a check, or paused by hand).',
                },
              }],
            },
          ],
        },
      ],
    }));
    const r = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // The test can fail: a wrong expectation is reported.
    const broken = readFileSync(testFile, 'utf8').replace('pod: orders-rollout-a', 'pod: orders-rollout-b');
    assert.notEqual(broken, readFileSync(testFile, 'utf8'));
    writeFileSync(testFile, broken);
    const bad = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0, 'promtool test rules must fail on a wrong expectation');
    rmSync(dir, { recursive: true, force: true });
  });
});
