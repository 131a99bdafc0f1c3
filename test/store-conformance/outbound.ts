/**
 * The store conformance suite's `outbound stream` area: server-to-client
 * messages. enqueue's numbering and buffered bytes, ackOutbound's ok, stale
 * and future, where readOutbound starts, its byte limit and the inbound ack
 * it carries, the stream's last seq it tells (where it does),
 * pendingOutbound, and that the optional enqueueNow, readOutboundNow,
 * readOutboundWiresNow, enqueueAndRead and ackAndRead give what their plain
 * forms give.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, HoldlineError, utf8Length } from '../../shared/index.js';
import type { SessionStore as Store } from '../../server/store.js';
import { isUnknown, rejectsUnknown, wiresOf, type Suite } from './world.js';

export function outbound({ name, check, world }: Suite): void {
  describe('outbound stream', () => {
    check('enqueue numbers messages 1..n across calls; bufferedBytes counts payload bytes', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      // 'é' is 2 bytes of UTF-8, the binary 5 bytes.
      assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('ab'), encodeEntry('é')]), { lastSeq: 2, bufferedBytes: 4 });
      assert.deepEqual(await w.b.enqueue(sid, [encodeEntry(new Uint8Array(5))]), { lastSeq: 3, bufferedBytes: 9 });
      assert.deepEqual(await w.a.enqueue(sid, []), { lastSeq: 3, bufferedBytes: 9 }, 'an empty append changes nothing');
      assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('x'), encodeEntry('y'), encodeEntry('z')]), { lastSeq: 6, bufferedBytes: 12 });
      assert.equal(await w.a.pendingOutbound(sid), 6);
    });

    check('enqueueNow (where a store has it) gives what enqueue gives, and throws what it rejects with', async (t) => {
      const w = await world(t);
      const enqueueNow = w.a.enqueueNow?.bind(w.a);
      if (enqueueNow === undefined) {
        t.diagnostic(`${name} has no enqueueNow: the node awaits enqueue`);
        return;
      }
      const now = await w.open();
      const later = await w.open();
      const batches = [[encodeEntry('ab'), encodeEntry('é')], [], [encodeEntry(new Uint8Array(5))], [encodeEntry('x'), encodeEntry('y')]];
      for (const entries of batches) {
        assert.deepEqual(enqueueNow(now, entries), await w.b.enqueue(later, entries), JSON.stringify(entries.map((e) => e.wire)));
      }
      // What it appended is the stream as enqueue would have left it, for any node.
      assert.deepEqual(await w.b.readOutbound(now, 100_000), await w.a.readOutbound(later, 100_000));
      assert.deepEqual(await w.b.ackOutbound(now, 2), await w.a.ackOutbound(later, 2));
      assert.deepEqual(enqueueNow(now, [encodeEntry('z')]), { lastSeq: 6, bufferedBytes: 8 });
      const gone = await w.open();
      await w.a.delete(gone);
      let thrown: unknown;
      try {
        enqueueNow(gone, [encodeEntry('late')]);
      } catch (e) {
        thrown = e;
      }
      await rejectsUnknown(w.b.enqueue(gone, [encodeEntry('late')]), 'enqueue of a deleted session');
      assert.ok(isUnknown(thrown), `enqueueNow of a deleted session: want session_unknown, got ${String(thrown)}`);
    });

    // The optional reads at once, each against its awaited form.
    const reads = [
      ['readOutboundWiresNow', 'readOutboundWires', 'a WebSocket awaits its reads', (s: Store) => s.readOutboundWiresNow?.bind(s), (s: Store) => s.readOutboundWires?.bind(s)],
      ['readOutboundNow', 'readOutbound', 'a poll for an immediate reply is answered at the end of the turn', (s: Store) => s.readOutboundNow?.bind(s), (s: Store) => s.readOutbound.bind(s)],
    ] as const;
    for (const [nowName, awaitedName, without, nowOf, awaitedOf] of reads) {
      check(`${nowName} (where a store has it) gives what ${awaitedName} gives, and throws what it rejects with`, async (t) => {
        const w = await world(t);
        const now = nowOf(w.a);
        const awaited = awaitedOf(w.b);
        if (now === undefined || awaited === undefined) {
          t.diagnostic(`${name} has no ${nowName}: ${without}`);
          return;
        }
        const sid = await w.open();
        await w.a.enqueue(sid, ['m1', new Uint8Array([1, 250]), 'é', 'm4'].map((p) => encodeEntry(p)));
        await w.a.ackOutbound(sid, 1);
        await w.a.acceptInbound(sid, 1, ['in']);
        for (const [maxWireBytes, from, maxCount] of [[100_000, 0, 100], [100_000, 3, 100], [1, 2, 100], [100_000, 2, 1], [100_000, 9, 100]] as const) {
          assert.deepEqual(now(sid, maxWireBytes, from, maxCount), await awaited(sid, maxWireBytes, from, maxCount), `read ${maxWireBytes}/${from}/${maxCount}`);
        }
        await w.a.delete(sid);
        let thrown: unknown;
        try {
          now(sid, 100_000, 1, 100);
        } catch (e) {
          thrown = e;
        }
        await rejectsUnknown(awaited(sid, 100_000, 1, 100), `${awaitedName} of a deleted session`);
        assert.ok(isUnknown(thrown), `${nowName} of a deleted session: want session_unknown, got ${String(thrown)}`);
      });
    }

    check('ackOutbound: ok moves the ack, stale and future change nothing', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      await w.a.enqueue(sid, [encodeEntry('aaaa'), encodeEntry('bb'), encodeEntry('c')]);
      assert.deepEqual(await w.b.ackOutbound(sid, 2), { result: 'ok', bufferedBytes: 1, lastSeq: 3 });
      assert.deepEqual(await w.a.ackOutbound(sid, 1), { result: 'stale', bufferedBytes: 1, lastSeq: 3 }, 'below the ack');
      assert.deepEqual(await w.a.ackOutbound(sid, 2), { result: 'stale', bufferedBytes: 1, lastSeq: 3 }, 'equal to the ack');
      assert.deepEqual(await w.a.ackOutbound(sid, 4), { result: 'future', bufferedBytes: 1, lastSeq: 3 }, 'past lastSeq');
      assert.equal(await w.a.pendingOutbound(sid), 1, 'a future ack drops nothing');
      assert.deepEqual(await w.a.ackOutbound(sid, 3), { result: 'ok', bufferedBytes: 0, lastSeq: 3 });
      assert.equal(await w.a.pendingOutbound(sid), 0);
      // Numbering goes on after everything was acknowledged.
      assert.deepEqual(await w.a.enqueue(sid, [encodeEntry('d')]), { lastSeq: 4, bufferedBytes: 1 });
    });

    check('readOutbound starts at the first unacknowledged message, or at a later `from`', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const bin = new Uint8Array([1, 2, 3, 250]);
      const entries = ['m1', 'm2', 'with "quotes" and \\ and é', bin, 'm5'].map((p) => encodeEntry(p));
      const wires = entries.map((e) => e.wire);
      await w.a.enqueue(sid, entries);
      await w.a.ackOutbound(sid, 2);

      const all = await w.b.readOutbound(sid, 100_000);
      assert.equal(all.seq, 3);
      assert.equal(all.count, 3);
      assert.deepEqual(wiresOf(all.m), wires.slice(2));
      assert.equal(all.wireBytes, utf8Length(all.m));

      const from4 = await w.a.readOutbound(sid, 100_000, 4);
      assert.deepEqual({ seq: from4.seq, count: from4.count }, { seq: 4, count: 2 });
      assert.deepEqual(wiresOf(from4.m), wires.slice(3));
      assert.equal(from4.wireBytes, utf8Length(from4.m));

      const from1 = await w.a.readOutbound(sid, 100_000, 1);
      assert.deepEqual({ seq: from1.seq, count: from1.count }, { seq: 3, count: 3 }, 'a `from` already acknowledged starts at the first unacknowledged');

      const past = await w.a.readOutbound(sid, 100_000, 6);
      assert.equal(past.count, 0);
      assert.equal(past.m, '[]');
      assert.equal(past.wireBytes, 2);
    });

    check("readOutbound's lastSeq (where a store gives it) is the stream's last message when it read, whatever cut the batch short", async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const first = await w.a.readOutbound(sid, 100_000);
      if (first.lastSeq === undefined) {
        t.diagnostic(`${name} gives no lastSeq: a WebSocket reads again until a read comes back empty`);
        return;
      }
      assert.equal(first.lastSeq, 0, 'nothing queued yet');
      await w.a.enqueue(sid, ['a', 'b', 'c', 'd'].map((p) => encodeEntry(p)));
      const two = await w.b.readOutbound(sid, 100_000, undefined, 2);
      assert.deepEqual({ seq: two.seq, count: two.count, lastSeq: two.lastSeq }, { seq: 1, count: 2, lastSeq: 4 }, 'cut short by maxCount');
      const small = await w.b.readOutbound(sid, 1, 3);
      assert.deepEqual({ seq: small.seq, count: small.count, lastSeq: small.lastSeq }, { seq: 3, count: 1, lastSeq: 4 }, 'cut short by maxWireBytes');
      await w.a.ackOutbound(sid, 4);
      const none = await w.b.readOutbound(sid, 100_000);
      assert.deepEqual({ count: none.count, lastSeq: none.lastSeq }, { count: 0, lastSeq: 4 }, 'everything acknowledged');
      const wires = w.a.readOutboundWires?.bind(w.a);
      if (wires !== undefined) {
        await w.a.enqueue(sid, [encodeEntry('e'), encodeEntry('f')]);
        const one = await wires(sid, 100_000, 5, 1);
        assert.deepEqual({ seq: one.seq, count: one.count, lastSeq: one.lastSeq }, { seq: 5, count: 1, lastSeq: 6 }, 'readOutboundWires too');
      }
    });

    check('enqueueAndRead (where a store has it) gives what enqueue and then readOutbound give', async (t) => {
      const w = await world(t);
      const [both, one] = [await w.open(), await w.open()];
      const first = ['m1', 'with "quotes" and \\ and é', new Uint8Array([1, 2, 250])].map((p) => encodeEntry(p));
      const second = ['m4', new Uint8Array(70), 'm6', 'm7'].map((p) => encodeEntry(p));
      for (const sid of [both, one]) {
        await w.a.enqueue(sid, first);
        await w.a.ackOutbound(sid, 1);
      }
      const enqueueAndRead = w.a.enqueueAndRead?.bind(w.a);
      if (enqueueAndRead === undefined) {
        t.diagnostic(`${name} has no enqueueAndRead: the transports call enqueue and readOutbound`);
        return;
      }
      // Reads of every shape: all of it, from a later message, within a byte limit, at most two messages.
      const asks = [
        { maxWireBytes: 100_000, from: undefined, maxCount: Infinity },
        { maxWireBytes: 100_000, from: 4, maxCount: Infinity },
        { maxWireBytes: 30, from: undefined, maxCount: Infinity },
        { maxWireBytes: 100_000, from: undefined, maxCount: 2 },
      ];
      for (const ask of asks) {
        const got = await enqueueAndRead(both, second, ask);
        const enqueued = await w.b.enqueue(one, second);
        const read = await w.b.readOutbound(one, ask.maxWireBytes, ask.from, ask.maxCount);
        assert.deepEqual(got, { ...enqueued, batch: read }, JSON.stringify(ask));
      }
      // One message onto a stream with nothing pending from the read's start (a broadcast to a held poll), and onto one with something pending.
      const [fresh, twin] = [await w.open(), await w.open()];
      const singles = ['é "q" \\', new Uint8Array([0, 255]), 'x'.repeat(5000), 'after'].map((p) => encodeEntry(p));
      for (const [i, single] of singles.entries()) {
        const ask = { maxWireBytes: 30, from: i === 3 ? 4 : undefined, maxCount: 10 };
        const got = await enqueueAndRead(fresh, [single], ask);
        const enqueued = await w.b.enqueue(twin, [single]);
        const read = await w.b.readOutbound(twin, ask.maxWireBytes, ask.from, ask.maxCount);
        assert.deepEqual(got, { ...enqueued, batch: read }, `single ${i}`);
        // Acknowledged but for the third: the fourth finds it pending before its own (read from 4 on).
        if (i !== 2) for (const sid of [fresh, twin]) await w.a.ackOutbound(sid, i + 1);
      }
      const [ask] = asks;
      assert.ok(ask);
      await assert.rejects(enqueueAndRead('sid-never-made', second, ask), (e: unknown) => e instanceof HoldlineError && e.code === 'session_unknown');
    });

    check('ackAndRead (where a store has it) gives what ackOutbound and then readOutbound give; no batch for a refused ack or nothing pending', async (t) => {
      const w = await world(t);
      const [both, one] = [await w.open(), await w.open()];
      const ackAndRead = w.a.ackAndRead?.bind(w.a);
      if (ackAndRead === undefined) {
        t.diagnostic(`${name} has no ackAndRead: a poll's ack and its read are separate calls`);
        return;
      }
      const entries = ['m1', 'with "quotes" and \\ and é', new Uint8Array([1, 2, 250]), 'm4', new Uint8Array(70), 'm6', 'm7'].map((p) => encodeEntry(p));
      for (const sid of [both, one]) await w.a.enqueue(sid, entries);
      // Acks that move (ok), repeat (stale) and overshoot (future), with reads of every shape.
      const steps: Array<[number, { maxWireBytes: number; from: number | undefined; maxCount: number }]> = [
        [1, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
        [1, { maxWireBytes: 100_000, from: 5, maxCount: Infinity }],
        [3, { maxWireBytes: 30, from: undefined, maxCount: Infinity }],
        [4, { maxWireBytes: 100_000, from: undefined, maxCount: 2 }],
        [5, { maxWireBytes: 100_000, from: 8, maxCount: Infinity }],
        [99, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
        [7, { maxWireBytes: 100_000, from: undefined, maxCount: Infinity }],
      ];
      for (const [ack, ask] of steps) {
        const got = await ackAndRead(both, ack, ask);
        const acked = await w.b.ackOutbound(one, ack);
        const read = acked.result === 'future' ? undefined : await w.b.readOutbound(one, ask.maxWireBytes, ask.from, ask.maxCount);
        const batch = read === undefined || read.count === 0 ? undefined : read;
        assert.deepEqual({ ...got, batch: got.batch }, { ...acked, batch }, `ack ${ack}, ${JSON.stringify(ask)}`);
      }
      await assert.rejects(
        ackAndRead('sid-never-made', 1, { maxWireBytes: 1000, from: undefined, maxCount: Infinity }),
        (e: unknown) => e instanceof HoldlineError && e.code === 'session_unknown',
      );
    });

    check('readOutbound keeps m within maxWireBytes, and always gives at least one message', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      // Each "aaaa" is 6 bytes in the array plus a separator: k of them take 7k + 1 bytes.
      await w.a.enqueue(sid, Array.from({ length: 5 }, () => encodeEntry('aaaa')));
      for (const [limit, want] of [[15, 2], [14, 1], [22, 3], [36, 5], [1000, 5]] as const) {
        const b = await w.a.readOutbound(sid, limit);
        assert.equal(b.count, want, `maxWireBytes ${limit}`);
        assert.equal(b.seq, 1);
        assert.ok(b.wireBytes <= limit, `wireBytes ${b.wireBytes} <= ${limit}`);
        assert.equal(b.wireBytes, utf8Length(b.m));
      }
      const one = await w.a.readOutbound(sid, 1);
      assert.equal(one.count, 1, 'one message even when it alone is over the limit');
      assert.deepEqual(wiresOf(one.m), ['aaaa']);
      assert.equal(one.wireBytes, 8);
      const big = await w.open();
      await w.a.enqueue(big, [encodeEntry('x'.repeat(5000)), encodeEntry('y')]);
      const b = await w.a.readOutbound(big, 100);
      assert.equal(b.count, 1);
      assert.equal(b.wireBytes, 5004);
    });

    check('readOutbound carries the inbound cumulative ack to piggyback', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      assert.equal((await w.a.readOutbound(sid, 1000)).inboundAck, 0);
      await w.b.acceptInbound(sid, 1, ['a', 'b', 'c']);
      const empty = await w.a.readOutbound(sid, 1000);
      assert.equal(empty.inboundAck, 3, 'with nothing outbound');
      assert.equal(empty.count, 0);
      await w.a.enqueue(sid, [encodeEntry('out')]);
      await w.b.acceptInbound(sid, 4, ['d']);
      const full = await w.a.readOutbound(sid, 1000);
      assert.equal(full.inboundAck, 4);
      assert.equal(full.count, 1);
      await w.a.markDelivered(sid, 4, 1);
      assert.equal((await w.a.readOutbound(sid, 1000)).inboundAck, 4, 'delivery does not move the cumulative ack');
    });

    check('pendingOutbound counts unacknowledged messages, from `from` when given', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      await w.a.enqueue(sid, ['1', '2', '3', '4', '5'].map((p) => encodeEntry(p)));
      await w.a.ackOutbound(sid, 2);
      assert.equal(await w.b.pendingOutbound(sid), 3);
      assert.equal(await w.b.pendingOutbound(sid, 4), 2);
      assert.equal(await w.b.pendingOutbound(sid, 5), 1);
      assert.equal(await w.b.pendingOutbound(sid, 1), 3, 'a `from` already acknowledged counts from the first unacknowledged');
      assert.equal(await w.b.pendingOutbound(sid, 6), 0);
      assert.equal(await w.b.pendingOutbound(sid, 100), 0);
    });
  });
}
