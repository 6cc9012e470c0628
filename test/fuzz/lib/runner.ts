// Runs batches of generated cases against a rig and accounts for every one:
// each accepted message must end in exactly one place (delivered once to the
// app from the right queue with the right bytes and headers, or dead-lettered
// once with the right reason after the right number of app calls); each
// refused request must get the right status and leave nothing behind. After
// every batch /healthz must answer within the bound and the process must live.

import fc from 'fast-check';
import type { FuzzDelivery } from './app.ts';
import { expandHeaders, type HeaderSpec } from './cases.ts';
import { foreignView, type ForeignCase, type ForeignProducer } from './foreign.ts';
import { expect as expectOf, ows, type Expected, type View } from './oracle.ts';
import { pathOf, send, verdict, type PublishCase } from './request.ts';
import type { Rig } from './rig.ts';
import type { FuzzSettings } from './settings.ts';
import { replayHint } from './settings.ts';
import type { Stats } from './stats.ts';

export interface Tracked {
  /** The message id (the dead-letter copy's); the app sees it with HTTP's whitespace trimmed. */
  id: string;
  what: string;
  source: string;
  expected: Expected;
  original: Buffer;
}

let counter = 0;
const nextId = (prefix: string): string => `${prefix}-${process.pid}-${++counter}`;

/** /healthz within the bound, and the process still running. */
export async function probe(rig: Rig, boundMs: number): Promise<void> {
  const started = performance.now();
  let status = 0;
  try {
    status = (await fetch(`${rig.proc.baseUrl}/healthz`, { signal: AbortSignal.timeout(boundMs) })).status;
  } catch (err) {
    throw new Error(`/healthz did not answer within ${boundMs} ms (${(err as Error).message}); process ${rig.proc.child.exitCode === null ? 'still running' : `exited ${rig.proc.child.exitCode}`}`);
  }
  if (status !== 200) throw new Error(`/healthz answered ${status}`);
  if (rig.proc.child.exitCode !== null || rig.proc.child.signalCode !== null) throw new Error(`turnout exited (${rig.proc.child.exitCode ?? rig.proc.child.signalCode})`);
  const took = performance.now() - started;
  if (took > boundMs) throw new Error(`/healthz took ${took.toFixed(0)} ms (bound ${boundMs})`);
}

const IGNORED_AT_APP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'x-turnout-attempt', 'x-turnout-redelivered']);
const key = ([k, v]: [string, string]): string => `${k.toLowerCase()}: ${JSON.stringify(ows(v))}`;

function headerDiff(want: [string, string][], got: [string, string][]): string | undefined {
  const a = want.map(key).sort();
  const b = got.filter(([k]) => !IGNORED_AT_APP.has(k.toLowerCase())).map(key).sort();
  const missing = a.filter((x) => !b.includes(x));
  const extra = b.filter((x) => !a.includes(x));
  if (missing.length === 0 && extra.length === 0 && a.length === b.length) return undefined;
  const cut = (l: string[]): string => l.slice(0, 5).map((s) => s.slice(0, 120)).join(' | ') + (l.length > 5 ? ` (+${l.length - 5})` : '');
  return `headers differ: missing [${cut(missing)}], unexpected [${cut(extra)}]`;
}

