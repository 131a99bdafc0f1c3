/**
 * The store conformance suite's `two nodes racing on one session` area: node
 * A's and node B's handles called at once on one session, for many rounds
 * (seeded, so a failing round replays). Claims of a dead owner's session (one
 * winner), retried and overlapping inbound batches (each message kept once),
 * interleaved enqueues (no gap, no duplicate), concurrent acks (the highest
 * holds), two creates for one retried open, delete racing writes, and a
 * takeover racing the old owner's markDelivered.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, utf8Length, type OutboxEntry, type Payload } from '../../shared/index.js';
import type { SessionStore } from '../../server/store.js';
import { ALIVE_MS, isUnknown, NODE_A, NODE_B, NODE_C, norm, rejectsUnknown, seeded, wiresOf, type Suite } from './world.js';

export function racing({ check, world }: Suite): void {
  describe('two nodes racing on one session', () => {
    check("both claim a dead owner's session at once: exactly one wins (50 rounds)", async (t) => {
      const w = await world(t);
      await w.a.heartbeat(NODE_A, ALIVE_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      let winsA = 0;
      for (let round = 0; round < 50; round++) {
        const sid = await w.open({ owner: NODE_C }); // C never beats: dead
        // Alternate who starts first, so neither handle always has the head start.
        const [ra, rb] = round % 2 === 0
          ? await Promise.all([w.a.claim(sid, NODE_A), w.b.claim(sid, NODE_B)])
          : await Promise.all([w.b.claim(sid, NODE_B), w.a.claim(sid, NODE_A)]).then(([y, x]) => [x, y] as const);
        const winners = [ra, rb].filter((r) => r.owned);
        assert.equal(winners.length, 1, `round ${round}: exactly one winner, got ${JSON.stringify([ra, rb])}`);
        const winner = ra.owned ? NODE_A : NODE_B;
        const [won, lost] = ra.owned ? [ra, rb] : [rb, ra];
        assert.deepEqual(won, { owned: true, fence: 2, took: true }, `round ${round}`);
        assert.deepEqual(lost, { owned: false, owner: winner }, `round ${round}`);
        const r = await w.a.get(sid);
        assert.equal(r?.owner, winner);
        assert.equal(r.fence, 2);
        if (winner === NODE_A) winsA++;
      }
      t.diagnostic(`node A won ${winsA} of 50 rounds`);
    });

    check('both accept the same retried batch at once: each message is kept once (50 rounds)', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      let next = 1;
      for (let round = 0; round < 50; round++) {
        const len = 1 + (round % 5);
        const batch = Array.from({ length: len }, (_, i) => `in-${next + i}`);
        const [x, y] = await Promise.all([w.a.acceptInbound(sid, next, batch), w.b.acceptInbound(sid, next, batch)]);
        assert.ok(x.ok && y.ok, `round ${round}: both accepted`);
        assert.equal(len - x.skip + (len - y.skip), len, `round ${round}: accepted once in total (${JSON.stringify([x, y])})`);
        next += len;
        assert.equal(Math.max(x.ack, y.ack), next - 1);
      }
      const kept = await w.a.readInbound(sid, 1);
      assert.equal(kept.seq, 1);
      assert.deepEqual(kept.messages.map(norm), Array.from({ length: next - 1 }, (_, i) => `in-${i + 1}`));
    });

    check('both send overlapping retries at once (200 seeded rounds): the kept log is exactly 1..ack, each once', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const rand = seeded(0x5eed);
      const msg = (seq: number): Payload => (seq % 4 === 0 ? new Uint8Array([seq & 0xff, seq >> 8]) : `m${seq}`);
      let ack = 0;
      let accepted = 0;
      for (let round = 0; round < 200; round++) {
        // Each node resends from somewhere at or before the next expected number, or (rarely) leaves a hole.
        const batchOf = (): { seq: number; messages: Payload[] } => {
          const seq = Math.max(1, ack + 1 - rand(4) + (rand(10) === 0 ? 2 : 0));
          return { seq, messages: Array.from({ length: rand(5) }, (_, i) => msg(seq + i)) };
        };
        const p = batchOf();
        const q = batchOf();
        const [x, y] = await Promise.all([w.a.acceptInbound(sid, p.seq, p.messages), w.b.acceptInbound(sid, q.seq, q.messages)]);
        for (const [v, batch] of [[x, p], [y, q]] as const) if (v.ok) accepted += batch.messages.length - v.skip;
        ack = Math.max(x.ack, y.ack);
        assert.equal(accepted, ack, `round ${round}: messages newly accepted in total = the cumulative ack`);
      }
      assert.ok(ack > 50, `the stream moved on (ack ${ack})`);
      const kept = await w.a.readInbound(sid, 1);
      assert.equal(kept.seq, 1);
      assert.deepEqual(kept.messages.map(norm), Array.from({ length: ack }, (_, i) => norm(msg(i + 1))));
      assert.equal((await w.a.readOutbound(sid, 10)).inboundAck, ack);
    });

    check('interleaved enqueues from two nodes number the messages with no gap and no duplicate', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const rand = seeded(42);
      const produce = async (store: SessionStore, tag: string): Promise<{ last: number; wires: OutboxEntry[] }[]> => {
        const calls: { last: number; wires: OutboxEntry[] }[] = [];
        for (let c = 0; c < 60; c++) {
          const entries = Array.from({ length: 1 + rand(4) }, (_, i) => encodeEntry(`${tag}-${c}-${i}`));
          calls.push({ last: (await store.enqueue(sid, entries)).lastSeq, wires: entries });
        }
        return calls;
      };
      const [fromA, fromB] = await Promise.all([produce(w.a, 'A'), produce(w.b, 'B')]);
      const calls = [...fromA, ...fromB];
      const total = calls.reduce((n, c) => n + c.wires.length, 0);
      // Each call's messages are numbered last-k+1..last; together they must tile 1..total.
      const slots: (OutboxEntry | undefined)[] = new Array<OutboxEntry | undefined>(total + 1).fill(undefined);
      for (const c of calls) {
        c.wires.forEach((e, i) => {
          const seq = c.last - c.wires.length + 1 + i;
          assert.ok(seq >= 1 && seq <= total, `seq ${seq} in 1..${total}`);
          assert.equal(slots[seq], undefined, `seq ${seq} given twice`);
          slots[seq] = e;
        });
      }
      const batch = await w.a.readOutbound(sid, 10_000_000);
      assert.deepEqual({ seq: batch.seq, count: batch.count }, { seq: 1, count: total });
      assert.deepEqual(wiresOf(batch.m), slots.slice(1).map((e) => e?.wire), 'each message at the number its enqueue was given');
      assert.equal(await w.b.pendingOutbound(sid), total);
    });

    check('concurrent acks from two nodes: the acknowledged state is the highest (50 rounds)', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const rand = seeded(7);
      let acked = 0;
      let last = 0;
      for (let round = 0; round < 50; round++) {
        last = (await w.a.enqueue(sid, Array.from({ length: 10 }, (_, i) => encodeEntry(`o${last + i + 1}`)))).lastSeq;
        const x = Math.max(0, acked - 3 + rand(last - acked + 4));
        const y = Math.max(0, acked - 3 + rand(last - acked + 4));
        const [rx, ry] = await Promise.all([w.a.ackOutbound(sid, x), w.b.ackOutbound(sid, y)]);
        const top = Math.max(acked, x, y);
        for (const [v, r] of [[x, rx], [y, ry]] as const) {
          if (v <= acked) assert.equal(r.result, 'stale', `round ${round}: ack ${v} at or below ${acked}`);
          else assert.ok(r.result === 'ok' || r.result === 'stale', `round ${round}: ack ${v}: ${r.result}`);
        }
        if (top > acked) assert.ok((x === top && rx.result === 'ok') || (y === top && ry.result === 'ok'), `round ${round}: the highest ack ${top} was applied`);
        acked = top;
        assert.equal(await w.a.pendingOutbound(sid), last - acked, `round ${round}`);
        const b = await w.b.readOutbound(sid, 100);
        assert.equal(b.seq, acked + 1, `round ${round}: reading starts after the highest ack`);
        const check = await w.a.ackOutbound(sid, acked);
        assert.equal(check.bufferedBytes, Array.from({ length: last - acked }, (_, i) => utf8Length(`o${acked + i + 1}`)).reduce((s, n) => s + n, 0));
      }
    });

    check('two nodes create sessions for one retried open at once: findByAttempt finds one, and dropping the other does not lose it', async (t) => {
      const w = await world(t);
      for (const drop of ['delete', 'forgetAttempt'] as const) {
        const attempt = `attempt-twice-${drop}`;
        const s1 = `sid-twice-${drop}-1`;
        const s2 = `sid-twice-${drop}-2`;
        await Promise.all([
          w.a.create({ sid: s1, token: 'tok-1', attempt }, NODE_A),
          w.b.create({ sid: s2, token: 'tok-2', attempt }, NODE_B),
        ]);
        const found = (await w.a.findByAttempt(attempt))?.sid;
        assert.ok(found === s1 || found === s2, `${drop}: findByAttempt finds one of the two, got ${String(found)}`);
        const other = found === s1 ? s2 : s1;
        if (drop === 'delete') await w.b.delete(other);
        else await w.b.forgetAttempt(other);
        assert.equal((await w.a.findByAttempt(attempt))?.sid, found, `${drop} of the other session (${other}) keeps ${found} found`);
      }
    });

    check('delete racing enqueue and acceptInbound: nothing of the session is left behind (50 rounds)', async (t) => {
      const w = await world(t);
      for (let round = 0; round < 50; round++) {
        const sid = await w.open({ attempt: `attempt-race-${round}` });
        await w.a.enqueue(sid, [encodeEntry('before')]);
        const late = encodeEntry(`late-${round}`);
        // The delete goes first in even rounds, last in odd ones.
        const others = (): [Promise<unknown>, Promise<unknown>, Promise<unknown>] => [
          w.b.enqueue(sid, [late]),
          w.b.acceptInbound(sid, 1, ['in']),
          w.b.touch(sid, Date.now() + ALIVE_MS),
        ];
        let deleting: Promise<OutboxEntry[]>;
        let racing: [Promise<unknown>, Promise<unknown>, Promise<unknown>];
        if (round % 2 === 0) {
          deleting = w.a.delete(sid);
          racing = others();
        } else {
          racing = others();
          deleting = w.a.delete(sid);
        }
        const [del, enq, acc, touch] = await Promise.allSettled([deleting, ...racing]);
        assert.equal(del.status, 'fulfilled', `round ${round}: delete succeeds`);
        for (const [what, r] of [['enqueue', enq], ['acceptInbound', acc], ['touch', touch]] as const) {
          if (r.status === 'rejected') assert.ok(isUnknown(r.reason), `round ${round}: ${what} rejected with ${String(r.reason)}`);
        }
        if (del.status === 'fulfilled') {
          const want = enq.status === 'fulfilled' ? [encodeEntry('before'), late] : [encodeEntry('before')];
          assert.deepEqual(del.value, want, `round ${round}: an enqueue that succeeded came before the delete, and its message is handed back`);
        }
        assert.equal(await w.b.get(sid), undefined, `round ${round}`);
        assert.equal(await w.a.findByAttempt(`attempt-race-${round}`), undefined);
        assert.equal(await w.a.seenUntil(sid), undefined, `round ${round}: no liveness left`);
        await rejectsUnknown(w.a.pendingOutbound(sid), `round ${round}: pendingOutbound`);
        await rejectsUnknown(w.a.readInbound(sid, 1), `round ${round}: readInbound`);
        await rejectsUnknown(w.b.enqueue(sid, [late]), `round ${round}: enqueue after`);
        assert.equal(await w.a.count(), 0, `round ${round}: no session left`);
      }
    });

    check("a takeover racing the old owner's markDelivered: the old owner's call lands before the takeover or not at all (50 rounds)", async (t) => {
      const w = await world(t);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      for (let round = 0; round < 50; round++) {
        const sid = await w.open({ owner: NODE_C }); // C never beats: B may take it
        await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
        const [marked, claimed] = round % 2 === 0
          ? await Promise.all([w.a.markDelivered(sid, 2, 1), w.b.claim(sid, NODE_B)])
          : await Promise.all([w.b.claim(sid, NODE_B), w.a.markDelivered(sid, 2, 1)]).then(([c, m]) => [m, c] as const);
        assert.deepEqual(claimed, { owned: true, fence: 2, took: true }, `round ${round}`);
        const delivered = await w.b.delivered(sid);
        assert.equal(delivered, marked ? 2 : 0, `round ${round}: markDelivered said ${marked}`);
        const kept = (await w.b.readInbound(sid, 1)).messages.map(norm);
        assert.deepEqual(kept, marked ? ['c'] : ['a', 'b', 'c'], `round ${round}`);
        assert.equal(await w.a.markDelivered(sid, 3, 1), false, `round ${round}: after the takeover fence 1 is refused`);
      }
    });
  });
}
