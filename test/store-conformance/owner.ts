/**
 * The store conformance suite's `owner` and `liveness` areas: who holds a
 * session, and whether it is still alive. Node heartbeats and claims (the
 * owner keeps its session; a lapsed, never-beating or forgotten node's
 * session goes to the next claim with a higher fence, and the old owner is
 * fenced out; release hands it over at once), then a session's own liveness:
 * touch only moves seenUntil forward.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { ALIVE_MS, NODE_A, NODE_B, NODE_C, norm, PAST_SHORT_MS, SHORT_MS, sleep, type Suite } from './world.js';

export function owner({ check, world }: Suite): void {
  describe('owner', () => {
    check('the owner keeps its session by claiming; another node is refused while the owner beats', async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      await w.a.heartbeat(NODE_A, ALIVE_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false });
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });
      const r = await w.b.get(sid);
      assert.equal(r?.owner, NODE_A);
      assert.equal(r.fence, 1);
      assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false }, 'still the owner');
    });

    check("after the owner's heartbeat lapses the next claim takes it over: fence 2, the old owner is fenced out", async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      const second = await w.open({ owner: NODE_A });
      await w.a.acceptInbound(sid, 1, ['a', 'b', 'c']);
      await w.a.heartbeat(NODE_A, SHORT_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      await sleep(PAST_SHORT_MS);

      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
      const r = await w.a.get(sid);
      assert.equal(r?.owner, NODE_B);
      assert.equal(r.fence, 2);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: false }, 'the new owner keeps it');

      assert.equal(await w.a.markDelivered(sid, 2, 1), false, "the old owner's fence 1 is refused");
      assert.equal(await w.a.delivered(sid), 0);
      assert.deepEqual((await w.b.readInbound(sid, 1)).messages.map(norm), ['a', 'b', 'c'], 'the new owner delivers them all again');
      assert.equal(await w.b.markDelivered(sid, 2, 2), true);
      assert.equal(await w.b.delivered(sid), 2);

      // Every session of the lapsed node is up for taking, and none moves without a claim.
      assert.equal((await w.a.get(second))?.owner, NODE_A, 'no claim, no change');
      assert.deepEqual(await w.b.claim(second, NODE_B), { owned: true, fence: 2, took: true });

      // The old owner comes back: the session is B's now.
      await w.a.heartbeat(NODE_A, ALIVE_MS);
      assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: false, owner: NODE_B });
    });

    check('acceptInbound and readInbound report the fence they ran under (where a store does): an old owner learns it lost the session', async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      const before = await w.a.acceptInbound(sid, 1, ['a']);
      if (before.fence === undefined) {
        t.diagnostic('this store reports no fence: an owner woken from a pause past its lease learns it lost a session at its next heartbeat');
        return;
      }
      assert.equal(before.fence, 1);
      assert.equal((await w.a.readInbound(sid, 1)).fence, 1);
      await w.a.heartbeat(NODE_A, SHORT_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      await sleep(PAST_SHORT_MS);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
      // The old owner, paused meanwhile, hears of the session again: from either call, on any node's handle.
      assert.equal((await w.a.acceptInbound(sid, 2, ['b'])).fence, 2, 'accepted under the new fence');
      assert.equal((await w.a.acceptInbound(sid, 1, ['a'])).fence, 2, 'a replay too');
      assert.equal((await w.a.acceptInbound(sid, 9, ['hole'])).fence, 2, 'a refused hole too');
      assert.equal((await w.a.readInbound(sid, 1)).fence, 2);
      assert.equal((await w.b.readInbound(sid, 3)).fence, 2, 'past the last accepted');
      const now = w.a.acceptInboundNow?.bind(w.a);
      if (now) assert.equal(now(sid, 3, ['c']).fence, 2, 'acceptInboundNow as acceptInbound');
    });

    check('heartbeat says whether the previous beat was still there: not for a first beat, nor after a lapse or forgetNode', async (t) => {
      const w = await world(t);
      assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'a first beat');
      assert.equal(await w.b.heartbeat(NODE_C, ALIVE_MS), true, 'the beat before it lives (seen from any handle)');
      assert.equal(await w.a.heartbeat(NODE_C, SHORT_MS), true);
      await sleep(PAST_SHORT_MS);
      assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'after a lapse');
      await w.a.forgetNode(NODE_C);
      assert.equal(await w.a.heartbeat(NODE_C, ALIVE_MS), false, 'after forgetNode');
    });

    check('a node that never beat counts as dead', async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_C });
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
      assert.equal((await w.a.get(sid))?.owner, NODE_B);
    });

    check("an owner whose heartbeat lapsed keeps its session if nobody took it (claim by the owner succeeds)", async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      await w.a.acceptInbound(sid, 1, ['a']);
      await w.a.heartbeat(NODE_A, SHORT_MS);
      await sleep(PAST_SHORT_MS);
      assert.deepEqual(await w.a.claim(sid, NODE_A), { owned: true, fence: 1, took: false });
      assert.equal(await w.a.markDelivered(sid, 1, 1), true, 'fence 1 is still current');
    });

    check('release hands the session to the next claim at once; a release by a non-owner or with an old fence is a no-op', async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      await w.a.acceptInbound(sid, 1, ['a']);
      await w.a.heartbeat(NODE_A, ALIVE_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      await w.b.release(sid, NODE_B, 1); // not the owner
      await w.a.release(sid, NODE_A, 2); // not the fence
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });

      await w.a.release(sid, NODE_A, 1);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true }, 'taken at once, though A still beats');
      assert.equal((await w.a.get(sid))?.owner, NODE_B);
      assert.equal(await w.a.markDelivered(sid, 1, 1), false, "the releaser's fence is stale");
      assert.equal(await w.b.markDelivered(sid, 1, 2), true);
    });

    check('forgetNode: the next claim takes its sessions at once', async (t) => {
      const w = await world(t);
      const sid = await w.open({ owner: NODE_A });
      await w.a.heartbeat(NODE_A, ALIVE_MS);
      await w.b.heartbeat(NODE_B, ALIVE_MS);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: false, owner: NODE_A });
      await w.a.forgetNode(NODE_A);
      assert.deepEqual(await w.b.claim(sid, NODE_B), { owned: true, fence: 2, took: true });
    });
  });
}

export function liveness({ check, world }: Suite): void {
  describe('liveness', () => {
    check('touch only moves seenUntil forward', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const t0 = Date.now() + 10_000;
      await w.a.touch(sid, t0);
      assert.equal(await w.b.seenUntil(sid), t0);
      await w.b.touch(sid, t0 - 5_000);
      assert.equal(await w.a.seenUntil(sid), t0, 'an earlier time does not move it back');
      await w.b.touch(sid, t0 + 1);
      assert.equal(await w.a.seenUntil(sid), t0 + 1);
      assert.equal(await w.a.seenUntil('sid-never-made'), undefined);
    });
  });
}
