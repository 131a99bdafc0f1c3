/**
 * The store conformance suite's `inbound stream` area: client-to-server
 * messages. acceptInbound's de-duplication and refusal of a hole, messages
 * (and request/reply frames) kept byte-exact until delivered, where
 * readInbound starts, and markDelivered: what it drops, delivered() never
 * moving back, and a fence that is not the current one refused. The
 * optional acceptInboundNow and markDeliveredNow give what their awaited
 * forms give.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { isUnknown, norm, rejectsUnknown, verdict, type Suite } from './world.js';

export function inbound({ name, check, world }: Suite): void {
  describe('inbound stream', () => {
    check('acceptInbound de-duplicates: skip counts what it had, a hole is refused with `expected`', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      assert.deepEqual(verdict(await w.a.acceptInbound(sid, 1, ['a', 'b', 'c'])), { ok: true, skip: 0, ack: 3 });
      assert.deepEqual(verdict(await w.b.acceptInbound(sid, 2, ['b', 'c', 'd'])), { ok: true, skip: 2, ack: 4 }, 'an overlapping retry');
      assert.deepEqual(verdict(await w.a.acceptInbound(sid, 1, ['a', 'b'])), { ok: true, skip: 2, ack: 4 }, 'a full replay');
      assert.deepEqual(verdict(await w.a.acceptInbound(sid, 5, [])), { ok: true, skip: 0, ack: 4 }, 'an empty batch');
      assert.deepEqual(verdict(await w.a.acceptInbound(sid, 7, ['g'])), { ok: false, expected: 5, ack: 4 }, 'a hole');
      assert.deepEqual(verdict(await w.a.acceptInbound(sid, 5, ['e'])), { ok: true, skip: 0, ack: 5 });
      const kept = await w.a.readInbound(sid, 1);
      assert.equal(kept.seq, 1);
      assert.deepEqual(kept.messages.map(norm), ['a', 'b', 'c', 'd', 'e'], 'each accepted once, nothing from the refused batch');
    });

    check('accepted messages are kept byte-exact (text and binary) until delivered', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const bin = new Uint8Array([0, 255, 1, 128, 0x22, 0x5c]);
      const text = 'quotes " backslash \\ newline \n emoji 😀 nul \u0000 é';
      await w.b.acceptInbound(sid, 1, [text, bin, '', new Uint8Array(0)]);
      const kept = await w.a.readInbound(sid, 1);
      assert.equal(kept.seq, 1);
      assert.equal(kept.messages.length, 4);
      assert.deepEqual(kept.messages.map(norm), [text, { bin: '00ff0180225c' }, '', { bin: '' }]);
      // Reading does not consume: the owner can read again after a crash.
      assert.deepEqual((await w.b.readInbound(sid, 1)).messages.map(norm), kept.messages.map(norm));
      // Request and reply frames ({r: text}) are kept as frames, never turned into messages.
      const frame = { r: '{"v":1,"q":1,"d":"é \\" 😀"}' };
      await w.b.acceptInbound(sid, 5, ['after', frame, 't']);
      const more = await w.a.readInbound(sid, 5);
      assert.deepEqual(more.messages, ['after', frame, 't']);
    });

    check('readInbound(from) starts at `from`, or at the first message not delivered', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      await w.a.acceptInbound(sid, 1, ['a', 'b', 'c', 'd']);
      const from3 = await w.b.readInbound(sid, 3);
      assert.equal(from3.seq, 3);
      assert.deepEqual(from3.messages.map(norm), ['c', 'd']);
      assert.equal((await w.b.readInbound(sid, 5)).messages.length, 0, 'past the last accepted');
      assert.equal(await w.a.markDelivered(sid, 2, 1), true);
      const from1 = await w.b.readInbound(sid, 1);
      assert.equal(from1.seq, 3, 'the delivered ones are gone');
      assert.deepEqual(from1.messages.map(norm), ['c', 'd']);
    });

    check('markDelivered drops messages up to seq and moves delivered(); a replay does not bring them back', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      assert.equal(await w.a.delivered(sid), 0);
      await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
      assert.equal(await w.a.markDelivered(sid, 2, 1), true);
      assert.equal(await w.b.delivered(sid), 2);
      assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['c']);
      await w.a.markDelivered(sid, 1, 1);
      assert.equal(await w.a.delivered(sid), 2, 'delivered() is the highest, never moved back');
      assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['c']);
      assert.equal(await w.a.markDelivered(sid, 3, 1), true);
      assert.equal(await w.a.delivered(sid), 3);
      assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0);
      assert.deepEqual(verdict(await w.b.acceptInbound(sid, 1, ['a', 'b', 'c'])), { ok: true, skip: 3, ack: 3 });
      assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0, 'a replay of delivered messages keeps nothing');
    });

    check('acceptInboundNow (where a store has it) gives what acceptInbound gives, and throws what it rejects with', async (t) => {
      const w = await world(t);
      const acceptNow = w.a.acceptInboundNow?.bind(w.a);
      if (acceptNow === undefined) {
        t.diagnostic(`${name} has no acceptInboundNow: the node awaits acceptInbound`);
        return;
      }
      const now = await w.open();
      const later = await w.open();
      const batches: Array<[number, string[]]> = [[1, ['a', 'b', 'c']], [2, ['b', 'c', 'd']], [1, ['a']], [5, []], [7, ['g']], [5, ['e']]];
      for (const [seq, m] of batches) {
        assert.deepEqual(acceptNow(now, seq, m), await w.b.acceptInbound(later, seq, m), `batch ${seq} ${JSON.stringify(m)}`);
      }
      // What it kept is the stream as acceptInbound would have left it, for any node.
      assert.deepEqual((await w.b.readInbound(now, 1)).messages.map(norm), (await w.a.readInbound(later, 1)).messages.map(norm));
      const gone = await w.open();
      await w.a.delete(gone);
      let thrown: unknown;
      try {
        acceptNow(gone, 1, ['late']);
      } catch (e) {
        thrown = e;
      }
      await rejectsUnknown(w.b.acceptInbound(gone, 1, ['late']), 'acceptInbound of a deleted session');
      assert.ok(isUnknown(thrown), `acceptInboundNow of a deleted session: want session_unknown, got ${String(thrown)}`);
    });

    check('markDeliveredNow (where a store has it) gives what markDelivered gives, and throws what it rejects with', async (t) => {
      const w = await world(t);
      const now = w.a.markDeliveredNow?.bind(w.a);
      if (now === undefined) {
        t.diagnostic(`${name} has no markDeliveredNow: the node marks deliveries on its timer`);
        return;
      }
      const sid = await w.open();
      await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
      assert.equal(now(sid, 2, 0), false, 'a stale fence is refused');
      assert.equal(await w.b.delivered(sid), 0);
      assert.equal(now(sid, 2, 1), true);
      assert.equal(await w.b.delivered(sid), 2);
      assert.deepEqual((await w.b.readInbound(sid, 1)).messages.map(norm), ['c']);
      assert.equal(now(sid, 1, 1), true, 'below delivered(): accepted, nothing moves back');
      assert.equal(await w.b.delivered(sid), 2);
      await w.a.delete(sid);
      let thrown: unknown;
      try {
        now(sid, 3, 1);
      } catch (e) {
        thrown = e;
      }
      const rejected = await w.a.markDelivered(sid, 3, 1).then(() => undefined, (e: unknown) => e);
      assert.ok(rejected !== undefined, 'markDelivered of a deleted session rejects');
      assert.equal(String(thrown), String(rejected), 'markDeliveredNow throws what markDelivered rejects with');
    });

    check('markDelivered with a fence that is not the current one is refused and drops nothing', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      await w.a.acceptInbound(sid, 1, ['a', 'b']);
      assert.equal(await w.a.markDelivered(sid, 2, 0), false);
      assert.equal(await w.a.markDelivered(sid, 2, 2), false, 'a fence from the future');
      assert.equal(await w.a.delivered(sid), 0);
      assert.deepEqual((await w.a.readInbound(sid, 1)).messages.map(norm), ['a', 'b']);
    });
  });
}
