// The SQS FIFO grouping, without SQS: one message of a group at a time, in
// order; when the head goes back, what followed it goes back too, later first.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FifoGroups, releaseOrder } from '../../../adapters/sqs/fifo-groups.ts';

describe('sqs: FIFO groups', () => {
  test('the first message of a group starts; later ones wait behind it', () => {
    const groups = new FifoGroups<string>();
    assert.equal(groups.admit('g1', 'a'), true);
    assert.equal(groups.admit('g1', 'b'), false);
    assert.equal(groups.admit('g2', 'x'), true, 'another group is independent');
    assert.equal(groups.admit('g1', 'c'), false);
    assert.deepEqual(groups.items().sort(), ['a', 'b', 'c', 'x']);
  });

  test('a decided head hands over to the next of its group, in order', () => {
    const groups = new FifoGroups<string>();
    for (const m of ['a', 'b', 'c']) groups.admit('g', m);
    assert.deepEqual(groups.finish('g', 'a', false), { next: 'b', followers: [] });
    assert.deepEqual(groups.finish('g', 'b', false), { next: 'c', followers: [] });
    assert.deepEqual(groups.finish('g', 'c', false), { followers: [] });
    assert.deepEqual(groups.items(), [], 'an empty group is forgotten');
    assert.equal(groups.admit('g', 'd'), true, 'so the next message of it starts at once');
  });

  test('a head that goes back takes every follower with it, and the group is forgotten', () => {
    const groups = new FifoGroups<string>();
    for (const m of ['a', 'b', 'c']) groups.admit('g', m);
    assert.deepEqual(groups.finish('g', 'a', true), { followers: ['b', 'c'] });
    assert.deepEqual(groups.items(), []);
    assert.equal(groups.admit('g', 'a'), true, 'a redelivered head starts the group anew');
  });

  test('only the head of a group moves it on', () => {
    const groups = new FifoGroups<string>();
    for (const m of ['a', 'b']) groups.admit('g', m);
    assert.deepEqual(groups.finish('g', 'b', false), { followers: [] }, 'not the head: nothing changes');
    assert.deepEqual(groups.finish('other', 'a', false), { followers: [] }, 'unknown group: nothing changes');
    assert.deepEqual(groups.items(), ['a', 'b']);
  });

  test('messages go back later first, so a broker that puts them back at the head keeps the order', () => {
    const original = ['a', 'b', 'c'];
    assert.deepEqual(releaseOrder(original), ['c', 'b', 'a']);
    assert.deepEqual(original, ['a', 'b', 'c'], 'the list itself is untouched');
    // Putting each back at the head of its group, in release order, restores the group's order.
    const queue: string[] = [];
    for (const m of releaseOrder(original)) queue.unshift(m);
    assert.deepEqual(queue, original);
  });
});
