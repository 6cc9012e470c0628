// Who may publish (src/http/access.ts): loopback in every spelling a socket
// reports, the bearer comparison, queue globs, and the 403 texts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bearerMatches, globMatcher, isLoopback, PublishAccess } from '../../src/http/access.ts';

describe('isLoopback', () => {
  test('127.0.0.0/8 and ::1, also IPv4-mapped and fully written out', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '0000:0000:0000:0000:0000:0000:0000:0001',
      '::ffff:127.0.0.1', '::FFFF:127.9.9.9', '::ffff:7f00:1', '0:0:0:0:0:ffff:127.0.0.1']) {
      assert.equal(isLoopback(a), true, a);
    }
  });

  test('everything else is not, including the unspecified address, other mapped addresses and garbage', () => {
    for (const a of ['10.231.0.2', '128.0.0.1', '126.255.255.255', '0.0.0.0', '::', '::2', '::ffff:10.0.0.1', '::ffff:8.8.8.8', '::ffff:0:127.0.0.1',
      '::127.0.0.1', 'fe80::1', 'fe80::1%lo', 'fd00::1', '2001:db8::1', '', 'localhost', '127.0.0.1.evil', ' 127.0.0.1', '127.0.0.1:80']) {
      assert.equal(isLoopback(a), false, JSON.stringify(a));
    }
    assert.equal(isLoopback(undefined), false, 'a destroyed socket reports no address');
  });
});

describe('bearerMatches', () => {
  test('only the exact token after "Bearer " matches', () => {
    assert.equal(bearerMatches('Bearer s3cret', 's3cret'), true);
    assert.equal(bearerMatches('bearer  s3cret', 's3cret'), true, 'the scheme is case-insensitive (RFC 7235)');
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 's3cret', 'Basic s3cret', 'Bearer s3cre', 'Bearer s3cretX', 'Bearer S3CRET', 'Bearer  s3cret ']) {
      assert.equal(bearerMatches(h, 's3cret'), false, JSON.stringify(h));
    }
  });

  test('tokens of any length and characters compare without throwing (timingSafeEqual needs equal lengths)', () => {
    assert.equal(bearerMatches(`Bearer ${'x'.repeat(10_000)}`, 'short'), false);
    assert.equal(bearerMatches('Bearer é✓', 'é✓'), true);
  });
});

describe('globMatcher', () => {
  test('* is any run of characters, ? one, everything else literal', () => {
    const m = globMatcher(['orders', 'response_*', 'audit.?', 'a+b(c)[d]{e}|^$\\']);
    for (const q of ['orders', 'response_', 'response_42', 'response_a.b/c', 'audit.1', 'audit.é', 'a+b(c)[d]{e}|^$\\']) assert.equal(m(q), true, q);
    for (const q of ['orders2', 'xorders', 'Orders', 'response', 'responseX42', 'audit.', 'audit.12', 'auditX1', 'a+b(c)[d]{e}|^$', 'ab(c)[d]{e}|^$\\']) {
      assert.equal(m(q), false, q);
    }
  });

  test('"*" matches every name, even one with a newline', () => {
    const any = globMatcher(['*']);
    for (const q of ['a', 'orders.fifo', 'x\ny', '✓']) assert.equal(any(q), true, JSON.stringify(q));
  });
});

describe('PublishAccess.refusal', () => {
  const open = new PublishAccess({ token: undefined, queues: ['*'] });
  const tokened = new PublishAccess({ token: 'pub-token', queues: ['response_*', 'orders'] });

  test('loopback peers publish without a token, whatever they send', () => {
    for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      assert.equal(open.refusal(peer, undefined, undefined), undefined, peer);
      assert.equal(open.refusal(peer, undefined, 'anything'), undefined, peer);
      assert.equal(tokened.refusal(peer, 'Bearer wrong', 'orders'), undefined, peer);
    }
  });

  test('without TURNOUT_PUBLISH_TOKEN, any other peer is refused, token or not, and told how to open it', () => {
    for (const auth of [undefined, 'Bearer pub-token']) {
      const why = open.refusal('10.231.0.2', auth, undefined);
      assert.match(why ?? '', /loopback peers only/);
      assert.match(why ?? '', /TURNOUT_PUBLISH_TOKEN/);
    }
    assert.ok(open.refusal('::ffff:10.231.0.2', undefined, 'q'));
    assert.ok(open.refusal(undefined, undefined, 'q'));
  });

  test('with a token, other peers need it; the answer never contains it', () => {
    for (const auth of [undefined, '', 'Bearer', 'Bearer pub-toke', 'Bearer pub-tokenX', 'Basic pub-token']) {
      const why = tokened.refusal('10.231.0.2', auth, 'orders');
      assert.match(why ?? '', /Authorization: Bearer <TURNOUT_PUBLISH_TOKEN>/, JSON.stringify(auth));
      assert.ok(!(why ?? '').includes('pub-token'), 'the token is not echoed');
    }
    assert.equal(tokened.refusal('10.231.0.2', 'Bearer pub-token', 'orders'), undefined);
    assert.equal(tokened.refusal('10.231.0.2', 'Bearer pub-token', undefined), undefined, '/v1/publish is not limited by the queue list');
  });

  test('TURNOUT_PUBLISH_QUEUES limits /v1/publish/{queue} for every peer, loopback included, naming the queue and the list', () => {
    for (const peer of ['127.0.0.1', '10.231.0.2']) {
      assert.equal(tokened.refusal(peer, 'Bearer pub-token', 'response_7'), undefined);
      const why = tokened.refusal(peer, 'Bearer pub-token', 'payments');
      assert.equal(why, 'queue "payments" is not one TURNOUT_PUBLISH_QUEUES lets POST /v1/publish/{queue} reach (response_*,orders)');
    }
  });

  test('a peer without the token hears about the token, not about the queue list', () => {
    assert.match(tokened.refusal('10.231.0.2', undefined, 'payments') ?? '', /Bearer/);
  });
});
