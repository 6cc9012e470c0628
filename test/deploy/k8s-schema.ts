// A structural schema for the Kubernetes, Prometheus Operator, KEDA and
// kustomize objects under k8s/: the fields those APIs define (a subset, the
// ones a manifest here may use), their types, and which are required.
// Unknown fields are errors, so a typo such as `readinesProbe` or a field at
// the wrong level fails the test instead of being silently dropped by the API
// server. Field names follow the upstream API references (core/v1, apps/v1,
// policy/v1, networking.k8s.io/v1, monitoring.coreos.com/v1, keda.sh/v1alpha1,
// kustomize.config.k8s.io/v1beta1). The full upstream JSON schemas would be
// stricter still; they are not in this project's dependencies.

export type Check = (value: unknown, path: string, errors: string[]) => void;

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

export const str: Check = (v, p, e) => {
  if (typeof v !== 'string') e.push(`${p}: expected a string, got ${typeName(v)} ${JSON.stringify(v)}`);
};
export const nonEmptyStr: Check = (v, p, e) => {
  if (typeof v !== 'string' || v === '') e.push(`${p}: expected a non-empty string, got ${JSON.stringify(v)}`);
};
export const int: Check = (v, p, e) => {
  if (typeof v !== 'number' || !Number.isInteger(v)) e.push(`${p}: expected an integer, got ${typeName(v)} ${JSON.stringify(v)}`);
};
export const bool: Check = (v, p, e) => {
  if (typeof v !== 'boolean') e.push(`${p}: expected a boolean, got ${typeName(v)} ${JSON.stringify(v)}`);
};
export const any: Check = () => {};
export const intOrStr: Check = (v, p, e) => {
  if (!(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)))) e.push(`${p}: expected an integer or a string, got ${JSON.stringify(v)}`);
};
export const oneOf = (...allowed: string[]): Check => (v, p, e) => {
  if (typeof v !== 'string' || !allowed.includes(v)) e.push(`${p}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
};
export const matches = (re: RegExp, what: string): Check => (v, p, e) => {
  if (typeof v !== 'string' || !re.test(v)) e.push(`${p}: expected ${what}, got ${JSON.stringify(v)}`);
};
export const arr = (item: Check): Check => (v, p, e) => {
  if (!Array.isArray(v)) {
    e.push(`${p}: expected a list, got ${typeName(v)}`);
    return;
  }
  v.forEach((x, i) => item(x, `${p}[${i}]`, e));
};
export const map = (value: Check): Check => (v, p, e) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    e.push(`${p}: expected a mapping, got ${typeName(v)}`);
    return;
  }
  for (const [k, x] of Object.entries(v)) value(x, `${p}.${k}`, e);
};
export const obj = (fields: Record<string, Check>, required: string[] = []): Check => (v, p, e) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    e.push(`${p}: expected a mapping, got ${typeName(v)}`);
    return;
  }
  const rec = v as Record<string, unknown>;
  for (const r of required) if (rec[r] === undefined) e.push(`${p}: missing required field ${r}`);
  for (const [k, x] of Object.entries(rec)) {
    const check = fields[k];
    if (!check) e.push(`${p}: unknown field ${k}`);
    else check(x, `${p}.${k}`, e);
  }
};
const all = (...checks: Check[]): Check => (v, p, e) => {
  for (const c of checks) c(v, p, e);
};

// --- names and values Kubernetes validates -----------------------------------
const dns1123Label = matches(/^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS-1123 label (lower-case letters, digits, -; at most 63)');
const dns1123Subdomain = matches(/^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 subdomain');
/** IANA_SVC_NAME: what a named port must be (at most 15 characters, a letter, no "--"). */
export const portName = matches(/^(?=.{1,15}$)(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'an IANA service name (lower-case, <= 15 characters, a letter, no "--")');
const labelValue = matches(/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/, 'a label value (a string of <= 63 letters, digits, -_.; quote "true" and numbers)');
const labelKey = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labels: Check = (v, p, e) => {
  map(labelValue)(v, p, e);
  if (typeof v === 'object' && v !== null) for (const k of Object.keys(v)) if (!labelKey.test(k)) e.push(`${p}: bad label key ${k}`);
};
const quantity = matches(/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/, 'a resource quantity such as 100m or 128Mi');
const envName = matches(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, 'an environment variable name');
const promDuration = matches(/^((\d+)(ms|s|m|h|d|w|y))+$/, 'a Prometheus duration such as 30s or 5m');

const metadata = obj({ name: dns1123Subdomain, namespace: dns1123Label, labels, annotations: map(str) }, ['name']);

// --- core/v1 -------------------------------------------------------------------
const httpGet = obj({ path: str, port: intOrStr, host: str, scheme: oneOf('HTTP', 'HTTPS'), httpHeaders: arr(obj({ name: str, value: str }, ['name', 'value'])) }, ['port']);
const execAction = obj({ command: arr(str) }, ['command']);
const tcpSocket = obj({ port: intOrStr, host: str }, ['port']);
const probe = obj({
  httpGet, exec: execAction, tcpSocket, grpc: obj({ port: int, service: str }, ['port']),
  initialDelaySeconds: int, periodSeconds: int, timeoutSeconds: int, successThreshold: int, failureThreshold: int, terminationGracePeriodSeconds: int,
});
const lifecycleHandler = obj({ exec: execAction, httpGet, tcpSocket, sleep: obj({ seconds: int }, ['seconds']) });
const keyRef = obj({ name: str, key: str, optional: bool }, ['key']);
const envVar = obj({
  name: envName,
  value: str,
  valueFrom: obj({
    secretKeyRef: keyRef,
    configMapKeyRef: keyRef,
    fieldRef: obj({ fieldPath: str, apiVersion: str }, ['fieldPath']),
    resourceFieldRef: obj({ resource: str, containerName: str, divisor: intOrStr }, ['resource']),
  }),
}, ['name']);
const capabilities = obj({ add: arr(str), drop: arr(str) });
const seccompProfile = obj({ type: oneOf('RuntimeDefault', 'Localhost', 'Unconfined'), localhostProfile: str }, ['type']);
const containerSecurityContext = obj({
  allowPrivilegeEscalation: bool, readOnlyRootFilesystem: bool, runAsNonRoot: bool, runAsUser: int, runAsGroup: int,
  privileged: bool, capabilities, seccompProfile, procMount: str,
});
export const container = obj({
  name: dns1123Label,
  image: nonEmptyStr,
  imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'),
  command: arr(str),
  args: arr(str),
  workingDir: str,
  ports: arr(obj({ name: portName, containerPort: int, protocol: oneOf('TCP', 'UDP', 'SCTP'), hostPort: int, hostIP: str }, ['containerPort'])),
  env: arr(envVar),
  envFrom: arr(obj({ prefix: str, configMapRef: obj({ name: str, optional: bool }), secretRef: obj({ name: str, optional: bool }) })),
  resources: obj({ requests: map(quantity), limits: map(quantity) }),
  volumeMounts: arr(obj({ name: str, mountPath: str, readOnly: bool, subPath: str, subPathExpr: str, mountPropagation: str }, ['name', 'mountPath'])),
  livenessProbe: probe,
  readinessProbe: probe,
  startupProbe: probe,
  lifecycle: obj({ postStart: lifecycleHandler, preStop: lifecycleHandler }),
  securityContext: containerSecurityContext,
  // Only meaningful on init containers (native sidecars); checked there.
  restartPolicy: oneOf('Always'),
  terminationMessagePath: str,
  terminationMessagePolicy: oneOf('File', 'FallbackToLogsOnError'),
  stdin: bool,
  tty: bool,
}, ['name', 'image']);
const volume = obj({
  name: dns1123Label,
  configMap: obj({ name: str, items: arr(obj({ key: str, path: str, mode: int }, ['key', 'path'])), defaultMode: int, optional: bool }, ['name']),
  secret: obj({ secretName: str, items: arr(obj({ key: str, path: str, mode: int }, ['key', 'path'])), defaultMode: int, optional: bool }),
  emptyDir: obj({ medium: str, sizeLimit: quantity }),
}, ['name']);
const labelSelector = obj({ matchLabels: labels, matchExpressions: arr(obj({ key: str, operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: arr(str) }, ['key', 'operator'])) });
const podSpec = obj({
  containers: arr(container),
  initContainers: arr(container),
  volumes: arr(volume),
  restartPolicy: oneOf('Always', 'OnFailure', 'Never'),
  terminationGracePeriodSeconds: int,
  activeDeadlineSeconds: int,
  dnsPolicy: str,
  nodeSelector: map(str),
  serviceAccountName: str,
  automountServiceAccountToken: bool,
  enableServiceLinks: bool,
  shareProcessNamespace: bool,
  priorityClassName: str,
  securityContext: obj({ runAsNonRoot: bool, runAsUser: int, runAsGroup: int, fsGroup: int, fsGroupChangePolicy: str, supplementalGroups: arr(int), seccompProfile }),
  imagePullSecrets: arr(obj({ name: str }, ['name'])),
  affinity: any,
  tolerations: arr(any),
  topologySpreadConstraints: arr(any),
}, ['containers']);

const deploymentSpec = obj({
  replicas: int,
  selector: labelSelector,
  template: obj({ metadata: obj({ labels, annotations: map(str) }), spec: podSpec }, ['metadata', 'spec']),
  strategy: obj({ type: oneOf('RollingUpdate', 'Recreate'), rollingUpdate: obj({ maxSurge: intOrStr, maxUnavailable: intOrStr }) }),
  minReadySeconds: int,
  revisionHistoryLimit: int,
  progressDeadlineSeconds: int,
  paused: bool,
}, ['selector', 'template']);

const serviceSpec = obj({
  selector: labels,
  ports: arr(obj({ name: portName, port: int, targetPort: intOrStr, protocol: oneOf('TCP', 'UDP', 'SCTP'), appProtocol: str, nodePort: int }, ['port'])),
  type: oneOf('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'),
  clusterIP: str,
  sessionAffinity: oneOf('None', 'ClientIP'),
  publishNotReadyAddresses: bool,
}, ['ports']);

const pdbSpec = all(
  obj({ minAvailable: intOrStr, maxUnavailable: intOrStr, selector: labelSelector, unhealthyPodEvictionPolicy: oneOf('IfHealthyBudget', 'AlwaysAllow') }, ['selector']),
  (v, p, e) => {
    const s = v as Record<string, unknown>;
    if ((s.minAvailable === undefined) === (s.maxUnavailable === undefined)) e.push(`${p}: set exactly one of minAvailable and maxUnavailable`);
  },
);

// --- networking.k8s.io/v1 ---------------------------------------------------------
const policyPeer = obj({ podSelector: labelSelector, namespaceSelector: labelSelector, ipBlock: obj({ cidr: str, except: arr(str) }, ['cidr']) });
const policyPort = obj({ port: intOrStr, endPort: int, protocol: oneOf('TCP', 'UDP', 'SCTP') });
const networkPolicySpec = obj({
  podSelector: labelSelector,
  policyTypes: arr(oneOf('Ingress', 'Egress')),
  ingress: arr(obj({ from: arr(policyPeer), ports: arr(policyPort) })),
  egress: arr(obj({ to: arr(policyPeer), ports: arr(policyPort) })),
}, ['podSelector']);

// --- monitoring.coreos.com/v1 ----------------------------------------------------
const relabelings = arr(any);
const scrapeEndpoint = { port: str, path: str, interval: promDuration, scrapeTimeout: promDuration, scheme: oneOf('http', 'https'), honorLabels: bool, relabelings, metricRelabelings: relabelings };
const namespaceSelector = obj({ any: bool, matchNames: arr(str) });
const podMonitorSpec = obj({ selector: labelSelector, podMetricsEndpoints: arr(obj(scrapeEndpoint)), namespaceSelector, jobLabel: str, podTargetLabels: arr(str) }, ['selector', 'podMetricsEndpoints']);
const serviceMonitorSpec = obj({ selector: labelSelector, endpoints: arr(obj({ ...scrapeEndpoint, targetPort: intOrStr })), namespaceSelector, jobLabel: str, targetLabels: arr(str), podTargetLabels: arr(str) }, ['selector', 'endpoints']);
const rule = obj({ alert: str, record: str, expr: nonEmptyStr, for: promDuration, keep_firing_for: promDuration, labels: map(str), annotations: map(str) }, ['expr']);
const prometheusRuleSpec = obj({ groups: arr(obj({ name: str, interval: promDuration, rules: arr(rule) }, ['name', 'rules'])) }, ['groups']);

// --- keda.sh/v1alpha1 ------------------------------------------------------------
const hpaRules = obj({ stabilizationWindowSeconds: int, selectPolicy: oneOf('Max', 'Min', 'Disabled'), policies: arr(obj({ type: oneOf('Pods', 'Percent'), value: int, periodSeconds: int }, ['type', 'value', 'periodSeconds'])) });
const scaledObjectSpec = obj({
  scaleTargetRef: obj({ name: str, kind: str, apiVersion: str, envSourceContainerName: str }, ['name']),
  pollingInterval: int,
  cooldownPeriod: int,
  initialCooldownPeriod: int,
  idleReplicaCount: int,
  minReplicaCount: int,
  maxReplicaCount: int,
  fallback: obj({ failureThreshold: int, replicas: int }, ['failureThreshold', 'replicas']),
  advanced: obj({ restoreToOriginalReplicaCount: bool, horizontalPodAutoscalerConfig: obj({ name: str, behavior: obj({ scaleUp: hpaRules, scaleDown: hpaRules }) }), scalingModifiers: any }),
  // KEDA's trigger metadata is map[string]string: an unquoted number is rejected.
  triggers: arr(obj({ type: str, name: str, metadata: map(str), authenticationRef: obj({ name: str, kind: oneOf('TriggerAuthentication', 'ClusterTriggerAuthentication') }, ['name']), metricType: oneOf('AverageValue', 'Value', 'Utilization'), useCachedMetrics: bool }, ['type', 'metadata'])),
}, ['scaleTargetRef', 'triggers']);
const triggerAuthenticationSpec = obj({
  podIdentity: obj({ provider: oneOf('none', 'azure-workload', 'gcp', 'aws', 'aws-eks', 'aws-kiam'), identityId: str, roleArn: str, identityOwner: oneOf('keda', 'workload') }, ['provider']),
  secretTargetRef: arr(obj({ parameter: str, name: str, key: str }, ['parameter', 'name', 'key'])),
  env: arr(obj({ parameter: str, name: str, containerName: str }, ['parameter', 'name'])),
});

// --- kustomize ------------------------------------------------------------------
const kustomization = obj({
  apiVersion: oneOf('kustomize.config.k8s.io/v1beta1'),
  kind: oneOf('Kustomization'),
  resources: arr(str),
  components: arr(str),
  namespace: str,
  namePrefix: str,
  nameSuffix: str,
  images: arr(obj({ name: str, newName: str, newTag: str, digest: str }, ['name'])),
  configMapGenerator: arr(obj({ name: str, files: arr(str), literals: arr(str), envs: arr(str), behavior: oneOf('create', 'replace', 'merge'),
    options: obj({ disableNameSuffixHash: bool, labels, annotations: map(str), immutable: bool }) }, ['name'])),
  patches: arr(any),
  labels: arr(any),
}, ['apiVersion', 'kind']);

/** apiVersion and spec check for every kind a manifest here may contain. */
export const KINDS: Record<string, { apiVersion: string; check: Check }> = {
  Deployment: { apiVersion: 'apps/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: deploymentSpec }, ['metadata', 'spec']) },
  Service: { apiVersion: 'v1', check: obj({ apiVersion: str, kind: str, metadata, spec: serviceSpec }, ['metadata', 'spec']) },
  ConfigMap: { apiVersion: 'v1', check: obj({ apiVersion: str, kind: str, metadata, data: map(str), binaryData: map(str), immutable: bool }, ['metadata']) },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: networkPolicySpec }, ['metadata', 'spec']) },
  PodDisruptionBudget: { apiVersion: 'policy/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: pdbSpec }, ['metadata', 'spec']) },
  PodMonitor: { apiVersion: 'monitoring.coreos.com/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: podMonitorSpec }, ['metadata', 'spec']) },
  ServiceMonitor: { apiVersion: 'monitoring.coreos.com/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: serviceMonitorSpec }, ['metadata', 'spec']) },
  PrometheusRule: { apiVersion: 'monitoring.coreos.com/v1', check: obj({ apiVersion: str, kind: str, metadata, spec: prometheusRuleSpec }, ['metadata', 'spec']) },
  ScaledObject: { apiVersion: 'keda.sh/v1alpha1', check: obj({ apiVersion: str, kind: str, metadata, spec: scaledObjectSpec }, ['metadata', 'spec']) },
  TriggerAuthentication: { apiVersion: 'keda.sh/v1alpha1', check: obj({ apiVersion: str, kind: str, metadata, spec: triggerAuthenticationSpec }, ['metadata', 'spec']) },
  Kustomization: { apiVersion: 'kustomize.config.k8s.io/v1beta1', check: kustomization },
};

/** Structural errors of one document (empty when it conforms). */
export function validateDocument(doc: unknown, where: string): string[] {
  const errors: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [`${where}: not a mapping`];
  const d = doc as Record<string, unknown>;
  const kind = typeof d.kind === 'string' ? d.kind : '';
  const known = KINDS[kind];
  if (!known) return [`${where}: kind ${JSON.stringify(d.kind)} is not one this check knows; extend test/deploy/k8s-schema.ts`];
  if (d.apiVersion !== known.apiVersion) errors.push(`${where}: ${kind} must be apiVersion ${known.apiVersion}, got ${JSON.stringify(d.apiVersion)}`);
  known.check(doc, `${where} ${kind}`, errors);
  return errors;
}
