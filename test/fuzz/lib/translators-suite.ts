// The translators categories: files judged at start (exit 2 naming the file
// and the step) and on hot reload (the previous set stays active), each
// followed by a v2 message through whatever 2->1 step is then live.

import fc from 'fast-check';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishVia } from '../../support/process.ts';
import { memoryRig, type Rig } from './rig.ts';
import { probe } from './runner.ts';
import { replayHint, wanted, type FuzzSettings } from './settings.ts';
import type { Stats } from './stats.ts';
import { fileText, judge, startWith, translatorsFile, v2Outcome, type FileSpec, type StepSpec } from './translators.ts';

async function assertWithSeed<T>(s: FuzzSettings, category: string, file: string, arb: fc.Arbitrary<T>, runs: number, body: (v: T) => Promise<void>): Promise<void> {
  const params: fc.Parameters<[T]> = { seed: s.seed, numRuns: Math.max(1, Math.round(runs * s.scale)), endOnFailure: !s.shrink };
  if (s.path !== undefined) params.path = s.path;
  process.stderr.write(`fuzz ${category}: seed ${s.seed}, ${params.numRuns} files (replay: ${replayHint(s, category, undefined, file)})\n`);
  try {
    await fc.assert(fc.asyncProperty(arb, body), params);
  } catch (err) {
    const msg = (err as Error).message;
    const path = /path: "([^"]*)"/.exec(msg)?.[1];
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : '';
    throw new Error(`fuzz ${category} failed: ${cause}\nReplay: ${replayHint(s, category, path, file)}\n${msg.slice(0, 3000)}`);
  }
}

export async function translatorsStartSuite(s: FuzzSettings, stats: Stats, runs: number, file: string): Promise<void> {
  const category = 'translators.start';
  if (!wanted(s, category)) return;
  const dir = mkdtempSync(join(tmpdir(), 'turnout-fuzz-tr-'));
  let n = 0;
  try {
    await assertWithSeed(s, category, file, translatorsFile, runs, async (f: FileSpec) => {
      const path = join(dir, `t${++n}.yaml`);
      const text = fileText(f);
      writeFileSync(path, text);
      const want = judge(text);
      const got = await startWith(path);
      if (want.valid) {
        if (!got.started) throw new Error(`a valid file did not start (exit ${got.code}):\n${text}\n${got.output.slice(0, 1500)}`);
        stats.add(category, 'valid: started');
        return;
      }
      if (got.started) throw new Error(`an invalid file started (it should be exit 2 naming ${want.step === undefined ? 'the file' : `step "${want.step}"`}):\n${text}`);
      if (got.code !== 2) throw new Error(`exit ${got.code} for an invalid file (expected 2):\n${text}\n${got.output.slice(0, 1500)}`);
      if (!got.output.includes(path)) throw new Error(`the exit-2 message does not name the file ${path}:\n${got.output.slice(0, 1500)}`);
      if (want.step !== undefined && !got.output.includes(`step "${want.step}"`)) throw new Error(`the exit-2 message does not name step "${want.step}":\n${text}\n${got.output.slice(0, 1500)}`);
      stats.add(category, `invalid: exit 2 naming ${want.step === undefined ? 'the file' : 'the step'}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const INITIAL: StepSpec = { key: '2->1', kind: 'fine', value: '$merge([$, {"email": contact.email, "fuzz": 0}])' };

/** Waits for turnout to take the new file or keep the old one; returns which. */
async function reloaded(rig: Rig, before: { ok: number; kept: number }): Promise<'reloaded' | 'kept'> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const logs = rig.proc.logs();
    if (logs.filter((l) => l.msg === 'translators reloaded').length > before.ok) return 'reloaded';
    if (logs.filter((l) => String(l.msg).includes('previous set stays active')).length > before.kept) return 'kept';
    if (Date.now() > deadline) throw new Error('turnout neither reloaded the translators file nor refused it within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function translatorsReloadSuite(s: FuzzSettings, stats: Stats, runs: number, file: string): Promise<void> {
  const category = 'translators.reload';
  if (!wanted(s, category)) return;
  let liveText = fileText({ steps: [INITIAL], garbage: undefined });
  const rig = await memoryRig({ translators: liveText });
  let live = (judge(liveText) as { steps: Map<string, string> }).steps;
  let liveSpecs: StepSpec[] = [INITIAL];
  let n = 0;
  try {
    await assertWithSeed(s, category, file, translatorsFile, runs, async (f: FileSpec) => {
      const text = fileText(f);
      const want = judge(text);
      if (text !== liveText) {
        const logs = rig.proc.logs();
        const before = { ok: logs.filter((l) => l.msg === 'translators reloaded').length, kept: logs.filter((l) => String(l.msg).includes('previous set stays active')).length };
        // Atomically, as a ConfigMap update is: a watcher must never see half a file.
        writeFileSync(`${rig.translators}.tmp`, text);
        renameSync(`${rig.translators}.tmp`, rig.translators);
        const got = await reloaded(rig, before);
        if (got !== (want.valid ? 'reloaded' : 'kept')) throw new Error(`turnout ${got} the file, expected it to ${want.valid ? 'reload it' : 'keep the previous set'}:\n${text}`);
        stats.add(category, want.valid ? '~file reloaded' : '~file refused, previous set kept');
        if (want.valid) {
          live = want.steps;
          liveSpecs = f.steps;
        }
        // Either way the file's text is now the watcher's baseline.
        liveText = text;
      } else {
        stats.add(category, '~file unchanged');
      }
      // A v2 message meets the live 2->1 step.
      const id = `tr-${process.pid}-${++n}`;
      const expected = v2Outcome(live, liveSpecs);
      const r = await publishVia(rig.proc.baseUrl, JSON.stringify({ id: n, contact: { email: 'a@x' } }), { 'x-turnout-message-id': id, 'x-schema-version': '2' }, rig.blue);
      if (r.status !== 202) throw new Error(`publish answered ${r.status}`);
      const deadline = Date.now() + 30_000;
      let place: string | undefined;
      while (place === undefined) {
        // The health probe runs while the message is being translated: a stalled event loop fails it.
        await probe(rig, s.healthMs);
        await rig.collectDead();
        const d = rig.app.byId.get(id)?.[0];
        if (d) {
          place = 'delivered';
          if (expected.fuzz !== undefined && (JSON.parse(d.body.toString()) as { fuzz?: number }).fuzz !== expected.fuzz) throw new Error(`delivered, but not through the live 2->1 step (fuzz ${expected.fuzz}): ${d.body.toString().slice(0, 200)}`);
        } else if (rig.dead.has(id)) {
          place = rig.dead.get(id)?.reasons[0];
        } else if (Date.now() > deadline) {
          throw new Error(`the v2 message never reached its end (expected ${expected.place.join(' or ')}) under:\n${[...live].map(([k, v]) => `${k}: ${v}`).join('\n')}`);
        } else {
          await new Promise((r2) => setTimeout(r2, 50));
        }
      }
      if (!expected.place.includes(place)) throw new Error(`the v2 message was ${place}, expected ${expected.place.join(' or ')} under 2->1: ${live.get('2->1')}`);
      stats.add(category, `v2 message ${place === 'delivered' ? 'delivered' : `dead-lettered ${place}`}`);
      await probe(rig, s.healthMs);
    });
  } finally {
    await rig.close();
  }
}
