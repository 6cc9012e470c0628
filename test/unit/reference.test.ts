// docs/reference.md is the product's contract. These tests read the surface
// from the code (test/support/contract.ts) and fail when the reference misses
// a variable, endpoint, status code, header, metric, command or exit code, or
// when the README or docs/ name one the code does not have. And nothing in the
// repository may point outside it.

import { capabilities as memoryCapabilities } from '../../adapters/memory/capabilities.ts';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { BrokerError, type BrokerAdapter } from '../../adapters/broker.ts';
import { configTable } from '../../config/docs.ts';
import { loadConfig } from '../../config/load.ts';
import { HttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../lib/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { Router } from '../../src/router.ts';
import * as code from '../support/contract.ts';

const REFERENCE = 'docs/reference.md';
const reference = code.read(REFERENCE);
const readme = code.read('README.md');
/** The user-facing docs: README and every page of docs/. */
const docs = code.trackedFiles().filter((f) => f === 'README.md' || /^docs\/.*\.md$/.test(f)).map((f) => ({ file: f, text: code.read(f) }));

/** The text of one `## title` section of the reference (up to the next `## `). */
function section(title: string): string {
  const start = reference.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `${REFERENCE} has no "## ${title}" section`);
  const end = reference.indexOf('\n## ', start + 1);
  return reference.slice(start, end < 0 ? undefined : end);
}

/** Table rows (`| a | b |`) of a text, as trimmed cells. */
function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

const routeDoc = (r: code.Route): RegExp =>
  new RegExp(`\`${r.method} ${r.literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${r.prefix ? '\\{[a-z]+\\}' : ''}\``);

describe('reference: configuration', () => {
  test('its configuration table is the schema (node scripts/readme-config.ts --write)', () => {
    const start = reference.indexOf('<!-- config:start');
    const end = reference.indexOf('<!-- config:end -->');
    assert.ok(start >= 0 && end > start, 'config markers missing');
    assert.equal(reference.slice(reference.indexOf('\n', start) + 1, end).trim(), configTable());
  });

  test('names every variable of the schema with its flag', () => {
    for (const v of code.variables()) {
      assert.ok(reference.includes(`\`${v.variable}\``), `${REFERENCE} does not document ${v.variable}`);
      assert.ok(reference.includes(`\`${v.flag}\``), `${REFERENCE} does not document ${v.flag}`);
    }
  });

  test('README and docs/ name no TURNOUT_ variable the schema does not have', () => {
    const known = new Set(code.variables().map((v) => v.variable));
    // Kubernetes service-link variables, which turnout is documented to ignore or refuse.
    const serviceLink = /^TURNOUT_(SERVICE_[A-Z_]*|PORT_\d[A-Z0-9_]*)$/;
    // The misspelling in the reference's `turnout check` example, there to show the warning.
    const examples = new Set(['TURNOUT_GREEN_WIEGHT']);
    for (const { file, text } of docs) {
      for (const m of text.matchAll(/\bTURNOUT_[A-Z0-9_]*[A-Z0-9](_\*_[A-Z]+)?\b/g)) {
        const name = m[0];
        if (known.has(name) || serviceLink.test(name) || examples.has(name)) continue;
        // a family such as TURNOUT_KAFKA_TLS_*_FILE
        if (name.includes('*')) {
          const [head, tail] = name.split('*') as [string, string];
          assert.ok([...known].some((k) => k.startsWith(head) && k.endsWith(tail)), `${file}: ${name} matches no variable`);
          continue;
        }
        assert.fail(`${file} names ${name}, which is not a variable of config/schema.ts`);
      }
    }
  });
});

