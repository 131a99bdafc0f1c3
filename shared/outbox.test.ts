import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, encodeEntry } from './outbox.js';
import { encodeFragment } from './codec.js';
import { utf8Length } from './payload.js';

/** Push text messages; returns their sequence numbers. */
function pushAll(o: Outbox, texts: string[]): number[] {
  return texts.map((t) => {
    const f = encodeFragment(t);
    return o.push(f, utf8Length(t));
  });
}

const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);
const decode = (fragments: string[]) => fragments.map((f) => JSON.parse(f) as string);

describe('Outbox', () => {
  it('numbers messages 1, 2, 3, ... in push order', () => {
    const o = new Outbox();
    assert.equal(o.lastSeq, 0);
    assert.equal(o.pending, 0);
    assert.deepEqual(pushAll(o, texts(1, 5)), [1, 2, 3, 4, 5]);
    assert.equal(o.lastSeq, 5);
    assert.equal(o.pending, 5);
    assert.equal(o.acked, 0);
  });

  it('an empty outbox batches nothing, numbered from the next message', () => {
    const o = new Outbox();
    assert.deepEqual(o.batch(1000), { seq: 1, fragments: [], wireBytes: 0 });
    pushAll(o, texts(1, 2));
    o.ack(2);
    assert.deepEqual(o.batch(1000), { seq: 3, fragments: [], wireBytes: 0 });
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
      assert.equal(o.push('"e"', 1), 5);
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
        assert.deepEqual(decode(o.batch(1e6).fragments), ['m4', 'm5']);
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

  describe('batch', () => {
    it('always starts at the first unacknowledged message', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 6));
      let b = o.batch(1e6);
      assert.equal(b.seq, 1);
      assert.deepEqual(decode(b.fragments), texts(1, 6));
      // Unacked messages are re-offered: a lost response costs nothing.
      assert.deepEqual(o.batch(1e6), b);
      o.ack(4);
      b = o.batch(1e6);
      assert.equal(b.seq, 5);
      assert.deepEqual(decode(b.fragments), ['m5', 'm6']);
    });

    it('stops before the byte limit (each fragment plus a separator), and counts wireBytes', () => {
      const o = new Outbox();
      // Each fragment "m1".."m9" is 4 bytes on the wire, 5 with its comma.
      pushAll(o, texts(1, 9));
      assert.equal(o.batch(1e6).wireBytes, 45);
      assert.deepEqual(decode(o.batch(15).fragments), ['m1', 'm2', 'm3']);
      assert.deepEqual(decode(o.batch(14).fragments), ['m1', 'm2']);
      assert.equal(o.batch(14).wireBytes, 10);
      assert.equal(o.batch(15).seq, 1);
    });

    it('counts UTF-8 bytes of multi-byte fragments', () => {
      const o = new Outbox();
      const fragments = ['"😀😀"', '"é"'];
      for (const f of fragments) o.push(f, 0);
      // "😀😀" is 2 + 8 bytes; with its comma 11.
      assert.deepEqual(o.batch(11).fragments, ['"😀😀"']);
      assert.deepEqual(o.batch(16).fragments, fragments);
    });

    it('always carries at least one message, even one larger than the limit', () => {
      const o = new Outbox();
      const big = encodeFragment('x'.repeat(1000));
      o.push(big, 1000);
      pushAll(o, ['small']);
      const b = o.batch(10);
      assert.deepEqual(b.fragments, [big]);
      assert.equal(b.seq, 1);
      assert.equal(o.batch(0).fragments.length, 1);
    });

    it('honours maxCount', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 10));
      assert.deepEqual(decode(o.batch(1e6, 3).fragments), ['m1', 'm2', 'm3']);
    });

    it('does not consume: batch() twice gives the same messages', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 3));
      o.batch(1e6);
      assert.equal(o.pending, 3);
      assert.deepEqual(decode(o.batch(1e6).fragments), texts(1, 3));
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
      assert.equal(b.seq, acked + 1);
      assert.equal(JSON.parse(b.fragments[0]) as string, `m${acked + 1}`, `first unacked after ack(${acked})`);
      assert.equal(o.bufferedBytes, texts(acked + 1, N).reduce((n, t) => n + t.length, 0));
    }
    // Interleave pushes with acks past the compaction threshold.
    for (let i = 1; i <= 3000; i++) {
      assert.equal(o.push(encodeFragment(`n${i}`), 1), N + i);
      if (i % 7 === 0) o.ack(o.acked + 5);
    }
    const first = o.acked + 1;
    const expected = first <= N ? `m${first}` : `n${first - N}`;
    assert.equal(JSON.parse(o.batch(10).fragments[0]) as string, expected);
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
      assert.deepEqual(rest.map((e) => JSON.parse(e.fragment) as string), ['m3', 'm4', 'm5']);
      assert.deepEqual(rest.map((e) => e.bytes), [2, 2, 2]);
      assert.equal(o.pending, 0);
      assert.equal(o.bufferedBytes, 0);
      assert.deepEqual(o.batch(1e6).fragments, []);
      assert.deepEqual(o.takeAll(), []);
    });

    it('keeps numbering: the next push follows the last one taken', () => {
      const o = new Outbox();
      pushAll(o, texts(1, 4));
      o.takeAll();
      assert.equal(o.lastSeq, 4);
      assert.equal(o.ack(4), 'stale', 'the taken messages count as settled');
      assert.equal(o.push('"x"', 1), 5);
      assert.equal(o.batch(100).seq, 5);
    });
  });
});

describe('encodeEntry', () => {
  it('gives the fragment and both sizes, for ASCII, non-ASCII and binary', () => {
    for (const p of ['hello', 'h\u00e9llo \u{1F600}', 'quote " and \\ and \n', new Uint8Array([0, 1, 255])]) {
      const e = encodeEntry(p);
      assert.equal(e.fragment, encodeFragment(p));
      assert.equal(e.bytes, typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength);
      assert.equal(e.wireBytes, Buffer.byteLength(e.fragment));
    }
  });
});
