// The HTTP access and limit options of config/schema.ts: what they accept,
// their defaults, and the one combination node:http refuses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../config/errors.ts';
import { loadConfig } from '../../config/load.ts';

const load = (env: Record<string, string>): ReturnType<typeof loadConfig>['config'] => loadConfig({}, env).config;

function refused(env: Record<string, string>, variable: string, ...parts: RegExp[]): void {
  assert.throws(() => load(env), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.variable, variable);
    for (const p of parts) assert.match(err.message, p);
    return true;
  });
}

test('defaults: no publish token, any queue, and limits that no well-behaved client meets', () => {
  const c = load({});
  assert.equal(c.publishToken, undefined);
  assert.deepEqual(c.publishQueues, ['*']);
  assert.equal(c.httpHeadersTimeout, 10000);
  assert.equal(c.httpRequestTimeout, 60000);
  assert.equal(c.httpMaxHeaders, 200);
  assert.equal(c.httpMaxHeaderBytes, 16384);
  assert.equal(c.httpMaxConnections, 1024);
});

test('TURNOUT_PUBLISH_TOKEN and TURNOUT_PUBLISH_QUEUES as variables and flags', () => {
  const c = load({ TURNOUT_PUBLISH_TOKEN: 'tok', TURNOUT_PUBLISH_QUEUES: ' response_*, orders ,,audit.? ' });
  assert.equal(c.publishToken, 'tok');
  assert.deepEqual(c.publishQueues, ['response_*', 'orders', 'audit.?']);
  assert.deepEqual(loadConfig({ publishQueues: 'a' }, { TURNOUT_PUBLISH_QUEUES: 'b' }).config.publishQueues, ['a']);
  refused({ TURNOUT_PUBLISH_QUEUES: ' , ' }, 'TURNOUT_PUBLISH_QUEUES', /at least one/, /globs/);
  refused({ TURNOUT_PUBLISH_TOKEN: '   ' }, 'TURNOUT_PUBLISH_TOKEN', /must not be empty/);
});

test('the limits take whole numbers in their ranges and name the variable otherwise', () => {
  const c = load({ TURNOUT_HTTP_HEADERS_TIMEOUT: '100', TURNOUT_HTTP_REQUEST_TIMEOUT: '3600000', TURNOUT_HTTP_MAX_HEADERS: '1',
    TURNOUT_HTTP_MAX_HEADER_BYTES: '1048576', TURNOUT_HTTP_MAX_CONNECTIONS: '100000' });
  assert.deepEqual([c.httpHeadersTimeout, c.httpRequestTimeout, c.httpMaxHeaders, c.httpMaxHeaderBytes, c.httpMaxConnections], [100, 3600000, 1, 1048576, 100000]);
  refused({ TURNOUT_HTTP_HEADERS_TIMEOUT: '99' }, 'TURNOUT_HTTP_HEADERS_TIMEOUT', /from 100 to 600000/);
  refused({ TURNOUT_HTTP_REQUEST_TIMEOUT: '1m' }, 'TURNOUT_HTTP_REQUEST_TIMEOUT', /whole number/);
  refused({ TURNOUT_HTTP_MAX_HEADERS: '0' }, 'TURNOUT_HTTP_MAX_HEADERS', /from 1 to 10000/);
  refused({ TURNOUT_HTTP_MAX_HEADER_BYTES: '1023' }, 'TURNOUT_HTTP_MAX_HEADER_BYTES', /from 1024 to 1048576/);
  refused({ TURNOUT_HTTP_MAX_CONNECTIONS: '-1' }, 'TURNOUT_HTTP_MAX_CONNECTIONS', /from 1 to 100000/);
});

test('a headers timeout longer than the request timeout is refused at start (node:http would throw)', () => {
  refused({ TURNOUT_HTTP_HEADERS_TIMEOUT: '5000', TURNOUT_HTTP_REQUEST_TIMEOUT: '4999' }, 'TURNOUT_HTTP_HEADERS_TIMEOUT', /must not exceed TURNOUT_HTTP_REQUEST_TIMEOUT/);
  refused({ TURNOUT_HTTP_REQUEST_TIMEOUT: '9999' }, 'TURNOUT_HTTP_HEADERS_TIMEOUT', /10000 ms/);
  assert.equal(load({ TURNOUT_HTTP_HEADERS_TIMEOUT: '5000', TURNOUT_HTTP_REQUEST_TIMEOUT: '5000' }).httpRequestTimeout, 5000);
});
