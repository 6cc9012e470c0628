// The sidecars a fleet check reads: http(s):// URLs as given, and
// dns+http(s)://name:port expanded to every address the name resolves to
// (a headless Kubernetes Service names every pod that way).

import { lookup } from 'node:dns/promises';
import { ConfigError } from '../../config/errors.ts';

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface Expanded {
  /** As given on --fleet. */
  given: string;
  /** Base URLs to read (empty when the name resolved to nothing or failed). */
  urls: string[];
  error?: string;
}

export async function expandFleet(list: string, resolve: Resolver = systemResolver): Promise<Expanded[]> {
  const items = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new ConfigError('--fleet needs at least one URL', '--fleet');
  const out: Expanded[] = [];
  for (const given of items) {
    let u: URL;
    try {
      u = new URL(given);
    } catch {
      throw new ConfigError(`--fleet: "${given}" is not a URL (http://host:port, https://…, dns+http://name:port)`, '--fleet');
    }
    const dns = u.protocol === 'dns+http:' || u.protocol === 'dns+https:';
    if (!dns && u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ConfigError(`--fleet: "${given}" must be http://, https://, dns+http:// or dns+https://`, '--fleet');
    }
    const path = u.pathname.replace(/\/+$/, '');
    if (!dns) {
      out.push({ given, urls: [`${u.protocol}//${u.host}${path}`] });
      continue;
    }
    const scheme = u.protocol.slice('dns+'.length);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    try {
      const addresses = [...new Set(await resolve(host))];
      const port = u.port !== '' ? `:${u.port}` : '';
      out.push({ given, urls: addresses.map((a) => `${scheme}//${a.includes(':') ? `[${a}]` : a}${port}${path}`) });
      if (addresses.length === 0) (out[out.length - 1] as Expanded).error = `${host} resolves to no address`;
    } catch (err) {
      out.push({ given, urls: [], error: `cannot resolve ${host}: ${(err as Error).message}` });
    }
  }
  return out;
}
