// Reads everything under k8s/: every YAML document and JSON file, and what
// each kustomization would put together (resources followed recursively,
// generated ConfigMaps), the way `kubectl apply -k` accumulates them.
// No kustomize binary is available here, so this follows only the features
// the kustomizations use (resources, images, configMapGenerator) and fails on
// the rest rather than guessing.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const K8S = join(ROOT, 'k8s');

export interface Doc {
  /** Repository-relative file path, with the document index for multi-document files. */
  where: string;
  file: string;
  body: Record<string, unknown>;
}

export function listFiles(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(p);
  }
  return out;
}

export const rel = (p: string): string => relative(ROOT, p);

/** Every document of a YAML file; parse errors and warnings throw. */
export function readYaml(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
  const out: Doc[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new Error(`${rel(file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    if (d.warnings.length > 0) throw new Error(`${rel(file)}: ${d.warnings.map((e) => e.message).join('; ')}`);
    const body: unknown = d.toJS();
    if (body === null || body === undefined) return; // an empty document (e.g. a trailing ---)
    if (typeof body !== 'object' || Array.isArray(body)) throw new Error(`${rel(file)}#${i}: a manifest must be a mapping`);
    out.push({ where: docs.length > 1 ? `${rel(file)}#${i}` : rel(file), file, body: body as Record<string, unknown> });
  });
  return out;
}

export function allYamlDocs(): Doc[] {
  return listFiles(K8S, ['.yaml', '.yml']).flatMap(readYaml);
}

export function kustomizationDirs(): string[] {
  return listFiles(K8S, ['kustomization.yaml', 'kustomization.yml']).map(dirname);
}

export interface Build {
  dir: string;
  docs: Doc[];
  /** Files each kustomization pulled in, repository-relative. */
  files: Set<string>;
  /** images: entries, by name. */
  images: Map<string, { newName?: string; newTag?: string }>;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** What `kubectl apply -k dir` would send; duplicate objects throw as they do in kustomize. */
export function build(dir: string, seen: string[] = []): Build {
  const kfile = ['kustomization.yaml', 'kustomization.yml'].map((n) => join(dir, n)).find((p) => existsSync(p));
  if (!kfile) throw new Error(`${rel(dir)}: no kustomization.yaml`);
  if (seen.includes(dir)) throw new Error(`kustomization cycle: ${[...seen, dir].map(rel).join(' -> ')}`);
  const [k] = readYaml(kfile);
  if (!k) throw new Error(`${rel(kfile)} is empty`);
  const supported = new Set(['apiVersion', 'kind', 'resources', 'images', 'configMapGenerator']);
  for (const key of Object.keys(k.body)) {
    if (!supported.has(key)) throw new Error(`${rel(kfile)}: ${key} is not followed by this test's kustomize emulation; extend test/deploy/k8s-files.ts`);
  }
  const out: Build = { dir, docs: [], files: new Set([rel(kfile)]), images: new Map() };
  for (const r of asArray(k.body.resources)) {
    if (typeof r !== 'string') throw new Error(`${rel(kfile)}: resources entries must be paths`);
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${rel(kfile)}: resource ${r} does not exist`);
    if (statSync(p).isDirectory()) {
      const sub = build(p, [...seen, dir]);
      out.docs.push(...sub.docs);
      for (const f of sub.files) out.files.add(f);
      for (const [n, i] of sub.images) out.images.set(n, i);
    } else {
      out.docs.push(...readYaml(p));
      out.files.add(rel(p));
    }
  }
  for (const g of asArray(k.body.configMapGenerator)) {
    const gen = g as { name: string; files?: string[]; options?: { labels?: Record<string, string> } };
    const data: Record<string, string> = {};
    for (const f of gen.files ?? []) {
      const p = resolve(dir, f);
      if (!existsSync(p)) throw new Error(`${rel(kfile)}: configMapGenerator file ${f} does not exist`);
      data[basename(f)] = readFileSync(p, 'utf8');
      out.files.add(rel(p));
    }
    out.docs.push({ where: `${rel(kfile)} configMapGenerator ${gen.name}`, file: kfile, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name, labels: gen.options?.labels ?? {} }, data } });
  }
  for (const i of asArray(k.body.images)) {
    const img = i as { name: string; newName?: string; newTag?: string };
    out.images.set(img.name, img);
  }
  const ids = new Map<string, string>();
  for (const d of out.docs) {
    const md = d.body.metadata as { name?: string } | undefined;
    const id = `${String(d.body.kind)}/${md?.name ?? ''}`;
    const prev = ids.get(id);
    if (prev !== undefined) throw new Error(`${rel(kfile)}: ${id} is defined twice (${prev} and ${d.where}); kustomize rejects that`);
    ids.set(id, d.where);
  }
  return out;
}
