/**
 * A poll the client sent before a WebSocket's hello on another node, which
 * reaches the owner after that hello (a round-robin balancer sends the
 * requests of one client to different nodes, and they cross on the way).
 *
 * The client reads no answer to that poll: it stopped polling before its
 * hello. The owner must not hold it, because a poll held on the owner is
 * where the owner's commits go, and then no other node is woken: the
 * WebSocket on the other node would wait for the owner's messages. Either
 * order is covered: the hello's wake-up reaches the owner before the stale
 * poll, or after it (the owner's wake-ups held back for the test). So is
 * a commit the owner makes before it hears of the hello, while it still
 * holds a poll: that poll takes it, and the WebSocket's node must read it
 * from the store all the same. With
 * one MemoryStore shared in this process, and with a RedisStore on each
 * node (one redis-server of the test's own).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../../server/index.js';
import type { SessionStore } from '../../server/store.js';
import { Cleanup, openRaw, post, startServer, withTimeout, type RawSession, type StartedServer } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { heldAfter300, helloAt, messagesOf, pausableEvents, storeKinds, type PausableEvents } from './helpers.js';

/** Node A (`events`, its view of the store) has been given the wake-up of session `s`'s WebSocket hello elsewhere. */
function heard(events: PausableEvents, s: RawSession): Promise<void> {
  return events.delivered((sid, e) => sid === s.sid && e.type === 'poll' && e.hello !== undefined, "the hello's wake-up on node A");
}

describe('a poll sent before a WebSocket hello on another node, reaching the owner after it', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  const stores = storeKinds(cleanup, 'stale');

  /** Node A (owner, its wake-ups pausable) and node B on `storeFor`'s stores; a session opened on A. */
  async function rig(storeFor: () => SessionStore): Promise<{ a: StartedServer; b: StartedServer; events: PausableEvents; s: RawSession; owner: Session }> {
    const events = pausableEvents(storeFor());
    const a = await startServer({ store: events.store, nodeId: 'stale-a', pollTimeoutMs: 10_000 });
    cleanup.add(() => a.close());
    const b = await startServer({ store: storeFor(), nodeId: 'stale-b', pollTimeoutMs: 10_000 });
    cleanup.add(() => b.close());
    assertTestScheme(a.url, 'node a');
    assertTestScheme(b.url, 'node b');
    const ownerP = new Promise<Session>((resolve) => a.hl.once('session', resolve));
    const s = await openRaw(a.url);
    return { a, b, events, s, owner: await ownerP };
  }

  /** The owner sends; the WebSocket on B must get it (the commit wakes B), as a compact-free header and its frame. */
  async function ownerReachesWebSocket(owner: Session, ws: { next(): Promise<string> }, text: string): Promise<void> {
    await owner.send(text);
    for (;;) {
      const frame = await withTimeout(ws.next(), 5_000, `"${text}" on the WebSocket on node B`);
      if (frame === text) return;
    }
  }

  for (const [name, makeStores] of stores) {
    it(`the hello first: the owner answers the stale poll empty at once instead of holding it (${name})`, async () => {
      const { a, b, events, s, owner } = await rig(await makeStores());
      const ws = await helloAt(b.url, s, 2);
      cleanup.add(() => ws.socket.terminate());
      await heard(events, s);
      const poll = post(`${a.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, ws: 1, hold: 10_000 }));
      // Held (the fault), it would carry the owner's message below; answered at once, it is empty.
      const early = await heldAfter300(poll);
      await ownerReachesWebSocket(owner, ws, 'after the stale poll');
      assert.notEqual(early, 'held', 'the stale poll was answered before the owner sent anything');
      assert.deepEqual(messagesOf(await poll), []);
    });

    it(`the stale poll first: the hello's wake-up, when it reaches the owner, answers the held poll empty (${name})`, async () => {
      const { a, b, events, s, owner } = await rig(await makeStores());
      events.pause();
      const ws = await helloAt(b.url, s, 2);
      cleanup.add(() => ws.socket.terminate());
      // After the hello by the clock, before its wake-up reaches A: A holds it, knowing nothing yet.
      const poll = post(`${a.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, ws: 1, hold: 10_000 }));
      const held = await heldAfter300(poll);
      assert.equal(held, 'held', 'A holds the poll while it has not heard of the hello');
      events.resume();
      await heard(events, s);
      await ownerReachesWebSocket(owner, ws, 'after the hello reached A');
      assert.deepEqual(messagesOf(await withTimeout(poll, 5_000, 'the answer to the stale poll')), []);
    });

    it(`the owner commits before it hears of the hello: its held poll takes the message, and the WebSocket's node still gets it (${name})`, async () => {
      const { a, b, events, s, owner } = await rig(await makeStores());
      const poll = post(`${a.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, ws: 1, hold: 10_000 }));
      const held = await heldAfter300(poll);
      assert.equal(held, 'held', 'A holds the poll');
      events.pause();
      const ws = await helloAt(b.url, s, 2);
      cleanup.add(() => ws.socket.terminate());
      // Committed while A still holds its poll and knows nothing of the hello: that poll carries it (the client reads no answer to it), and no other node is woken.
      await owner.send('before A heard');
      assert.deepEqual(messagesOf(await withTimeout(poll, 5_000, 'the answer to the held poll')), ['before A heard']);
      events.resume();
      await heard(events, s);
      for (;;) {
        const frame = await withTimeout(ws.next(), 5_000, '"before A heard" on the WebSocket on node B');
        if (frame === 'before A heard' || frame.endsWith(']before A heard')) break;
      }
    });
  }
});
