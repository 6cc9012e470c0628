// The rollout plan (YAML), validated at start. Every problem is a PlanError
// naming the key and what is allowed; the CLI exits 2 on it.

import { createHash } from 'node:crypto';
import { parseDocument } from 'yaml';

export const BUILTINS = ['dead-letter-ratio', 'defer-ratio', 'delivery-p99'] as const;
export type Builtin = (typeof BUILTINS)[number];
export const NO_DATA = ['pause', 'fail', 'pass'] as const;
export type NoData = (typeof NO_DATA)[number];

export interface Check {
  name: string;
  metric?: Builtin;
  query?: string;
  /** Sources a built-in looks at; undefined = every source. */
  sources?: string[];
  min?: number;
  max?: number;
}

export interface Plan {
  routers: string[];
  weightFile?: string;
  steps: number[];
  intervalMs: number;
  analysis: {
    prometheus?: string;
    scrape?: string[];
    failureLimit: number;
    noData: NoData;
    checks: Check[];
  };
  stateFile?: string;
  /** Identifies the plan's content: a state file of another plan is not resumed. */
  digest: string;
}

export class PlanError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = 'PlanError';
    this.key = key;
  }
}

/** 500ms, 30s, 5m, 1h (decimals allowed) → milliseconds; undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return ms > 0 ? ms : undefined;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(obj: Rec, where: string, allowed: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new PlanError(where === '' ? k : `${where}.${k}`, `unknown key; allowed: ${allowed.join(', ')}`);
  }
}

const URL_FORM = 'http://host:port, https://host:port or dns+http://name:port';
function baseUrl(v: unknown, key: string): string {
  if (typeof v !== 'string' || !/^(dns\+)?https?:\/\/[^\s/]+(\/\S*)?$/.test(v)) throw new PlanError(key, `must be a URL: ${URL_FORM}`);
  try {
    new URL(v.replace(/^dns\+/, ''));
  } catch {
    throw new PlanError(key, `must be a URL: ${URL_FORM}`);
  }
  return v.replace(/\/$/, '');
}

function urlList(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new PlanError(key, `must be a non-empty list of URLs (${URL_FORM})`);
  return v.map((u, i) => baseUrl(u, `${key}[${i}]`));
}

function number(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new PlanError(key, 'must be a number');
  return v;
}

function check(v: unknown, key: string, hasPrometheus: boolean, hasScrape: boolean): Check {
  if (!isRec(v)) throw new PlanError(key, 'must be a mapping with name, metric or query, and min and/or max');
  onlyKeys(v, key, ['name', 'metric', 'query', 'sources', 'min', 'max']);
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(v.name)) throw new PlanError(`${key}.name`, 'must be a name of letters, digits, ".", "_" or "-"');
  const out: Check = { name: v.name };
  if (v.metric !== undefined && v.query !== undefined) throw new PlanError(key, 'has both metric and query; give one');
  if (v.metric === undefined && v.query === undefined) throw new PlanError(key, `needs a metric (${BUILTINS.join(' | ')}) or a query (PromQL)`);
  if (v.metric !== undefined) {
    if (!BUILTINS.includes(v.metric as Builtin)) throw new PlanError(`${key}.metric`, `must be one of ${BUILTINS.join(', ')}`);
    if (!hasPrometheus && !hasScrape) throw new PlanError('analysis', 'a built-in check needs analysis.prometheus or analysis.scrape');
    out.metric = v.metric as Builtin;
  }
  if (v.query !== undefined) {
    if (typeof v.query !== 'string' || v.query.trim() === '') throw new PlanError(`${key}.query`, 'must be a PromQL expression');
    if (!hasPrometheus) throw new PlanError(`${key}.query`, 'a query needs analysis.prometheus (PromQL is evaluated by Prometheus)');
    out.query = v.query;
  }
  if (v.sources !== undefined) {
    if (out.metric === undefined) throw new PlanError(`${key}.sources`, 'applies to built-in metrics only; filter inside the query');
    if (!Array.isArray(v.sources) || v.sources.length === 0 || !v.sources.every((s) => typeof s === 'string' && s !== '')) {
      throw new PlanError(`${key}.sources`, 'must be a non-empty list of source queue names');
    }
    out.sources = v.sources as string[];
  }
  if (v.min !== undefined) out.min = number(v.min, `${key}.min`);
  if (v.max !== undefined) out.max = number(v.max, `${key}.max`);
  if (out.min === undefined && out.max === undefined) throw new PlanError(key, 'needs a bound: min, max or both');
  if (out.min !== undefined && out.max !== undefined && out.min > out.max) throw new PlanError(`${key}.min`, 'must not exceed max');
  return out;
}

export function parsePlan(text: string): Plan {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new PlanError('(file)', `not valid YAML: ${doc.errors[0]?.message ?? ''}`);
  const root: unknown = doc.toJS();
  if (!isRec(root)) throw new PlanError('(file)', 'must be a YAML mapping with routers, steps, interval and analysis');
  onlyKeys(root, '', ['routers', 'weightFile', 'steps', 'interval', 'analysis', 'stateFile']);

  const routers = urlList(root.routers, 'routers');

  if (!Array.isArray(root.steps) || root.steps.length === 0) throw new PlanError('steps', 'must be a non-empty list of green weights from 0 to 100, rising, ending at 100');
  const steps = root.steps.map((s: unknown, i: number) => {
    if (typeof s !== 'number' || !(s >= 0 && s <= 100)) throw new PlanError(`steps[${i}]`, `must be a weight from 0 to 100, got ${JSON.stringify(s)}`);
    return s;
  });
  steps.forEach((s, i) => {
    if (i > 0 && s <= (steps[i - 1] as number)) throw new PlanError(`steps[${i}]`, `must be above the step before (${steps[i - 1]}): steps rise`);
  });
  // Promotion means weight 100 after a judged step; a plan that stops below 100 would promote an unjudged weight.
  if (steps[steps.length - 1] !== 100) throw new PlanError(`steps[${steps.length - 1}]`, 'the last step must be 100 (promotion is weight 100, judged)');

  if (typeof root.interval !== 'string' || parseDuration(root.interval) === undefined) {
    throw new PlanError('interval', `must be a duration such as 500ms, 30s, 5m or 1h, got ${JSON.stringify(root.interval ?? null)}`);
  }
  const intervalMs = parseDuration(root.interval) as number;

  for (const k of ['weightFile', 'stateFile'] as const) {
    if (root[k] !== undefined && (typeof root[k] !== 'string' || root[k] === '')) throw new PlanError(k, 'must be a file path');
  }

  const a = root.analysis ?? {};
  if (!isRec(a)) throw new PlanError('analysis', 'must be a mapping');
  onlyKeys(a, 'analysis', ['prometheus', 'scrape', 'failureLimit', 'noData', 'checks']);
  const prometheus = a.prometheus === undefined ? undefined : baseUrl(a.prometheus, 'analysis.prometheus');
  const scrape = a.scrape === undefined ? undefined : urlList(a.scrape, 'analysis.scrape');
  const failureLimit = a.failureLimit ?? 0;
  if (typeof failureLimit !== 'number' || !Number.isInteger(failureLimit) || failureLimit < 0) throw new PlanError('analysis.failureLimit', 'must be a whole number, 0 or more');
  const noData = a.noData ?? 'pause';
  if (!NO_DATA.includes(noData as NoData)) throw new PlanError('analysis.noData', `must be one of ${NO_DATA.join(', ')}`);
  const rawChecks = a.checks ?? [];
  if (!Array.isArray(rawChecks)) throw new PlanError('analysis.checks', 'must be a list of checks');
  const checks = rawChecks.map((c, i) => check(c, `analysis.checks[${i}]`, prometheus !== undefined, scrape !== undefined));
  const names = new Set<string>();
  checks.forEach((c, i) => {
    if (names.has(c.name)) throw new PlanError(`analysis.checks[${i}].name`, `"${c.name}" is used twice; names must be unique`);
    names.add(c.name);
  });

  const plan: Plan = {
    routers,
    steps,
    intervalMs,
    analysis: { failureLimit, noData: noData as NoData, checks },
    digest: createHash('sha256').update(text).digest('hex').slice(0, 16),
  };
  if (prometheus !== undefined) plan.analysis.prometheus = prometheus;
  if (scrape !== undefined) plan.analysis.scrape = scrape;
  if (root.weightFile !== undefined) plan.weightFile = root.weightFile as string;
  if (root.stateFile !== undefined) plan.stateFile = root.stateFile as string;
  return plan;
}
