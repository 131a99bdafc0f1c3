/**
 * The store conformance suite's `wake-ups` area: publish and subscribe.
 * Every subscriber on every node (the publisher's own included) hears each
 * event as published, for every session and for one the store no longer
 * holds; unsubscribe stops that listener only; a listener that throws keeps
 * the event from no other; no listener runs inside publish. Here too the Recorder and `listen`, which wait until a
 * subscription is live (a remote store subscribes over the network) before a
 * test relies on it.
 */
import { describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionStore, StoreEvent } from '../../server/store.js';
import { ALIVE_MS, NODE_A, NODE_B, REASON, sleep, type Suite } from './world.js';

/** Session ids of the probe events `listen` publishes; Recorders do not record them. */
const PROBE = 'probe-';

/** Records every (sid, event) a listener hears; waits for a count with a deadline. */
class Recorder {
  readonly heard: { sid: string; event: StoreEvent }[] = [];
  probes = 0;
  readonly listener = (sid: string, event: StoreEvent): void => {
    if (sid.startsWith(PROBE)) this.probes++;
    else this.heard.push({ sid, event });
  };

  async waitFor(n: number, what: string, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.heard.length < n) {
      if (Date.now() > deadline) assert.fail(`${what}: heard ${this.heard.length} event(s) within ${ms} ms, want ${n}`);
      await sleep(2);
    }
  }
}

/**
 * Subscribe `rec` on `store`, and wait until the subscription is live: a
 * probe published after subscribing has been heard. Unsubscribes after the
 * test. One Recorder per subscription (its probe count tells this one is live).
 */
async function listen(t: TestContext, store: SessionStore, rec: Recorder): Promise<() => void> {
  assert.equal(rec.probes, 0, 'a Recorder serves one subscription');
  const off = store.subscribe(rec.listener);
  t.after(off);
  const deadline = Date.now() + 2000;
  for (let i = 0; rec.probes === 0; i++) {
    if (Date.now() > deadline) assert.fail('a subscription heard no event published after it within 2000 ms');
    await store.publish(`${PROBE}${i}`, { type: 'in', node: 'probe' });
    for (let k = 0; k < 10 && rec.probes === 0; k++) await sleep(2);
  }
  return off;
}

export function wakeUps({ check, world }: Suite): void {
  describe('wake-ups', () => {
    const events: StoreEvent[] = [
      { type: 'out', node: NODE_A },
      { type: 'ack', node: NODE_B, ack: 17, bufferedBytes: 4096 },
      { type: 'in', node: NODE_A },
      { type: 'poll', node: NODE_B, at: 1_700_000_000_123 },
      { type: 'poll', node: NODE_A, at: 1_700_000_000_456, ws: 3 },
      { type: 'poll', node: NODE_B, at: 1_700_000_000_789, hello: 2 },
      { type: 'close', node: NODE_A, reason: { code: 'idle_timeout', message: 'nobody polled for 30 s' } },
      { type: 'broadcast', node: NODE_B, data: 'to everyone' },
      { type: 'broadcast', node: NODE_A, data: { b: 'AAEC/w==' } },
    ];

    /** A world with a session, and a Recorder listening on each node. */
    const listening = async (t: TestContext) => {
      const w = await world(t);
      const sid = await w.open();
      const onA = new Recorder();
      const onB = new Recorder();
      await listen(t, w.a, onA);
      await listen(t, w.b, onB);
      return { w, sid, onA, onB };
    };

    check('a listener that throws keeps the event from no other listener, here or on another node', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      let thrown = 0;
      const off = w.a.subscribe((s) => {
        if (s.startsWith(PROBE)) return;
        thrown++;
        throw new Error('a listener that throws');
      });
      t.after(off);
      const onA = new Recorder();
      const onB = new Recorder();
      await listen(t, w.a, onA);
      await listen(t, w.b, onB);
      await w.a.publish(sid, { type: 'in', node: NODE_A });
      await w.b.publish(sid, { type: 'in', node: NODE_B });
      await onA.waitFor(2, 'the thrower\'s neighbour on the same store');
      await onB.waitFor(2, 'a listener on the other node');
      assert.equal(thrown, 2, 'the thrower heard both events too');
      assert.deepEqual(onA.heard.map((h) => h.event.node), [NODE_A, NODE_B]);
    });

    check('publish reaches every subscriber, the publisher included, with the sid and the event as published', async (t) => {
      const { w, sid, onA, onB } = await listening(t);
      for (const event of events) await w.a.publish(sid, event);
      await onA.waitFor(events.length, "the publisher's own subscriber");
      await onB.waitFor(events.length, "the other node's subscriber");
      const want = events.map((event) => ({ sid, event }));
      assert.deepEqual(onA.heard, want, 'every event, in order');
      assert.deepEqual(onB.heard, want, 'every event, in order');
    });

    check("a subscriber hears every session's events", async (t) => {
      const w = await world(t);
      const s1 = await w.open();
      const s2 = await w.open();
      const rec = new Recorder();
      await listen(t, w.b, rec);
      await w.a.publish(s1, { type: 'in', node: NODE_A });
      await w.a.publish(s2, { type: 'out', node: NODE_A });
      await rec.waitFor(2, 'two sessions');
      assert.deepEqual(rec.heard.map((h) => h.sid), [s1, s2]);
    });

    check('unsubscribe stops delivery to that listener only', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const gone = new Recorder();
      const stays = new Recorder();
      const off = await listen(t, w.b, gone);
      await listen(t, w.b, stays);
      await w.a.publish(sid, { type: 'out', node: NODE_A });
      await gone.waitFor(1, 'before unsubscribing');
      await stays.waitFor(1, 'before unsubscribing');
      off();
      off(); // twice is harmless
      await w.a.publish(sid, { type: 'in', node: NODE_A });
      await w.a.publish(sid, { type: 'poll', node: NODE_A, at: Date.now() });
      await stays.waitFor(3, 'the listener still subscribed');
      await sleep(20);
      assert.equal(gone.heard.length, 1, 'nothing after unsubscribe');
    });

    check('a listener never runs inside publish: events arrive asynchronously', async (t) => {
      const { w, sid, onA, onB } = await listening(t);
      const published = w.a.publish(sid, { type: 'out', node: NODE_A });
      assert.equal(onA.heard.length + onB.heard.length, 0, 'a listener ran synchronously inside publish()');
      await published;
      await onA.waitFor(1, "the publisher's own subscription");
      await onB.waitFor(1, "the other node's subscription");
    });

    check('publish works for a session the store no longer holds (a close is published after the delete)', async (t) => {
      const w = await world(t);
      const sid = await w.open();
      const rec = new Recorder();
      await listen(t, w.b, rec);
      await w.a.delete(sid, { reason: REASON, ttlMs: ALIVE_MS });
      await w.a.publish(sid, { type: 'close', node: NODE_A, reason: REASON });
      await rec.waitFor(1, 'the close');
      assert.deepEqual(rec.heard, [{ sid, event: { type: 'close', node: NODE_A, reason: REASON } }]);
    });
  });
}
