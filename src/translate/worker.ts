// A translation worker process: compiles the steps it is sent (once per
// expression text), parses each payload, runs the chain and answers with the
// translated bytes. It runs one job at a time; the pool kills it when a job
// overruns its budget, so nothing here needs to watch the clock. Parsing
// happens here too: JSON.parse of a hostile payload blocks as surely as a
// looping step. It is a process rather than a worker thread because V8
// aborts the whole process when one allocation overshoots a thread's heap
// limit (a step like [1..10000000] or $pad("", 200000000) does that).

import { Buffer } from 'node:buffer';
import jsonata from 'jsonata';
import { TranslateError, translateToText } from './evaluate.ts';
import { SETUP_ENV, type JobRequest, type WorkerReply, type WorkerSetup } from './protocol.ts';

const send = process.send?.bind(process);
if (send === undefined) throw new Error('translate/worker.ts runs as a child process of turnout only');
const setup = JSON.parse(process.env[SETUP_ENV] ?? '{}') as WorkerSetup;

// JSONata's guardrails: no sequence longer than the largest message could hold (so [1..10000000]
// fails at once instead of filling the heap), and an evaluation timeout past turnout's own budget
// so that a worker left behind by a killed turnout stops looping and sees its channel close.
const options: jsonata.JsonataOptions = { sequence: Math.max(100_000, setup.maxBytes), timeout: setup.guardMs };

/** Compiled expressions by text. A reload brings new texts; the old ones are dropped when the cache fills. */
const compiled = new Map<string, jsonata.Expression>();
const MAX_COMPILED = 512;

function expression(text: string): jsonata.Expression {
  let e = compiled.get(text);
  if (e === undefined) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    // turnout compiled the same text when it loaded the file, so this does not throw.
    e = jsonata(text, options);
    compiled.set(text, e);
  }
  return e;
}

const reply = (r: WorkerReply): void => void send(r);

async function run(job: JobRequest): Promise<void> {
  try {
    const chain = { from: job.from, to: job.to, steps: job.steps.map((s) => ({ from: s.from, to: s.to, expression: expression(s.text) })) };
    const payload = Buffer.from(job.payload.buffer, job.payload.byteOffset, job.payload.byteLength);
    const text = await translateToText(chain, payload, { maxBytes: setup.maxBytes });
    reply({ kind: 'done', id: job.id, bytes: Buffer.from(text, 'utf8') });
  } catch (err) {
    if (err instanceof TranslateError) reply({ kind: 'failed', id: job.id, reason: err.reason, message: err.message });
    else reply({ kind: 'failed', id: job.id, reason: 'translate-error', message: `translation failed: ${err instanceof Error ? err.name : 'unknown error'}` });
  }
}

process.on('message', (job: JobRequest) => void run(job));
// turnout went away (or closed the pool): nothing more to do.
process.on('disconnect', () => process.exit(0));
reply({ kind: 'ready' });