/** Waits until every tracked message has reached its end, then checks each one. */
async function settleAndCheck(rig: Rig, tracked: Tracked[], refusedIds: string[], stats: Stats, category: string): Promise<void> {
  const done = (t: Tracked): boolean =>
    t.expected.kind === 'deliver' ? (rig.app.byId.get(ows(t.id)) ?? []).some((d) => d.status === 200) : rig.dead.has(t.id);
  const deadline = Date.now() + 30_000;
  for (;;) {
    await rig.collectDead();
    const open = tracked.filter((t) => !done(t));
    if (open.length === 0) break;
    if (Date.now() > deadline) {
      const logOf = (id: string): string => rig.proc.output().split('\n').filter((l) => l.includes(JSON.stringify(id).slice(1, -1))).slice(-3).map((l) => l.slice(0, 400)).join('\n      ') || '(no log line names it)';
      throw new Error(`${open.length} message(s) never reached their end within 30 s:\n${open.slice(0, 5).map((t) => `  ${t.id} (${t.what}): expected ${describe(t.expected)}; app saw ${(rig.app.byId.get(ows(t.id)) ?? []).map((d) => d.status).join(',') || 'nothing'}; turnout logged:\n      ${logOf(t.id)}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  // A moment for a duplicate to show up.
  await new Promise((r) => setTimeout(r, 100));
  await rig.collectDead();
  await rig.checkDeadDepth();
  const errors: string[] = [];
  for (const t of tracked) {
    const calls: FuzzDelivery[] = rig.app.byId.get(ows(t.id)) ?? [];
    const dead = rig.dead.get(t.id);
    const e = t.expected;
    const fail = (why: string): void => void errors.push(`${t.id} (${t.what}): ${why}`);
    if (e.kind === 'deliver') {
      if (dead) fail(`delivered and also dead-lettered (${dead.reasons.join(',')})`);
      if (calls.length !== 1) fail(`app called ${calls.length} times (statuses ${calls.map((c) => c.status).join(',')}), expected once`);
      const d = calls[0];
      if (!d) continue;
      if (d.source !== t.source) fail(`delivered from "${d.source}", expected "${t.source}"`);
      if (!d.body.equals(e.body)) fail(`body differs: got ${d.body.length} bytes ${JSON.stringify(d.body.subarray(0, 60).toString('latin1'))}, expected ${e.body.length} bytes ${JSON.stringify(e.body.subarray(0, 60).toString('latin1'))}`);
      const diff = headerDiff(e.sent, d.headers);
      if (diff) fail(diff);
      stats.add(category, `delivered from ${t.source === rig.green ? 'green' : 'blue'}`);
    } else {
      if (!dead) {
        fail(`expected dead-letter ${e.reason} (${e.why}); app saw ${calls.map((c) => c.status).join(',') || 'nothing'}`);
        continue;
      }
      if (dead.count !== 1) fail(`dead-lettered ${dead.count} times (${dead.reasons.join(',')})`);
      if (dead.reasons[0] !== e.reason) fail(`dead-lettered as ${dead.reasons[0]}, expected ${e.reason} (${e.why})`);
      if (calls.some((c) => c.status === 200)) fail('dead-lettered although the app accepted it');
      if (calls.length !== e.appCalls) fail(`app called ${calls.length} times before the dead-letter, expected ${e.appCalls} (${e.why})`);
      const copy = dead.copies[0];
      if (copy && !copy.payload.equals(t.original)) fail('the dead-lettered copy does not carry the original payload');
      if (copy && copy.source !== t.source) fail(`the dead-lettered copy names source "${copy.source}", expected "${t.source}"`);
      stats.add(category, `dead-lettered ${e.reason}`);
      if (e.deferred) stats.add(category, '~deferred first');
    }
  }
  for (const id of refusedIds) {
    if (rig.app.byId.has(id) || rig.dead.has(id)) errors.push(`${id}: refused, yet it reached the ${rig.app.byId.has(id) ? 'app' : 'dead-letter queue'}`);
  }
  if (errors.length > 0) throw new Error(`${errors.length} case(s) ended in the wrong place:\n  ${errors.slice(0, 10).join('\n  ')}`);
}

const describe = (e: Expected): string => (e.kind === 'deliver' ? 'delivery' : `dead-letter ${e.reason} (${e.why})`);

/** Runs `work` over items, `limit` at a time. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await work(items[i++] as T);
  }));
}

export interface PublishGen {
  target: PublishCase['target'];
  headers: HeaderSpec;
  version: Buffer | undefined;
  contentType: Buffer | undefined;
  key: Buffer | undefined;
  body: Buffer;
  truncate: boolean;
  answer: number;
}

/** A request's headers, short enough for an error message. */
const show = (c: PublishCase): string =>
  c.headers.slice(0, 12).map(([k, v]) => `${k.slice(0, 40)}: ${JSON.stringify(v.subarray(0, 40).toString('latin1'))}${v.length > 40 ? `…(${v.length} bytes)` : ''}`).join('; ') + (c.headers.length > 12 ? `; … ${c.headers.length} headers` : '');

/** Publish requests: refusals checked at once, accepted ones followed to their end. */
export async function publishBatch(rig: Rig, batch: PublishGen[], stats: Stats, category: string): Promise<void> {
  const tracked: Tracked[] = [];
  const refused: string[] = [];
  await pool(batch, 8, async (g) => {
    const id = nextId('p');
    const headers = expandHeaders(g.headers);
    if (g.version !== undefined) headers.unshift(['x-schema-version', g.version]);
    if (g.contentType !== undefined) headers.unshift(['content-type', g.contentType]);
    if (g.key !== undefined) headers.push(['x-turnout-key', g.key]);
    // On the wire "x-a:b: v" is the header x-a with the value "b: v"; the case says what the wire says.
    // and a value "a\r\nx-b: 1" is two header lines.
    const wire = headers
      .map(([k, v]): [string, Buffer] => (k.includes(':') ? [k.slice(0, k.indexOf(':')), Buffer.concat([Buffer.from(`${k.slice(k.indexOf(':') + 1)}: `), v])] : [k, v]))
      .flatMap(([k, v]): [string, Buffer][] => {
        const lines = v.toString('latin1').split('\r\n');
        const rest = lines.slice(1);
        if (rest.length === 0 || rest.some((l) => !/^[^ \t:]+: /.test(l))) return [[k, v]];
        return [[k, Buffer.from(lines[0] as string, 'latin1')], ...rest.map((l): [string, Buffer] => [l.slice(0, l.indexOf(':')), Buffer.from(l.slice(l.indexOf(':') + 2), 'latin1')])];
      });
    const c: PublishCase = { id, target: g.target, headers: wire, body: g.body, truncate: g.truncate, answer: g.answer };
    rig.app.plan.set(id, g.answer);
    const v = verdict(c, { blue: rig.blue, exists: rig.exists, amqp: rig.broker === 'amqp' });
    const what = `publish ${c.target.kind === 'path' ? `to "${c.target.segment.slice(0, 40)}"` : c.target.kind}, ${headers.length} headers, ${c.body.length} bytes`;
    const ans = await send(rig.proc.baseUrl, c, pathOf(c, rig.blue));
    if (ans.via === 'raw') stats.add(category, '~sent raw');
    if (v.kind === 'refused' || v.orStatus.includes(ans.status)) {
      const allowed = v.kind === 'refused' ? v.status : v.orStatus;
      if (!allowed.includes(ans.status)) throw new Error(`${id} (${what}; ${show(c)}): answered ${ans.status} ${ans.body.slice(0, 200)}; expected ${allowed.join(' or ')} (${v.kind === 'refused' ? v.why : ''})`);
      const parser = (v.kind === 'refused' && v.parser === true) || ans.status === 431;
      if (!parser && !/"error"/.test(ans.body)) throw new Error(`${id}: ${ans.status} without a reason: ${ans.body.slice(0, 200)}`);
      refused.push(id);
      stats.add(category, `refused ${ans.status || 'connection closed'}`);
      return;
    }
    if (ans.status !== 202) throw new Error(`${id} (${what}; ${show(c)}): answered ${ans.status} ${ans.body.slice(0, 300)}; expected 202`);
    const json = JSON.parse(ans.body) as { id: string; queue: string };
    if (json.id !== id) throw new Error(`${id}: 202 names id ${json.id}`);
    if (v.routed ? ![rig.blue, rig.green].includes(json.queue) : json.queue !== rig.blue) throw new Error(`${id}: published to ${json.queue}`);
    if (v.routed) stats.add(category, `~routed ${json.queue === rig.green ? 'green' : 'blue'}`);
    tracked.push({ id, what, source: json.queue, expected: await expectOf(v.view, json.queue, g.answer), original: g.body });
  });
  await settleAndCheck(rig, tracked, refused, stats, category);
}

/** Messages a foreign producer put straight on the broker's blue queue. */
export async function foreignBatch(rig: Rig, producer: ForeignProducer, batch: ForeignCase[], stats: Stats, category: string): Promise<void> {
  const tracked: Tracked[] = [];
  // One at a time: a message RabbitMQ refuses may close the producer's connection, and must not take others with it.
  await pool(batch, 1, async (c) => {
    const id = nextId('f') + c.idSuffix;
    const view: View = foreignView(c, id);
    rig.app.plan.set(ows(view.id), c.answer);
    const r = await producer.publish(rig.blue, id, c);
    if (r !== 'sent') {
      stats.add(category, 'not sent (the producer itself refused)');
      return;
    }
    tracked.push({ id: view.id, what: `foreign, ${c.headers.length} headers, version ${JSON.stringify(c.version)?.slice(0, 30)}, ${c.payload.length} bytes`, source: rig.blue, expected: await expectOf(view, rig.blue, c.answer), original: c.payload });
  });
  await settleAndCheck(rig, tracked, [], stats, category);
}

/** fc.assert with the campaign's seed; a failure says how to replay it. */
export async function campaign<T>(s: FuzzSettings, category: string, file: string, arb: fc.Arbitrary<T>, runs: number, batch: number, body: (cases: T[]) => Promise<void>, rig: Rig): Promise<void> {
  const params: fc.Parameters<[T[]]> = { seed: s.seed, numRuns: Math.max(1, Math.round(runs * s.scale)), endOnFailure: !s.shrink };
  if (s.path !== undefined) params.path = s.path;
  process.stderr.write(`fuzz ${category}: seed ${s.seed}, ${params.numRuns} batches of up to ${batch} (replay: ${replayHint(s, category, undefined, file)})\n`);
  try {
    await fc.assert(fc.asyncProperty(fc.array(arb, { minLength: 1, maxLength: batch }), async (cases) => {
      await body(cases);
      await probe(rig, s.healthMs);
    }), params);
  } catch (err) {
    const msg = (err as Error).message;
    const path = /path: "([^"]*)"/.exec(msg)?.[1];
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : '';
    // The counterexample can hold megabytes of payload: keep the head of it.
    const report = msg.length > 3000 ? `${msg.slice(0, 3000)}… (${msg.length} characters)` : msg;
    throw new Error(`fuzz ${category} failed: ${cause}\nReplay: ${replayHint(s, category, path, file)}\n${report}`);
  }
}

