import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Inbox } from './inbox.js';

describe('Inbox', () => {
  it('accepts batches in order and advances the cumulative ack', () => {
    const i = new Inbox();
    assert.equal(i.ack, 0);
    assert.deepEqual(i.accept(1, 3), { ok: true, skip: 0 });
    assert.equal(i.ack, 3);
    assert.deepEqual(i.accept(4, 1), { ok: true, skip: 0 });
    assert.equal(i.ack, 4);
    assert.deepEqual(i.accept(5, 100), { ok: true, skip: 0 });
    assert.equal(i.ack, 104);
  });

  it('skips a full replay: every message already delivered', () => {
    const i = new Inbox();
    i.accept(1, 5);
    assert.deepEqual(i.accept(1, 5), { ok: true, skip: 5 });
    assert.deepEqual(i.accept(3, 2), { ok: true, skip: 2 });
    assert.deepEqual(i.accept(5, 1), { ok: true, skip: 1 });
    assert.equal(i.ack, 5, 'an old batch never moves the ack backwards');
  });

  it('delivers only the new tail of a partially overlapping batch', () => {
    const i = new Inbox();
    i.accept(1, 3);
    assert.deepEqual(i.accept(2, 4), { ok: true, skip: 2 }, 'messages 2 and 3 are dropped, 4 and 5 delivered');
    assert.equal(i.ack, 5);
    assert.deepEqual(i.accept(1, 10), { ok: true, skip: 5 });
    assert.equal(i.ack, 10);
  });

  it('refuses a batch that would leave a gap, and changes nothing', () => {
    const i = new Inbox();
    assert.deepEqual(i.accept(2, 1), { ok: false, expected: 1 });
    assert.equal(i.ack, 0);
    i.accept(1, 3);
    for (const seq of [5, 6, 1000, Number.MAX_SAFE_INTEGER]) {
      assert.deepEqual(i.accept(seq, 1), { ok: false, expected: 4 });
      assert.equal(i.ack, 3);
    }
    assert.deepEqual(i.accept(4, 1), { ok: true, skip: 0 }, 'the expected batch is still accepted');
  });

  it('an empty batch is accepted whatever its seq, and changes nothing', () => {
    const i = new Inbox();
    i.accept(1, 2);
    for (const seq of [0, 1, 3, 99]) {
      assert.deepEqual(i.accept(seq, 0), { ok: true, skip: 0 });
      assert.equal(i.ack, 2);
    }
  });

  it('delivers each message exactly once across random retries (model check)', () => {
    // Sender has messages 1..N; it resends from random points at or before the
    // receiver's ack, and sometimes jumps ahead (which must be refused).
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const N = 500;
    const i = new Inbox();
    const delivered: number[] = [];
    while (i.ack < N) {
      const ahead = rand() < 0.2;
      const seq = ahead ? i.ack + 2 + Math.floor(rand() * 5) : 1 + Math.floor(rand() * (i.ack + 1));
      const count = Math.min(N - seq + 1, 1 + Math.floor(rand() * 8));
      if (count <= 0) continue;
      const v = i.accept(seq, count);
      if (ahead) {
        assert.equal(v.ok, false);
        continue;
      }
      assert.ok(v.ok);
      for (let k = v.skip; k < count; k++) delivered.push(seq + k);
    }
    assert.deepEqual(delivered, Array.from({ length: N }, (_, k) => k + 1));
  });
});
