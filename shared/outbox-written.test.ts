/**
 * What the Outbox (shared/outbox.ts) has written, and removing messages the
 * receiver never accepted: the unwritten and unwrittenBytes tallies that
 * written() covers, acks and takeAll() against them, and remove(), which
 * drops messages and renumbers the later ones with no hole.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, decodeEntries } from './outbox.js';
import { decode, pushAll, texts } from '../test/helpers/outbox.js';

describe('Outbox: what is written, and removing messages the receiver never accepted', () => {
  it('unwritten and unwrittenBytes count what written() has not covered; written() says when nothing is left', () => {
    const o = new Outbox();
    pushAll(o, ['aa', 'bbb', 'c']);
    assert.equal(o.unwritten, 3);
    assert.equal(o.unwrittenBytes, 6);
    assert.equal(o.written(2), false, 'message 3 is still unwritten');
    assert.equal(o.unwrittenBytes, 1);
    assert.equal(o.written(2), false, 'written again: nothing new');
    assert.equal(o.written(3), true, 'the last one: nothing left to write');
    assert.equal(o.unwritten, 0);
    assert.equal(o.unwrittenBytes, 0);
    assert.equal(o.written(3), false);
    o.push('dddd');
    assert.equal(o.unwrittenBytes, 4);
    assert.equal(o.written(99), true, 'past lastSeq: up to lastSeq');
    assert.equal(o.unwritten, 0);
  });

  it('an ack past what was written counts those messages out too; takeAll() leaves nothing unwritten', () => {
    const o = new Outbox();
    pushAll(o, ['a', 'b', 'c']);
    assert.equal(o.ack(2), 'ok');
    assert.equal(o.unwritten, 1);
    assert.equal(o.unwrittenBytes, 1);
    o.takeAll();
    assert.equal(o.unwritten, 0);
    assert.equal(o.unwrittenBytes, 0);
    o.push('x');
    assert.equal(o.unwritten, 1);
    assert.equal(o.written(4), true);
  });

  it('remove() drops unwritten messages and renumbers the later ones: no hole', () => {
    const o = new Outbox();
    pushAll(o, ['a', 'BIG1', 'b', 'BIG2', 'c']);
    const seen: number[] = [];
    const removed = o.remove(1, (e, seq) => {
      seen.push(seq);
      return typeof e.wire === 'string' && e.wire.startsWith('BIG');
    });
    assert.deepEqual(seen, [1, 2, 3, 4, 5], 'each message judged once, with its number');
    assert.deepEqual(decodeEntries(removed), ['BIG1', 'BIG2']);
    assert.equal(o.lastSeq, 3);
    assert.equal(o.pending, 3);
    assert.equal(o.bufferedBytes, 3);
    assert.equal(o.unwritten, 3);
    assert.equal(o.unwrittenBytes, 3);
    const b = o.batch(1000);
    assert.equal(b.seq, 1);
    assert.deepEqual(decode(b), ['a', 'b', 'c'], 'numbered 1, 2, 3 now');
    assert.equal(o.push('d'), 4);
  });

  it('remove() of a written message the receiver refused (the head, after acks): the tallies and numbers follow', () => {
    const o = new Outbox();
    pushAll(o, ['a', 'b', 'BIG', 'c', 'd']);
    o.ack(2);
    o.written(4); // BIG and c went out in a batch the receiver refused whole
    assert.equal(o.unwritten, 1);
    const removed = o.remove(3, (_e, seq) => seq === 3);
    assert.deepEqual(decodeEntries(removed), ['BIG']);
    assert.equal(o.lastSeq, 4);
    assert.equal(o.unwritten, 1, 'd (now 4) is still unwritten; c (now 3) was written');
    assert.equal(o.unwrittenBytes, 1);
    assert.equal(o.bufferedBytes, 2);
    assert.deepEqual(decode(o.batch(1000)), ['c', 'd']);
    assert.equal(o.batch(1000).seq, 3);
    assert.equal(o.written(4), true);
    assert.equal(o.ack(4), 'ok');
    assert.equal(o.pending, 0);
    assert.equal(o.bufferedBytes, 0);
  });

  it('remove() leaves messages before `from` alone, and removing nothing changes nothing', () => {
    const o = new Outbox();
    pushAll(o, ['BIG0', 'a', 'BIG1']);
    const removed = o.remove(2, (e) => typeof e.wire === 'string' && e.wire.startsWith('BIG'));
    assert.deepEqual(decodeEntries(removed), ['BIG1']);
    assert.deepEqual(decode(o.batch(1000)), ['BIG0', 'a']);
    assert.deepEqual(o.remove(1, () => false), []);
    assert.equal(o.lastSeq, 2);
  });

  it('batch() takes at most maxCount messages', () => {
    const o = new Outbox();
    pushAll(o, texts(1, 10));
    const b = o.batch(1000, 3);
    assert.equal(b.count, 3);
    assert.deepEqual(decode(b), ['m1', 'm2', 'm3']);
  });
});