describe('reference: HTTP', () => {
  const found = code.routes();

  test('the route extraction understands every path of the server', () => {
    assert.ok(found.length > 0, `no routes found in ${code.SERVER_FILE}: update routes() in test/support/contract.ts`);
    const literals = new Set(found.map((r) => r.literal));
    for (const lit of code.serverPathLiterals()) {
      assert.ok(literals.has(lit), `${code.SERVER_FILE} compares the path with '${lit}' in a way routes() in test/support/contract.ts does not read; update it`);
    }
  });

  test('documents every endpoint of the server, with status codes', () => {
    const http = section('HTTP API');
    for (const r of found) {
      const row = rows(http).find((cells) => routeDoc(r).test(cells[0] ?? ''));
      assert.ok(row, `${REFERENCE} "HTTP API" has no row for ${r.method} ${r.literal}${r.prefix ? '{…}' : ''}`);
      assert.match(row.slice(1).join(' '), /\b[1-5]\d\d\b/, `${r.method} ${r.literal}: the row names no status code`);
    }
  });

  test('documents every status code the server answers with', () => {
    const http = section('HTTP API');
    for (const status of code.statusCodes()) assert.match(http, new RegExp(`\\b${status}\\b`), `${REFERENCE} "HTTP API" never mentions ${status}`);
  });

  test('README and docs/ name no endpoint the server does not have', () => {
    // The rollout controller (turnout rollout) serves its own endpoints.
    const all = [...found, ...code.rolloutRoutes()];
    const known = (method: string | undefined, path: string): boolean =>
      all.some((r) => (method === undefined || r.method === method) && (r.prefix ? path.startsWith(r.literal) && path.length > r.literal.length : path === r.literal));
    for (const { file, text } of docs) {
      for (const m of text.matchAll(/\b(GET|POST|PUT|DELETE|PATCH) (\/[A-Za-z0-9_.{}/-]*[A-Za-z0-9_}])/g)) {
        assert.ok(known(m[1], m[2] as string), `${file} documents ${m[1]} ${m[2]}, which neither ${code.SERVER_FILE} nor ${code.ROLLOUT_HTTP_FILE} serves`);
      }
      for (const m of text.matchAll(/(?<![\w.])\/v1\/[A-Za-z0-9_.{}/-]*[A-Za-z0-9_}]/g)) {
        assert.ok(known(undefined, m[0]), `${file} names ${m[0]}, which neither ${code.SERVER_FILE} nor ${code.ROLLOUT_HTTP_FILE} serves`);
      }
    }
  });

  describe('every extracted route is one the running server answers', () => {
    let server: HttpServer;
    let base: string;
    before(async () => {
      const { config } = loadConfig({}, {});
      const unknown = (q: string): never => {
        throw new BrokerError('unknown-queue', `queue "${q}" does not exist`);
      };
      // A fake broker: this test is about which paths and methods exist, not about a broker.
      const broker: BrokerAdapter = {
        kind: 'fake',
        capabilities: { ...memoryCapabilities, setting: 'fake', name: 'a fake broker' },
        connect: async () => {},
        isUp: () => true,
        consume: async (source) => ({ source, inflight: 0, stop: async () => {} }),
        publish: async (q) => unknown(q),
        depth: async (q) => unknown(q),
        backlog: async (q) => unknown(q),
        sweep: async (q) => unknown(q),
        close: async () => {},
      };
      server = new HttpServer({
        config,
        broker,
        router: new Router({ targets: {}, routeKey: { kind: 'key' }, weight: 0 }),
        metrics: new Metrics(new Registry(), { brokerUp: () => true, inflight: () => 0 }, { defaultMetrics: false }),
        logger: createLogger('silent'),
        readiness: () => ({ ready: true }),
      });
      const port = await server.listen(0, '127.0.0.1');
      base = `http://127.0.0.1:${port}`;
    });
    after(() => server.close());

    test('its method is served and another method is refused (405)', async () => {
      for (const r of found) {
        const url = `${base}${r.literal}${r.prefix ? 'q1' : ''}`;
        const init: RequestInit = r.method === 'GET' ? {} : { method: r.method, body: '{}' };
        const res = await fetch(url, init);
        const body = await res.text();
        assert.ok(res.status !== 405 && !(res.status === 404 && body.includes('no such endpoint')), `${r.method} ${url}: ${res.status} ${body}`);
        const other = r.method === 'GET' ? 'DELETE' : 'GET';
        const wrong = await fetch(url, { method: other });
        await wrong.text();
        assert.equal(wrong.status, 405, `${other} ${url} should be 405: routes() took the wrong method for ${r.literal}`);
      }
    });
  });
});

