/**
 * Outbox.batch() (shared/outbox.ts) with messages whose JSON escapes ('"',
 * '\\', control characters, lone surrogates) make them larger than the size
 * estimate: a batch still fits maxWireBytes as a prefix in order, a large one
 * still goes alone, plain messages after a heavy one, and with from and
 * maxCount.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from './outbox.js';
import { checkBatch, decode, pushAll, texts } from '../test/helpers/outbox.js';

describe('Outbox', () => {
  describe('batch', () => {
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
  });
});
