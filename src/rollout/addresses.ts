// A plan's URLs: http(s)://host:port as given, or dns+http(s)://name:port
// expanded to every address the name resolves to (a headless Service's pods),
// re-resolved each time so replicas that come and go are followed.

import { lookup } from 'node:dns/promises';

export async function expand(url: string): Promise<string[]> {
  if (!url.startsWith('dns+')) return [url];
  const u = new URL(url.slice('dns+'.length));
  const name = u.hostname.replace(/^\[|\]$/g, '');
  const found = await lookup(name, { all: true });
  const rest = `${u.port !== '' ? `:${u.port}` : ''}${u.pathname === '/' ? '' : u.pathname}`;
  const addrs = [...new Set(found.map((a) => (a.family === 6 ? `[${a.address}]` : a.address)))].sort();
  return addrs.map((a) => `${u.protocol}//${a}${rest}`);
}

/** Every URL of the list expanded; a name that does not resolve is an entry with its error. */
export async function expandAll(urls: string[]): Promise<{ url: string; error?: string }[]> {
  const out: { url: string; error?: string }[] = [];
  for (const url of urls) {
    try {
      const list = await expand(url);
      if (list.length === 0) out.push({ url, error: 'the name resolves to no address' });
      for (const u of list) out.push({ url: u });
    } catch (err) {
      out.push({ url, error: `cannot resolve: ${(err as Error).message}` });
    }
  }
  return out;
}