describe('reference: metrics', () => {
  const found = code.metrics();

  test('documents every metric with its type and labels', () => {
    assert.ok(found.length > 0);
    const table = rows(section('Metrics'));
    for (const m of found) {
      const row = table.find((cells) => cells[0] === `\`${m.name}\``);
      assert.ok(row, `${REFERENCE} "Metrics" has no row for ${m.name}`);
      assert.equal(row[1], m.type, `${m.name}: type`);
      const labels = (row[2] ?? '').split(',').map((s) => s.trim().replace(/`/g, '')).filter((s) => s !== '');
      assert.deepEqual(labels.sort(), [...m.labels].sort(), `${m.name}: labels`);
    }
  });

  test('README and docs/ name no turnout_ metric the code does not register', () => {
    const names = new Set([...found, ...code.rolloutMetrics()].flatMap((m) => (m.type === 'histogram' ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name])));
    for (const { file, text } of docs) {
      for (const m of text.matchAll(/\bturnout_[a-z_]*[a-z]\b/g)) {
        assert.ok(names.has(m[0]), `${file} names ${m[0]}, which neither src/metrics.ts nor src/rollout/metrics.ts registers`);
      }
    }
  });
});

describe('reference: the rollout controller', () => {
  const found = code.rolloutRoutes();
  const title = 'Rollout controller';

  test('the route extraction understands every path of the controller', () => {
    assert.ok(found.some((r) => r.method === 'POST'), `no command routes found in ${code.ROLLOUT_HTTP_FILE}: update rolloutRoutes() in test/support/contract.ts`);
    for (const lit of code.rolloutPathLiterals()) {
      assert.ok(found.some((r) => r.literal === lit || r.literal.startsWith(`${lit}/`)), `${code.ROLLOUT_HTTP_FILE} compares the path with '${lit}' in a way rolloutRoutes() does not read; update it`);
    }
  });

  test('documents every endpoint of the controller, with status codes', () => {
    const text = section(title);
    for (const r of found) {
      const row = rows(text).find((cells) => routeDoc(r).test(cells[0] ?? ''));
      assert.ok(row, `${REFERENCE} "${title}" has no row for ${r.method} ${r.literal}`);
      assert.match(row.slice(1).join(' '), /\b[1-5]\d\d\b/, `${r.method} ${r.literal}: the row names no status code`);
    }
  });

  test('documents every status code the controller answers with', () => {
    const text = section(title);
    for (const status of code.rolloutStatusCodes()) assert.match(text, new RegExp(`\\b${status}\\b`), `${REFERENCE} "${title}" never mentions ${status}`);
  });

  test('documents every turnout_rollout_ metric with its type and labels', () => {
    const metrics = code.rolloutMetrics();
    assert.ok(metrics.length > 0);
    const table = rows(section(title));
    for (const m of metrics) {
      const row = table.find((cells) => cells[0] === `\`${m.name}\``);
      assert.ok(row, `${REFERENCE} "${title}" has no row for ${m.name}`);
      assert.equal(row[1], m.type, `${m.name}: type`);
      const labels = (row[2] ?? '').split(',').map((s) => s.trim().replace(/`/g, '')).filter((s) => s !== '');
      assert.deepEqual(labels.sort(), [...m.labels].sort(), `${m.name}: labels`);
    }
  });
});

describe('reference: headers', () => {
  const found = code.headers();

  test('documents every header the code names', () => {
    const table = section('Headers');
    assert.ok(found.includes('x-turnout-dlq-reason') && found.includes('x-schema-version'), `header extraction found too little: ${found.join(', ')}`);
    for (const h of found) assert.ok(table.includes(`\`${h}\``), `${REFERENCE} "Headers" does not document ${h}`);
  });

  test('README and docs/ name no x-turnout header the code does not have', () => {
    for (const { file, text } of docs) {
      for (const m of text.matchAll(/\bx-turnout[a-z0-9-]*/g)) {
        const h = m[0];
        // "x-turnout-*" or "x-turnout-dlq-*": a family of headers
        const ok = h.endsWith('-') ? found.some((f) => f.startsWith(h)) : found.includes(h);
        assert.ok(ok, `${file} names ${h}, which no code of src/, adapters/ or config/ reads or writes`);
      }
    }
  });
});

describe('reference: commands and exit codes', () => {
  const exitRows = rows(section('Exit codes')).filter((cells) => cells[0] !== 'command');

  test('documents every command of the CLI', () => {
    const commands = code.commands();
    assert.ok(commands.includes('run'), `command extraction found ${commands.join(', ')}`);
    const documented = new Set(exitRows.map((cells) => cells[0]));
    for (const c of commands) {
      assert.ok(documented.has(c), `${REFERENCE} "Exit codes" has no row for ${c}`);
      assert.match(section('Commands'), new RegExp(`\`turnout ${c}\``), `${REFERENCE} "Commands" does not describe turnout ${c}`);
    }
    for (const c of documented) assert.ok(commands.includes(c as string), `${REFERENCE} documents exit codes of "${c}", which ${code.CLI_FILE} does not have`);
  });

  test('documents every exit code the code can produce', () => {
    const codes = code.exitCodes();
    assert.ok(codes.length > 0);
    const documented = new Set(exitRows.map((cells) => Number(cells[1])));
    for (const c of codes) assert.ok(documented.has(c), `${REFERENCE} "Exit codes" does not document exit code ${c}`);
  });
});

describe('the repository stands alone', () => {
  // Spelled in pieces so that this file does not match itself.
  const outside = ['..', 'shared'].join('/');
  const design = ['DESIGN', 'md'].join('.');

  test(`no file names ${outside} or ${design}`, () => {
    const offenders: string[] = [];
    for (const file of code.trackedFiles()) {
      let text: string;
      try {
        text = code.read(file);
      } catch {
        continue; // listed but absent (deleted in the work tree)
      }
      if (text.includes(outside) || text.toLowerCase().includes(design.toLowerCase())) offenders.push(file);
    }
    assert.deepEqual(offenders, [], 'point to docs/reference.md instead');
  });

  test('the README links the reference', () => {
    assert.ok(/\]\(docs\/reference\.md[#)]/.test(readme), 'README.md does not link docs/reference.md');
  });
});
