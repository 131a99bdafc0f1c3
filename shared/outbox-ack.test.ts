/**
 * Outbox numbering and settling (shared/outbox.ts): messages numbered 1, 2,
 * 3, ... in push order; the cumulative ack (ok, stale, future) and the bytes
 * it frees; correctness across compaction of acked entries; and takeAll(),
 * which hands back what is unacknowledged and keeps the numbering.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, decodeEntries, encodeEntry } from './outbox.js';
import { bytes, checkBatch, decode, pushAll, texts } from '../test/helpers/outbox.js';

describe('Outbox', () => {
  it('numbers messages 1, 2, 3, ... in push order', () => {
    const o = new Outbox();
    assert.equal(o.lastSeq, 0);
    assert.equal(o.pending, 0);
    assert.deepEqual(pushAll(o, texts(1, 5)), [1, 2, 3, 4, 5]);
    assert.equal(o.lastSeq, 5);
    assert.equal(o.pending, 5);
    assert.equal(o.acked, 0);
    assert.equal(o.pushEntry(encodeEntry(bytes(1, 2))), 6, 'pushEntry numbers the same way');
  });

  describe('cumulative ack', () => {
    it('ok: drops everything up to n and frees its bytes', () => {
      const o = new Outbox();
      pushAll(o, ['a', 'bb', 'ccc', 'dddd']);
      assert.equal(o.bufferedBytes, 10);
      assert.equal(o.ack(2), 'ok');
      assert.equal(o.acked, 2);
      assert.equal(o.pending, 2);
      assert.equal(o.bufferedBytes, 7);
      assert.equal(o.lastSeq, 4);
      assert.equal(o.ack(4), 'ok');
      assert.equal(o.pending, 0);
      assert.equal(o.bufferedBytes, 0);
      assert.equal(o.lastSeq, 4, 'numbering is not reset when everything is acked');
      assert.equal(o.push('e'), 5);
      assert.equal(o.bufferedBytes, 1);
    });

    it('counts buffered bytes as UTF-8 for text and raw bytes for binary', () => {
      const o = new Outbox();
      pushAll(o, ['é', '😀', bytes(0, 1, 2, 3, 4)]);
      assert.equal(o.bufferedBytes, 2 + 4 + 5);
      o.ack(2);
      assert.equal(o.bufferedBytes, 5);
    });

    it('stale: an ack at or below the current one changes nothing', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 5));
      assert.equal(o.ack(0), 'stale', 'ack 0 before anything is acked');
      o.ack(3);
      for (const n of [3, 2, 0]) {
        assert.equal(o.ack(n), 'stale');
        assert.equal(o.acked, 3);
        assert.equal(o.pending, 2);
        assert.deepEqual(decode(o.batch(1e6)), ['m4', 'm5']);
      }
    });

    it('future: an ack past lastSeq is refused and changes nothing', () => {
      const o = new Outbox();
      assert.equal(o.ack(1), 'future', 'nothing was ever sent');
      pushAll(o, texts(1, 3));
      o.ack(1);
      for (const n of [4, 100, Number.MAX_SAFE_INTEGER]) {
        assert.equal(o.ack(n), 'future');
        assert.equal(o.acked, 1);
        assert.equal(o.pending, 2);
        assert.equal(o.bufferedBytes, 4);
      }
      assert.equal(o.ack(3), 'ok', 'acking exactly lastSeq is fine');
    });
  });

  it('stays correct across compaction of more than 1024 acked entries', () => {
    const o = new Outbox();
    const N = 5000;
    pushAll(o, texts(1, N));
    let acked = 0;
    // Ack in uneven steps so that compaction happens at many different offsets.
    for (const step of [1, 1023, 1, 1, 700, 300, 1200, 2, 1500]) {
      acked += step;
      assert.equal(o.ack(acked), 'ok');
      assert.equal(o.acked, acked);
      assert.equal(o.pending, N - acked);
      assert.equal(o.lastSeq, N);
      const b = o.batch(30);
      checkBatch(b);
      assert.equal(b.seq, acked + 1);
      assert.equal(decode(b)[0], `m${acked + 1}`, `first unacked after ack(${acked})`);
      assert.equal(o.pendingFrom(acked + 1), N - acked);
      assert.equal(o.bufferedBytes, texts(acked + 1, N).reduce((n, t) => n + t.length, 0));
    }
    // Interleave pushes with acks past the compaction threshold.
    for (let i = 1; i <= 3000; i++) {
      assert.equal(o.push(`n${i}`), N + i);
      if (i % 7 === 0) o.ack(o.acked + 5);
    }
    const first = o.acked + 1;
    const expected = first <= N ? `m${first}` : `n${first - N}`;
    assert.equal(decode(o.batch(10))[0], expected);
    assert.equal(o.ack(o.lastSeq), 'ok');
    assert.equal(o.pending, 0);
    assert.equal(o.bufferedBytes, 0);
    assert.equal(o.ack(o.lastSeq + 1), 'future');
  });

  describe('takeAll', () => {
    it('returns every unacknowledged entry in order and empties the outbox', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 5));
      o.ack(2);
      const rest = o.takeAll();
      assert.deepEqual(rest.map((e) => e.wire), ['m3', 'm4', 'm5']);
      assert.deepEqual(rest.map((e) => e.bytes), [2, 2, 2]);
      assert.deepEqual(decodeEntries(rest), ['m3', 'm4', 'm5']);
      assert.equal(o.pending, 0);
      assert.equal(o.bufferedBytes, 0);
      assert.equal(o.batch(1e6).count, 0);
      assert.equal(o.batch(1e6).m, '[]');
      assert.deepEqual(o.takeAll(), []);
    });

    it('keeps numbering: the next push follows the last one taken', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 4));
      o.takeAll();
      assert.equal(o.lastSeq, 4);
      assert.equal(o.ack(4), 'stale', 'the taken messages count as settled');
      assert.equal(o.push('x'), 5);
      assert.equal(o.batch(100).seq, 5);
      assert.deepEqual(decode(o.batch(100)), ['x']);
    });

    it('binary entries come back as the same bytes', () => {
      const o = new Outbox();
      pushAll(o, ['t', bytes(9, 8, 7), bytes()]);
      const back = decodeEntries(o.takeAll());
      assert.equal(back[0], 't');
      assert.ok(back[1] instanceof Uint8Array && back[2] instanceof Uint8Array, 'binary comes back binary');
      assert.deepEqual(Array.from(back[1]), [9, 8, 7]);
      assert.equal(back[2].byteLength, 0);
    });
  });
});
