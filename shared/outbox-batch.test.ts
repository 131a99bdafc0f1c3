/**
 * Outbox.batch() (shared/outbox.ts), its plain limits: an empty outbox,
 * where a batch starts, that m is exactly the JSON of the wire payloads, the
 * byte limit (UTF-8 text, {"b": base64} binary, brackets and commas counted),
 * at least one message whatever the limit, maxCount, wires() agreeing with
 * batch(), and that batching consumes nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from './outbox.js';
import { toWire } from './payload.js';
import { bytes, checkBatch, decode, pushAll, texts } from '../test/helpers/outbox.js';

describe('Outbox', () => {
  it('an empty outbox batches nothing, numbered from the next message', () => {
    const o = new Outbox();
    assert.deepEqual(o.batch(1000), { seq: 1, count: 0, m: '[]', wireBytes: 2 });
    pushAll(o, texts(1, 2));
    o.ack(2);
    assert.deepEqual(o.batch(1000), { seq: 3, count: 0, m: '[]', wireBytes: 2 });
  });

  describe('batch', () => {
    it('always starts at the first unacknowledged message', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 6));
      let b = o.batch(1e6);
      checkBatch(b);
      assert.equal(b.seq, 1);
      assert.equal(b.count, 6);
      assert.deepEqual(decode(b), texts(1, 6));
      // Unacked messages are re-offered: a lost response costs nothing.
      assert.deepEqual(o.batch(1e6), b);
      o.ack(4);
      b = o.batch(1e6);
      assert.equal(b.seq, 5);
      assert.equal(b.count, 2);
      assert.deepEqual(decode(b), ['m5', 'm6']);
    });

    it('m is exactly the JSON of the wire payloads, text and binary', () => {
      const o = new Outbox();
      pushAll(o, ['a', bytes(0, 1, 2, 255), 'q"\\']);
      const b = o.batch(1e6);
      checkBatch(b);
      assert.equal(b.m, '["a",{"b":"AAEC/w=="},"q\\"\\\\"]');
    });

    it('limits m, brackets and commas included, and counts wireBytes', () => {
      const o = new Outbox();
      // "m1".."m9" are 4 bytes each: k of them make an m of 2 + 4k + (k - 1) = 5k + 1 bytes.
      pushAll(o, texts(1, 9));
      assert.equal(o.batch(1e6).wireBytes, 46);
      for (let k = 1; k <= 9; k++) {
        const exact = o.batch(5 * k + 1);
        checkBatch(exact);
        assert.equal(exact.count, k, `an m of exactly ${5 * k + 1} bytes fits`);
        assert.equal(exact.wireBytes, 5 * k + 1);
        assert.deepEqual(decode(exact), texts(1, k));
        if (k > 1) assert.equal(o.batch(5 * k).count, k - 1, `one byte less leaves message ${k} out`);
      }
      assert.equal(o.batch(16).seq, 1);
      assert.deepEqual(decode(o.batch(15)), ['m1', 'm2']);
      assert.equal(o.batch(15).wireBytes, 11);
    });

    it('counts UTF-8 bytes of multi-byte text', () => {
      const o = new Outbox();
      pushAll(o, ['😀😀', 'é']);
      // ["😀😀"] is 1 + 10 + 1 = 12 bytes; ["😀😀","é"] is 12 + 1 + 4 = 17.
      const one = o.batch(12);
      checkBatch(one);
      assert.deepEqual(decode(one), ['😀😀']);
      assert.equal(one.wireBytes, 12);
      assert.deepEqual(decode(o.batch(16)), ['😀😀']);
      const both = o.batch(17);
      checkBatch(both);
      assert.deepEqual(decode(both), ['😀😀', 'é']);
      assert.equal(both.wireBytes, 17);
    });

    it('counts binary messages by their {"b": base64} size', () => {
      const o = new Outbox();
      // Each {"b":"AAEC"} is 12 bytes: k of them make an m of 2 + 12k + (k - 1) = 13k + 1.
      pushAll(o, [bytes(0, 1, 2), bytes(0, 1, 2), bytes(0, 1, 2)]);
      assert.equal(o.batch(1e6).wireBytes, 40);
      assert.equal(o.batch(27).count, 2);
      assert.equal(o.batch(26).count, 1);
      assert.deepEqual(decode(o.batch(27)), [{ b: 'AAEC' }, { b: 'AAEC' }]);
    });

    it('always carries at least one message, even one larger than the limit', () => {
      const o = new Outbox();
      const big = 'x'.repeat(1000);
      pushAll(o, [big, 'small']);
      const b = o.batch(10);
      checkBatch(b);
      assert.deepEqual(decode(b), [big]);
      assert.equal(b.seq, 1);
      assert.equal(b.count, 1);
      assert.equal(b.wireBytes, 1004);
      assert.equal(o.batch(0).count, 1);
      assert.deepEqual(decode(o.batch(0)), [big]);
    });

    it('honours maxCount', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 10));
      const b = o.batch(1e6, 3);
      checkBatch(b);
      assert.deepEqual(decode(b), ['m1', 'm2', 'm3']);
      assert.equal(o.batch(1e6, 1).count, 1);
      // Whichever limit comes first: 16 bytes is three messages, maxCount 5 is more.
      assert.equal(o.batch(16, 5).count, 3);
      assert.equal(o.batch(1e6, 0).count, 0);
    });

    it('wires(): the messages batch() would carry, as wire forms (no JSON), from the same start, within the same limits', () => {
      const o = new Outbox();
      const bin = new Uint8Array([1, 2, 255]);
      pushAll(o, ['m1', bin, 'm3', 'm4', 'm5']);
      o.ack(1);
      for (const [max, count, from] of [[1e6, Infinity, 0], [1e6, 2, 0], [16, Infinity, 0], [1e6, Infinity, 4], [1, Infinity, 0]] as const) {
        const b = o.batch(max, count, from);
        const w = o.wires(max, count, from);
        assert.deepEqual([w.seq, w.count], [b.seq, b.count], `limits ${max}/${count}/${from}`);
        assert.deepEqual(w.wires, JSON.parse(b.m), `limits ${max}/${count}/${from}`);
        assert.equal(w.wireBytes, b.wireBytes, 'nothing escaped: the least size is the size');
      }
      assert.deepEqual(o.wires(1e6).wires, [toWire(bin), 'm3', 'm4', 'm5']);
      assert.equal(o.pending, 4, 'wires() does not consume');
    });

    it('does not consume: batch() twice gives the same messages', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 3));
      o.batch(1e6);
      assert.equal(o.pending, 3);
      assert.deepEqual(decode(o.batch(1e6)), texts(1, 3));
    });
  });
});
