// Sets and confirms the green weight on every router replica through their
// admin API (PUT /v1/routes/green-weight, then GET /v1/routes). One call
// answers, per router, whether it now routes at that weight.

import { expandAll } from './addresses.ts';

export interface RouterState {
  url: string;
  ok: boolean;
  /** The weight the router reported, when it answered. */
  weight?: number;
  error?: string;
}

export interface RoutersOptions {
  urls: string[];
  adminToken: string | undefined;
  timeoutMs?: number;
}

export class Routers {
  private readonly o: RoutersOptions;
  constructor(options: RoutersOptions) {
    this.o = options;
  }

  /** Sets `weight` on every router at once and reads it back from each. */
  async set(weight: number): Promise<RouterState[]> {
    const targets = await expandAll(this.o.urls);
    return Promise.all(targets.map((t) => (t.error !== undefined ? { url: t.url, ok: false, error: t.error } : this.setOne(t.url, weight))));
  }

  /** Reads every router's weight; ok when it is `weight`. */
  async confirm(weight: number): Promise<RouterState[]> {
    const targets = await expandAll(this.o.urls);
    return Promise.all(targets.map((t) => (t.error !== undefined ? { url: t.url, ok: false, error: t.error } : this.read(t.url, weight))));
  }

  private async setOne(url: string, weight: number): Promise<RouterState> {
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.o.adminToken !== undefined) headers.authorization = `Bearer ${this.o.adminToken}`;
      const res = await fetch(`${url}/v1/routes/green-weight`, { method: 'PUT', headers, body: JSON.stringify({ weight }), signal: AbortSignal.timeout(this.o.timeoutMs ?? 3000) });
      if (res.status !== 200) {
        const text = (await res.text()).slice(0, 200);
        const hint = res.status === 401 || res.status === 403 ? ' (is TURNOUT_ADMIN_TOKEN the routers\' admin token?)' : '';
        return { url, ok: false, error: `PUT /v1/routes/green-weight answered ${res.status}: ${text}${hint}` };
      }
    } catch (err) {
      return { url, ok: false, error: `unreachable: ${errText(err)}` };
    }
    return this.read(url, weight);
  }

  private async read(url: string, weight: number): Promise<RouterState> {
    try {
      const res = await fetch(`${url}/v1/routes`, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 3000) });
      if (res.status !== 200) return { url, ok: false, error: `GET /v1/routes answered ${res.status}` };
      const body = (await res.json()) as { greenWeight?: unknown };
      const got = typeof body.greenWeight === 'number' ? body.greenWeight : NaN;
      if (got !== weight) return { url, ok: false, weight: got, error: `reports weight ${got}, not ${weight}` };
      return { url, ok: true, weight: got };
    } catch (err) {
      return { url, ok: false, error: `unreachable: ${errText(err)}` };
    }
  }
}

function errText(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
