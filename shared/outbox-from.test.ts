/**
 * Outbox batches from a given message on (shared/outbox.ts): batch()'s
 * `from` (where it starts, the limits from there, clamping to the first
 * unacknowledged, past the end, across compaction) and pendingFrom(), the
 * count a batch from there would hold.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from './outbox.js';
import { checkBatch, decode, pushAll, texts } from '../test/helpers/outbox.js';

describe('Outbox', () => {
  describe('batch', () => {
    describe('from', () => {
      it('starts the batch at message `from`', () => {
        const o = new Outbox();
        pushAll(o, texts(1, 10));
        const b = o.batch(1e6, Infinity, 4);
        checkBatch(b);
        assert.equal(b.seq, 4);
        assert.equal(b.count, 7);
        assert.deepEqual(decode(b), texts(4, 10));
        // The messages before `from` are still unacknowledged and still come without it.
        assert.equal(o.pending, 10);
        assert.equal(o.acked, 0);
        assert.deepEqual(decode(o.batch(1e6)), texts(1, 10));
        assert.equal(o.batch(1e6, Infinity, 10).seq, 10);
        assert.deepEqual(decode(o.batch(1e6, Infinity, 10)), ['m10']);
      });

      it('applies the byte limit and maxCount from `from` on', () => {
        const o = new Outbox();
        pushAll(o, texts(1, 9));
        const b = o.batch(16, Infinity, 3);
        assert.equal(b.seq, 3);
        assert.deepEqual(decode(b), ['m3', 'm4', 'm5']);
        assert.deepEqual(decode(o.batch(1e6, 2, 7)), ['m7', 'm8']);
        // At least one message from `from`, whatever the limit.
        assert.deepEqual(decode(o.batch(0, Infinity, 8)), ['m8']);
      });

      it('clamps to the first unacknowledged message when from <= acked + 1', () => {
        const o = new Outbox();
        pushAll(o, texts(1, 8));
        o.ack(5);
        for (const from of [0, 1, 3, 5, 6]) {
          const b = o.batch(1e6, Infinity, from);
          assert.equal(b.seq, 6, `from ${from}`);
          assert.deepEqual(decode(b), ['m6', 'm7', 'm8']);
        }
        assert.deepEqual(o.batch(1e6, Infinity, 0), o.batch(1e6), 'the default');
      });

      it('past the end: no messages, numbered from lastSeq + 1', () => {
        const o = new Outbox();
        pushAll(o, texts(1, 4));
        for (const from of [5, 6, 100]) {
          assert.deepEqual(o.batch(1e6, Infinity, from), { seq: 5, count: 0, m: '[]', wireBytes: 2 }, `from ${from}`);
        }
        o.ack(2);
        assert.deepEqual(o.batch(1e6, Infinity, 9), { seq: 5, count: 0, m: '[]', wireBytes: 2 });
        o.ack(4);
        assert.deepEqual(o.batch(1e6, Infinity, 5), { seq: 5, count: 0, m: '[]', wireBytes: 2 });
        // A message pushed later is the one `from` asked for.
        o.push('m5');
        assert.deepEqual(decode(o.batch(1e6, Infinity, 5)), ['m5']);
      });

      it('works across compaction', () => {
        const o = new Outbox();
        pushAll(o, texts(1, 3000));
        o.ack(2000); // compacts
        const b = o.batch(1e6, 3, 2500);
        assert.equal(b.seq, 2500);
        assert.deepEqual(decode(b), ['m2500', 'm2501', 'm2502']);
      });
    });
  });

  describe('pendingFrom', () => {
    it('counts the unacknowledged messages numbered `from` or later', () => {
      const o = new Outbox();
      assert.equal(o.pendingFrom(1), 0);
      pushAll(o, texts(1, 10));
      assert.equal(o.pendingFrom(1), 10);
      assert.equal(o.pendingFrom(0), 10, 'from 0 counts from the first unacknowledged');
      assert.equal(o.pendingFrom(4), 7);
      assert.equal(o.pendingFrom(10), 1);
      assert.equal(o.pendingFrom(11), 0, 'lastSeq + 1: nothing yet');
      assert.equal(o.pendingFrom(1000), 0);
      o.ack(6);
      assert.equal(o.pendingFrom(1), 4, 'acknowledged messages do not count');
      assert.equal(o.pendingFrom(7), 4);
      assert.equal(o.pendingFrom(9), 2);
      assert.equal(o.pendingFrom(o.lastSeq + 1), 0);
      // Agrees with batch(): the number of messages a batch from there would hold with no limit.
      for (const from of [0, 1, 6, 7, 8, 10, 11, 12]) {
        assert.equal(o.pendingFrom(from), o.batch(1e9, Infinity, from).count, `from ${from}`);
      }
      o.ack(10);
      assert.equal(o.pendingFrom(1), 0);
      assert.equal(o.pendingFrom(11), 0);
      o.push('m11');
      assert.equal(o.pendingFrom(11), 1);
      assert.equal(o.pendingFrom(1), 1);
    });
  });
});
