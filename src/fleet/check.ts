// `turnout check --fleet`: the version-skew test against what really runs.
// Each sidecar's GET /v1/info says which sources it consumes and what its
// app accepts; the gate's own decision (src/gate.ts) says, for every version
// the producers emit, what each consumer of a source does with it. A version
// that no consumer of a source passes or translates would be deferred until
// it is dead-lettered: that, or a sidecar that cannot be read, is exit 1.

import jsonata from 'jsonata';
import { ConfigError } from '../../config/errors.ts';
import { parseVersion } from '../../lib/version.ts';
import { decide, type GateDecision } from '../gate.ts';
import { TranslatorSet, type Step } from '../translators.ts';
import type { SidecarInfo } from './info.ts';
import { expandFleet, type Resolver } from './targets.ts';

export interface FleetCheckOptions {
  fleet: string;
  versions?: string | undefined;
  out: NodeJS.WritableStream;
  timeoutMs?: number;
  resolve?: Resolver;
  /** Reads one sidecar's info (tests replace it); default: GET {url}/v1/info. */
  read?: (url: string) => Promise<SidecarInfo>;
}

interface Sidecar {
  url: string;
  info: SidecarInfo;
}

async function readInfo(url: string, timeoutMs: number): Promise<SidecarInfo> {
  const res = await fetch(`${url}/v1/info`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`GET /v1/info answered ${res.status}`);
  }
  const body = (await res.json()) as Partial<SidecarInfo>;
  if (typeof body.role !== 'string' || !Array.isArray(body.sources) || typeof body.versionHeader !== 'string' || typeof body.defaultVersion !== 'number') {
    throw new Error('GET /v1/info did not answer with a turnout sidecar info');
  }
  return body as SidecarInfo;
}

/** The steps a sidecar reports, as a set the gate can search chains in (the expressions are not needed for that). */
const identity = jsonata('$');
function stepsOf(info: SidecarInfo): TranslatorSet {
  const steps: Step[] = [];
  for (const label of info.translators?.steps ?? []) {
    const m = /^(\d+)->(\d+)$/.exec(label);
    if (m) steps.push({ from: Number(m[1]), to: Number(m[2]), text: '', expression: identity, engine: 'reference' });
  }
  return new TranslatorSet(steps);
}

function describe(d: GateDecision): string {
  switch (d.kind) {
    case 'pass':
      return 'pass';
    case 'translate':
      return `translate via ${d.chain.label}`;
    case 'defer':
      return 'defer';
    case 'invalid':
      return 'invalid';
  }
}

function parseVersions(raw: string): number[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const v = parseVersion(s);
    if (v === undefined) throw new ConfigError(`--versions: "${s}" is not a version`, '--versions');
    return v;
  });
}

export async function runFleetCheck(o: FleetCheckOptions): Promise<number> {
  const say = (line = ''): void => void o.out.write(`${line}\n`);
  const timeoutMs = o.timeoutMs ?? 5000;
  const read = o.read ?? ((url: string) => readInfo(url, timeoutMs));
  const given = o.versions !== undefined ? parseVersions(o.versions) : undefined;
  const expanded = await expandFleet(o.fleet, o.resolve);
  let problems = 0;
  const sidecars: Sidecar[] = [];
  for (const e of expanded) {
    if (e.error !== undefined) {
      say(`cannot read ${e.given}: ${e.error}`);
      problems++;
    }
    const results = await Promise.allSettled(e.urls.map(async (url) => ({ url, info: await read(url) })));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') sidecars.push(r.value);
      else {
        say(`cannot read ${e.urls[i]}${e.urls[i] !== e.given ? ` (from ${e.given})` : ''}: ${(r.reason as Error).message}`);
        problems++;
      }
    });
  }

  const produced = new Set<number>(given ?? []);
  if (given === undefined) for (const s of sidecars) if (typeof s.info.version === 'number') produced.add(s.info.version);
  const versions = [...produced].sort((a, b) => a - b);
  if (versions.length === 0) {
    say('no versions to check: pass --versions, or include a producer sidecar (one with TURNOUT_PRODUCE_VERSION) in --fleet');
    return problems > 0 ? 1 : 2;
  }
  const producers = sidecars.filter((s) => typeof s.info.version === 'number');
  say(`versions emitted: ${versions.map((v) => `v${v}`).join(', ')}${given !== undefined ? ' (--versions)' : ` (from ${producers.map((p) => `${p.url} v${p.info.version}`).join(', ')})`}`);

  const bySource = new Map<string, Sidecar[]>();
  for (const s of sidecars) {
    if (s.info.role !== 'consumer') continue;
    for (const source of s.info.sources) {
      const list = bySource.get(source) ?? [];
      list.push(s);
      bySource.set(source, list);
    }
  }
  if (bySource.size === 0) say('no consumer sidecar in the fleet');
  for (const [source, consumers] of [...bySource].sort(([a], [b]) => a.localeCompare(b))) {
    say();
    say(`source ${source}: ${consumers.length} consumer${consumers.length === 1 ? '' : 's'}`);
    const rows: string[][] = [['version', ...consumers.map((c) => c.url)]];
    const unhandled: number[] = [];
    for (const v of versions) {
      const cells = consumers.map((c) => {
        const accept = c.info.accept === 'all' ? null : c.info.accept;
        return decide({ [c.info.versionHeader]: String(v) }, { versionHeader: c.info.versionHeader, defaultVersion: c.info.defaultVersion, accept }, stepsOf(c.info));
      });
      if (!cells.some((d) => d.kind === 'pass' || d.kind === 'translate')) unhandled.push(v);
      rows.push([`v${v}`, ...cells.map(describe)]);
    }
    const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) say(`  ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}`);
    for (const v of unhandled) {
      problems++;
      say(`  v${v} on ${source}: no consumer passes or translates it (${consumers.map((c) => c.url).join(', ')} defer it) — it would be deferred until dead-lettered (unsupported-version)`);
    }
  }
  say();
  say(problems === 0 ? 'fleet is compatible' : `${problems} problem(s): fix them before the producer ships`);
  return problems === 0 ? 0 : 1;
}
