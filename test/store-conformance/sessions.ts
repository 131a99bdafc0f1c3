/**
 * The store conformance suite's `sessions` area: a session's record from
 * create to delete. get and findByAttempt on either node's handle,
 * forgetAttempt, a new session's empty streams, count, what delete hands back
 * and what it removes, tombstones and their expiry, and session_unknown for a
 * session the store never held (release and forgetAttempt being no-ops there).
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, encodeRequest, type CloseReason } from '../../shared/index.js';
import { ALIVE_MS, NODE_A, NODE_B, PAST_SHORT_MS, REASON, rejectsUnknown, SHORT_MS, sleep, type Suite } from './world.js';

export function sessions({ check, world }: Suite): void {
  describe('sessions', () => {
    check('create then get: the record, owned by its creator with fence 1', async (t) => {
      const w = await world(t);
      await w.a.create({ sid: 'sid-created-1', token: 'tok-1', attempt: 'att-00001' }, NODE_B);
      const r = await w.a.get('sid-created-1');
      assert.ok(r, 'get finds the created session');
      assert.deepEqual(
        { sid: r.sid, token: r.token, attempt: r.attempt, owner: r.owner, fence: r.fence },
        { sid: 'sid-created-1', token: 'tok-1', attempt: 'att-00001', owner: NODE_B, fence: 1 },
      );
      // The other node's handle sees the same record.
      const rb = await w.b.get('sid-created-1');
      assert.equal(rb?.owner, NODE_B);
      assert.equal(rb.fence, 1);
      assert.equal(await w.a.get('sid-never-made'), undefined);
      // A session's meta (what authenticate said, as JSON) goes with its record, to every node; none stays none.
      await w.a.create({ sid: 'sid-created-2', token: 'tok-2', attempt: '', meta: '{"user":"ann","roles":["a"]}' }, NODE_A);
      assert.equal((await w.b.get('sid-created-2'))?.meta, '{"user":"ann","roles":["a"]}');
      assert.equal(r.meta, undefined);
    });

    check("a new session's streams are empty", async (t) => {
      const w = await world(t);
      const sid = await w.open();
      assert.equal(await w.a.pendingOutbound(sid), 0);
      const { lastSeq, ...read } = await w.a.readOutbound(sid, 1000);
      assert.deepEqual(read, { seq: 1, count: 0, m: '[]', wireBytes: 2, inboundAck: 0 });
      assert.ok(lastSeq === undefined || lastSeq === 0, `lastSeq, where a store gives it, is 0: got ${String(lastSeq)}`);
      assert.deepEqual(await w.a.ackOutbound(sid, 0), { result: 'stale', bufferedBytes: 0, lastSeq: 0 });
      assert.equal((await w.a.readInbound(sid, 1)).messages.length, 0);
      assert.equal(await w.a.delivered(sid), 0);
      assert.equal(typeof (await w.a.seenUntil(sid)), 'number', 'seenUntil of a held session is a number');
      assert.equal(await w.a.tombstone(sid), undefined, 'a live session has no tombstone');
    });

    check('findByAttempt finds a session by its open attempt, only that one', async (t) => {
      const w = await world(t);
      const s1 = await w.open({ attempt: 'attempt-one', token: 'tok-one' });
      const s2 = await w.open({ attempt: 'attempt-two', owner: NODE_B });
      const s3 = await w.open({ attempt: '' });
      const r1 = await w.b.findByAttempt('attempt-one');
      assert.equal(r1?.sid, s1);
      assert.equal(r1.token, 'tok-one');
      assert.equal(r1.owner, NODE_A);
      assert.equal(r1.fence, 1);
      assert.equal((await w.a.findByAttempt('attempt-two'))?.sid, s2);
      assert.equal(await w.a.findByAttempt('attempt-none'), undefined);
      assert.equal(await w.a.findByAttempt(''), undefined, `session ${s3} made with no attempt is not found by ''`);
    });

    check("forgetAttempt: the attempt is '' and findByAttempt no longer finds it; the rest stays", async (t) => {
      const w = await world(t);
      const s1 = await w.open({ attempt: 'attempt-one', token: 'tok-one' });
      const s2 = await w.open({ attempt: 'attempt-two' });
      await w.b.forgetAttempt(s1);
      assert.equal(await w.a.findByAttempt('attempt-one'), undefined);
      assert.equal(await w.a.findByAttempt(''), undefined);
      const r = await w.a.get(s1);
      assert.ok(r);
      assert.deepEqual({ sid: r.sid, token: r.token, attempt: r.attempt, owner: r.owner, fence: r.fence }, { sid: s1, token: 'tok-one', attempt: '', owner: NODE_A, fence: 1 });
      assert.equal((await w.a.findByAttempt('attempt-two'))?.sid, s2, "another session's attempt is kept");
      await w.a.forgetAttempt(s1); // twice: still fine
      assert.equal((await w.a.get(s1))?.attempt, '');
    });

    check("the record stays as it was through a session's first messages each way", async (t) => {
      const w = await world(t);
      const sid = await w.open({ attempt: 'attempt-001', token: 'tok-1' });
      await w.a.enqueue(sid, [encodeEntry('a'), encodeEntry('bc')]);
      await w.b.acceptInbound(sid, 1, ['x']);
      const r = await w.a.get(sid);
      assert.equal(r?.token, 'tok-1');
      assert.equal(r.attempt, 'attempt-001');
      assert.equal(r.owner, NODE_A);
      assert.equal(r.fence, 1);
      assert.equal((await w.a.findByAttempt('attempt-001'))?.sid, sid);
    });

    check('count counts the sessions held, through creates and deletes', async (t) => {
      const w = await world(t);
      assert.equal(await w.a.count(), 0);
      const s1 = await w.open();
      const s2 = await w.open();
      await w.open();
      assert.equal(await w.a.count(), 3);
      assert.equal(await w.b.count(), 3);
      await w.a.delete(s1);
      await w.b.delete(s2, { reason: REASON, ttlMs: ALIVE_MS });
      assert.equal(await w.a.count(), 1, 'a tombstone is not a session');
    });

    check('delete hands back the unacknowledged outbound messages in order and removes everything', async (t) => {
      const w = await world(t);
      const sid = await w.open({ attempt: 'attempt-del' });
      const other = await w.open();
      // A request frame (calls with replies) is kept and handed back like a message.
      const entries = [encodeEntry('one'), encodeEntry(new Uint8Array([0, 1, 254, 255])), encodeEntry('thrée'), encodeRequest(7, 'ask "x"'), encodeEntry('four')];
      await w.a.enqueue(sid, entries.slice(0, 2));
      await w.a.enqueue(sid, entries.slice(2));
      await w.a.ackOutbound(sid, 1);
      await w.a.acceptInbound(sid, 1, ['in-1', 'in-2']);
      await w.a.touch(sid, Date.now() + ALIVE_MS);
      await w.a.enqueue(other, [encodeEntry('other')]);

      assert.deepEqual(await w.b.delete(sid), entries.slice(1), 'the unacknowledged entries, in order, as enqueued');

      assert.equal(await w.a.get(sid), undefined);
      assert.equal(await w.b.get(sid), undefined);
      assert.equal(await w.a.findByAttempt('attempt-del'), undefined);
      assert.equal(await w.a.seenUntil(sid), undefined);
      assert.equal(await w.a.tombstone(sid), undefined, 'no tombstone unless asked');
      assert.equal(await w.a.count(), 1);
      for (const h of [w.a, w.b]) {
        await rejectsUnknown(h.enqueue(sid, [encodeEntry('late')]), 'enqueue');
        await rejectsUnknown(h.ackOutbound(sid, 1), 'ackOutbound');
        await rejectsUnknown(h.readOutbound(sid, 1000), 'readOutbound');
        await rejectsUnknown(h.pendingOutbound(sid), 'pendingOutbound');
        await rejectsUnknown(h.acceptInbound(sid, 3, ['late']), 'acceptInbound');
        await rejectsUnknown(h.readInbound(sid, 1), 'readInbound');
        await rejectsUnknown(h.markDelivered(sid, 1, 1), 'markDelivered');
        await rejectsUnknown(h.delivered(sid), 'delivered');
        await rejectsUnknown(h.claim(sid, NODE_A), 'claim');
        await rejectsUnknown(h.touch(sid, Date.now()), 'touch');
      }
      // The other session is untouched.
      assert.equal(await w.a.pendingOutbound(other), 1);
    });

    check('delete of a session that never sent returns [] ; delete of an unknown session returns [] and leaves no tombstone', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      assert.deepEqual(await w.a.delete(sid), []);
      assert.deepEqual(await w.a.delete(sid), [], 'deleting twice');
      assert.deepEqual(await w.a.delete('sid-never-made', { reason: REASON, ttlMs: ALIVE_MS }), []);
      assert.equal(await w.a.tombstone('sid-never-made'), undefined, 'no token to keep, so no tombstone');
    });

    check('delete with a tombstone: tombstone() tells why it closed, with the token', async (t) => {
      const w = await world(t);
      const sid = await w.open({ token: 'tok-stone' });
      const live = await w.open();
      await w.a.enqueue(sid, [encodeEntry('unread')]);
      const reason: CloseReason = { code: 'idle_timeout', message: 'nobody polled' };
      assert.deepEqual(await w.a.delete(sid, { reason, ttlMs: ALIVE_MS }), [encodeEntry('unread')]);
      assert.deepEqual(await w.b.tombstone(sid), { reason, token: 'tok-stone' });
      assert.equal(await w.a.get(sid), undefined, 'the tombstone is not the session');
      assert.equal(await w.a.tombstone(live), undefined);
    });

    check('a tombstone expires after its ttlMs', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      await w.a.delete(sid, { reason: REASON, ttlMs: SHORT_MS });
      await sleep(PAST_SHORT_MS);
      assert.equal(await w.a.tombstone(sid), undefined);
      assert.equal(await w.b.tombstone(sid), undefined);
    });

    check('operations on a session the store never held reject with session_unknown (reads return undefined)', async (t) => {
      const w = await world(t);
      await w.open();
      const sid = 'sid-never-made';
      assert.equal(await w.a.get(sid), undefined);
      assert.equal(await w.a.seenUntil(sid), undefined);
      assert.equal(await w.a.tombstone(sid), undefined);
      await rejectsUnknown(w.a.enqueue(sid, [encodeEntry('x')]), 'enqueue');
      await rejectsUnknown(w.a.ackOutbound(sid, 0), 'ackOutbound');
      await rejectsUnknown(w.a.readOutbound(sid, 1000), 'readOutbound');
      await rejectsUnknown(w.a.pendingOutbound(sid, 1), 'pendingOutbound');
      await rejectsUnknown(w.a.acceptInbound(sid, 1, ['x']), 'acceptInbound');
      await rejectsUnknown(w.a.readInbound(sid, 1), 'readInbound');
      await rejectsUnknown(w.a.markDelivered(sid, 1, 1), 'markDelivered');
      await rejectsUnknown(w.a.delivered(sid), 'delivered');
      await rejectsUnknown(w.a.claim(sid, NODE_A), 'claim');
      await rejectsUnknown(w.a.touch(sid, Date.now()), 'touch');
      // Clean-up that may race a delete: no-ops here.
      await w.a.forgetAttempt(sid);
      await w.a.release(sid, NODE_A, 1);
      assert.equal(await w.a.count(), 1, 'nothing was made by any of these');
    });
  });
}
