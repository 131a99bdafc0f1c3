import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, decodeEntries, encodeEntry, type OutboxBatch } from './outbox.js';
import { toWire, type Payload, type WirePayload } from './payload.js';

/** Push text messages; returns their sequence numbers. */
function pushAll(o: Outbox, messages: Payload[]): number[] {
  return messages.map((m) => o.push(m));
}

const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

/** The messages of a batch, parsed from its `m` JSON (wire form: text, or {b: base64}). */
const decode = (b: OutboxBatch) => JSON.parse(b.m) as WirePayload[];

/** Every invariant a batch must satisfy, whatever it holds. */
function checkBatch(b: OutboxBatch): void {
  const m = JSON.parse(b.m) as unknown;
  assert.ok(Array.isArray(m), `m is a JSON array: ${b.m.slice(0, 80)}`);
  assert.equal(m.length, b.count, 'count is the number of messages in m');
  assert.equal(b.wireBytes, Buffer.byteLength(b.m, 'utf8'), 'wireBytes is the UTF-8 size of m, brackets included');
}

const bytes = (...b: number[]) => new Uint8Array(b);

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

  it('an empty outbox batches nothing, numbered from the next message', () => {
    const o = new Outbox();
    assert.deepEqual(o.batch(1000), { seq: 1, count: 0, m: '[]', wireBytes: 2 });
    pushAll(o, texts(1, 2));
    o.ack(2);
    assert.deepEqual(o.batch(1000), { seq: 3, count: 0, m: '[]', wireBytes: 2 });
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

    describe('JSON escapes larger than the size estimate', () => {
      // The estimate counts each character once; '"' and '\' are escaped to
      // 2 bytes, control characters to 6 (\u0001), lone surrogates to 6.
      const quotes = (n: number) => '"'.repeat(n);
      const controls = (n: number) => '\u0001'.repeat(n);

      it('a batch of escape-heavy messages still fits maxWireBytes, as a prefix, in order', () => {
        for (const [make, perMessage] of [
          [quotes, 3 + 2 * 97 + 2],
          [controls, 3 + 6 * 97 + 2],
          [(n: number) => '\ud800'.repeat(n), 3 + 6 * 97 + 2],
          [(n: number) => '\\'.repeat(n), 3 + 2 * 97 + 2],
        ] as const) {
          const o = new Outbox();
          const messages = Array.from({ length: 20 }, (_, i) => `${i}`.padStart(3, '0') + make(97));
          pushAll(o, messages);
          for (const limit of [600, 1000, 2048, 5000, 9999]) {
            const b = o.batch(limit);
            checkBatch(b);
            assert.ok(b.count >= 1, 'at least one message');
            assert.ok(b.wireBytes <= limit, `${b.wireBytes} bytes of m for a limit of ${limit}`);
            assert.deepEqual(decode(b), messages.slice(0, b.count), 'the first messages, in order, intact');
            assert.equal(b.m, JSON.stringify(messages.slice(0, b.count)));
            // Each message is really perMessage bytes of JSON (plus a separator), not the 100 + 3 estimated.
            assert.equal(b.wireBytes, 1 + b.count * (perMessage + 1));
          }
          // The estimate alone would take 9 messages (1 + 9 * 103 <= 1000): the real JSON is far larger.
          assert.ok(Buffer.byteLength(JSON.stringify(messages.slice(0, 9))) > 1000, 'the estimate alone would overshoot');
        }
      });

      it('an escape-heavy message larger than the limit is still sent alone', () => {
        const o = new Outbox();
        const big = controls(1000); // estimated at 1003 bytes, really 6002 + brackets
        pushAll(o, [big, 'a', 'b']);
        for (const limit of [0, 10, 1100, 2000, 6003]) {
          const b = o.batch(limit);
          checkBatch(b);
          assert.equal(b.count, 1, `limit ${limit}`);
          assert.equal(b.seq, 1);
          assert.deepEqual(decode(b), [big]);
          assert.equal(b.wireBytes, 6004);
        }
        assert.equal(o.batch(6004).count, 1, 'exactly its size: it fits, the next does not');
        assert.equal(o.batch(6008).count, 2);
        assert.deepEqual(decode(o.batch(6008)), [big, 'a']);
      });

      it('mixed: plain messages after an escape-heavy first one', () => {
        const o = new Outbox();
        const heavy = quotes(500); // estimated 503, really 1002 + 1
        pushAll(o, [heavy, ...texts(1, 200)]);
        for (const limit of [600, 1100, 1500]) {
          const b = o.batch(limit);
          checkBatch(b);
          assert.ok(b.count >= 1, `limit ${limit}: at least one message`);
          assert.ok(b.count === 1 || b.wireBytes <= limit, `${b.wireBytes} <= ${limit}`);
          assert.deepEqual(decode(b), [heavy, ...texts(1, b.count - 1)]);
        }
      });

      it('also with from and maxCount', () => {
        const o = new Outbox();
        const messages = Array.from({ length: 30 }, (_, i) => `${i}:` + controls(50));
        pushAll(o, messages);
        const b = o.batch(1000, 10, 11);
        checkBatch(b);
        assert.equal(b.seq, 11);
        assert.ok(b.count >= 1 && b.count <= 10, `count ${b.count}`);
        assert.ok(b.wireBytes <= 1000, `${b.wireBytes} bytes of m for a limit of 1000`);
        assert.deepEqual(decode(b), messages.slice(10, 10 + b.count));
      });
    });

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

describe('encodeEntry', () => {
  it('keeps text as it is and binary as {b: base64}, with the payload size', () => {
    for (const p of ['hello', 'h\u00e9llo \u{1F600}', 'quote " and \\ and \n', '\ud800 lone', '', new Uint8Array([0, 1, 255]), new Uint8Array()]) {
      const e = encodeEntry(p);
      assert.deepEqual(e.wire, toWire(p));
      if (typeof p === 'string') assert.equal(e.wire, p, 'text is kept as is, not JSON-encoded');
      else assert.equal(typeof e.wire, 'object');
      assert.equal(e.bytes, typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength);
    }
    assert.deepEqual(encodeEntry(new Uint8Array([0, 1, 2, 255])).wire, { b: 'AAEC/w==' });
  });

  it('a binary entry is independent of later changes to the array it came from', () => {
    const a = new Uint8Array([1, 2, 3]);
    const e = encodeEntry(a);
    a[0] = 99;
    assert.deepEqual(Array.from(decodeEntries([e])[0] as Uint8Array), [1, 2, 3]);
  });
});

describe('decodeEntries', () => {
  it('round-trips text and binary payloads, escapes, control characters, non-BMP and lone surrogates included', () => {
    const payloads: Payload[] = [
      '',
      'plain',
      'quote " backslash \\ newline \n tab \t',
      '\u0000\u0001\u001f\u007f control',
      'é 中文 😀 \u{10ffff}',
      '\ud800',
      'a\udfffb',
      '\u2028\u2029',
      bytes(),
      bytes(0),
      bytes(0, 1, 2, 255),
      new Uint8Array(Array.from({ length: 300 }, (_, i) => i & 0xff)),
    ];
    const back = decodeEntries(payloads.map(encodeEntry));
    assert.equal(back.length, payloads.length);
    for (const [i, want] of payloads.entries()) {
      const got = back[i];
      if (typeof want === 'string') assert.equal(got, want, `message ${i}`);
      else {
        assert.ok(got instanceof Uint8Array, `message ${i} should be binary`);
        assert.deepEqual(Array.from(got), Array.from(want));
      }
    }
    assert.deepEqual(decodeEntries([]), []);
  });

  it('the same payloads survive a batch: JSON of m, parsed back', () => {
    const payloads: Payload[] = ['\ud800', '"\\', '\u0001', '😀', bytes(255, 0)];
    const o = new Outbox();
    pushAll(o, payloads);
    const b = o.batch(1e6);
    checkBatch(b);
    const wires = JSON.parse(b.m) as WirePayload[];
    assert.deepEqual(wires.slice(0, 4), payloads.slice(0, 4));
    assert.deepEqual(wires[4], { b: '/wA=' });
  });
});
