/**
 * The owner's send window when the client's acks reach another node: the
 * owner hears of them through the store's wake-ups, which come in their
 * own time, and the store's answers to its own commits come in theirs
 * (with a store across the network). Whatever the order, every message
 * acknowledged frees exactly its cost: `bufferedAmount` comes back to 0
 * and 'drain' is emitted once everything sent is acknowledged.
 *
 * - An ack's wake-up that reaches the owner after it committed a later
 *   message.
 * - An ack that reaches the owner before the store's answer to the commit
 *   of the message it covers.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../../server/index.js';
import type { EnqueueResult, SessionStore } from '../../server/store.js';
import { Cleanup, openRaw, post, startServer, type RawSession, type StartedServer } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { pausableEvents, storeKinds, type PausableEvents } from './helpers.js';

/** `store` with its enqueue answers held back until release() (the entries are in the store at once): a commit's answer late. */
function lateCommits(store: SessionStore): { store: SessionStore; hold(): void; release(): void; held(): number } {
  let holding = false;
  let waiting: Array<() => void> = [];
  const view = new Proxy(store, {
    get(target, prop) {
      // No commit at once: every commit waits for enqueue's answer.
      if (prop === 'enqueueNow' || prop === 'enqueueAndRead') return undefined;
      if (prop === 'enqueue') {
        return async (...args: Parameters<SessionStore['enqueue']>): Promise<EnqueueResult> => {
          const r = await target.enqueue(...args);
          if (holding) await new Promise<void>((resolve) => waiting.push(resolve));
          return r;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (...args: unknown[]) => Reflect.apply(v, target, args) : v;
    },
  });
  return {
    store: view,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      const w = waiting;
      waiting = [];
      for (const resolve of w) resolve();
    },
    held: () => waiting.length,
  };
}

describe("the owner's send window, with the client's acks on another node", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  /** Node A owns a session (its store as `view` makes it), node B acks for the client (a poll with `ack`, not held). */
  async function rig(storeFor: () => SessionStore, view: (s: SessionStore) => SessionStore): Promise<{ a: StartedServer; b: StartedServer; s: RawSession; owner: Session; ackOnB(ack: number): Promise<void> }> {
    const a = await startServer({ store: view(storeFor()), nodeId: 'acks-a' });
    cleanup.add(() => a.close());
    const b = await startServer({ store: storeFor(), nodeId: 'acks-b' });
    cleanup.add(() => b.close());
    assertTestScheme(a.url, 'node a');
    const ownerP = new Promise<Session>((resolve) => a.hl.once('session', resolve));
    const s = await openRaw(a.url);
    const owner = await ownerP;
    const ackOnB = async (ack: number): Promise<void> => {
      const res = await post(`${b.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack, hold: 0 }));
      assert.equal(res.status, 200, res.text);
    };
    return { a, b, s, owner, ackOnB };
  }

  /** Resolves when `owner` emits 'drain'. */
  const drained = (owner: Session): Promise<void> => new Promise((resolve) => owner.once('drain', () => resolve()));

  for (const [name, makeStores] of storeKinds(cleanup, 'acks')) {
    it(`an ack's wake-up that comes after a later commit frees what it covers, and the last ack frees all (${name})`, async () => {
      let events: PausableEvents | undefined;
      const { s, owner, ackOnB } = await rig(await makeStores(), (store) => (events = pausableEvents(store)).store);
      assert.ok(events);
      const ackHeard = (ack: number) => events?.delivered((sid, e) => sid === s.sid && e.type === 'ack' && e.ack === ack, `ack ${ack} on node A`);
      await owner.send('x'.repeat(50));
      assert.equal(owner.bufferedAmount, 50);
      events.pause();
      await ackOnB(1);
      // Committed while the owner has not heard of ack 1.
      await owner.send('y'.repeat(70));
      assert.equal(owner.bufferedAmount, 120);
      events.resume();
      await ackHeard(1);
      assert.equal(owner.bufferedAmount, 70, 'ack 1 frees the first message, not the second');
      const drain = drained(owner);
      await ackOnB(2);
      await ackHeard(2);
      assert.equal(owner.bufferedAmount, 0, 'ack 2 frees the rest');
      await drain;
    });

    it(`an ack that comes before the store's answer to the commit it covers frees it when that answer comes (${name})`, async () => {
      let late: ReturnType<typeof lateCommits> | undefined;
      let events: PausableEvents | undefined;
      const { s, owner, ackOnB } = await rig(await makeStores(), (store) => {
        late = lateCommits(store);
        return (events = pausableEvents(late.store)).store;
      });
      assert.ok(late && events);
      late.hold();
      const sent = owner.send('z'.repeat(40));
      // The message is in the store (B can take its ack); its commit's answer has not reached A.
      for (let i = 0; i < 200 && late.held() === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(late.held(), 1, "the commit's answer is held back");
      const drain = drained(owner);
      await ackOnB(1);
      await events.delivered((sid, e) => sid === s.sid && e.type === 'ack' && e.ack === 1, 'ack 1 on node A');
      assert.equal(owner.bufferedAmount, 40, 'nothing this node committed is known to be acknowledged yet');
      late.release();
      await sent;
      assert.equal(owner.bufferedAmount, 0, 'the answer comes: the ack heard before covers it');
      await drain;
    });
  }
});
