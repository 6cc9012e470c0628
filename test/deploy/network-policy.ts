// What a set of NetworkPolicies admits, by the rules of networking.k8s.io/v1,
// for the manifests test: whether traffic from a given peer (its pod and
// namespace labels) reaches a given port of a pod. Conservative where a
// network plugin may differ: an ipBlock is taken to match every peer.

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const list = (v: unknown): Rec[] => (Array.isArray(v) ? v.map(rec) : []);

/** A source of traffic: its pod's labels and its namespace's labels. */
export interface Peer {
  pod: Record<string, string>;
  namespace: Record<string, string>;
  /** In the namespace of the policies (where the manifests are applied). */
  sameNamespace: boolean;
}

/** A label selector as the API evaluates it: matchLabels and matchExpressions ANDed; {} selects everything. */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  const s = rec(selector);
  for (const [k, v] of Object.entries(rec(s.matchLabels))) if (labels[k] !== v) return false;
  for (const e of list(s.matchExpressions)) {
    const key = String(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const has = Object.hasOwn(labels, key);
    const ok = e.operator === 'In' ? has && values.includes(labels[key] ?? '')
      : e.operator === 'NotIn' ? !has || !values.includes(labels[key] ?? '')
        : e.operator === 'Exists' ? has
          : e.operator === 'DoesNotExist' ? !has
            : false;
    if (!ok) return false;
  }
  return true;
}

const peerMatches = (entry: Rec, peer: Peer): boolean => {
  if (entry.ipBlock !== undefined) return true;
  const pods = entry.podSelector;
  const namespaces = entry.namespaceSelector;
  if (namespaces === undefined) return peer.sameNamespace && selectorMatches(pods, peer.pod);
  return selectorMatches(namespaces, peer.namespace) && (pods === undefined || selectorMatches(pods, peer.pod));
};

/**
 * Whether `peer` reaches TCP `port` of a pod with these labels, under these
 * NetworkPolicy bodies (those that do not select the pod are ignored).
 * `portNumber` resolves a named port of the policy against the pod (undefined:
 * the pod has no such port, so the entry matches nothing, as in the API).
 */
export function admits(policies: Rec[], podLabels: Record<string, string>, port: number, peer: Peer, portNumber: (name: string) => number | undefined): boolean {
  const selecting = policies.map((p) => rec(p.spec)).filter((spec) => selectorMatches(spec.podSelector, podLabels));
  const types = (spec: Rec): string[] => (Array.isArray(spec.policyTypes) ? spec.policyTypes.map(String) : ['Ingress']);
  const isolating = selecting.filter((spec) => types(spec).includes('Ingress'));
  if (isolating.length === 0) return true;
  return isolating.some((spec) => list(spec.ingress).some((rule) => {
    const ports = list(rule.ports);
    const portOk = ports.length === 0 || ports.some((p) => {
      if ((p.protocol ?? 'TCP') !== 'TCP') return false;
      if (p.port === undefined) return true;
      const from = typeof p.port === 'number' ? p.port : portNumber(String(p.port));
      if (from === undefined) return false;
      const to = typeof p.endPort === 'number' ? p.endPort : from;
      return port >= from && port <= to;
    });
    const from = list(rule.from);
    return portOk && (from.length === 0 || from.some((entry) => peerMatches(entry, peer)));
  }));
}
