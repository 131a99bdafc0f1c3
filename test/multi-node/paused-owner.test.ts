/**
 * A node paused past its lease (a frozen VM) that wakes after another node
 * took one of its sessions over still believes it owns the session until its
 * first heartbeat's answer. What it hears of the session meanwhile, a send
 * that reaches it or another node's wake-up, it must not deliver: the new
 * owner does, once. The store tells it: the fence an inbound batch is
 * accepted or read under is not the one it owns the session with, so it
 * gives the session up there and then.
 *
 * The window is held open: the paused node's heartbeats go on being
 * unstored (the node is told they were), while it takes requests and hears
 * wake-ups again (pausable's hear()).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../../server/index.js';
import { Cleanup, Condition, openRaw, post, startServer, withTimeout, type RawSession } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { pausable, storeKinds } from './helpers.js';

/** The owner's lease: short, so that a test sees it lapse. */
const LEASE_MS = 400;

/** A send of one text message, numbered `seq`, to `base`. */
async function sendTo(base: string, s: RawSession, seq: number, text: string): Promise<void> {
  const res = await post(`${base}/send`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, seq, m: [text] }));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(JSON.parse(res.text), { ack: seq }, `${text}: accepted`);
}

/**
 * Nodes a (on a pausable store), b and c; a session opened on a, which
 * delivers 'zero' (seq 1); a paused past its lease, and the session taken
 * over by b through a send of 'one' (seq 2), or through a poll. Every
 * message each node's application gets, in `got`.
 */
async function takenOverFromPaused(cleanup: Cleanup, makeStores: () => Promise<() => import('../../server/store.js').SessionStore>, prefix: string, by: 'send' | 'poll') {
  const storeFor = await makeStores();
  const p = pausable(storeFor());
  const start = async (store: typeof p.store, name: string) => {
    const node = await startServer({ store, nodeId: `${prefix}-${name}`, ownerLeaseMs: LEASE_MS });
    cleanup.add(() => node.close());
    assertTestScheme(node.url, `node ${name}`);
    return node;
  };
  const a = await start(p.store, 'a');
  const b = await start(storeFor(), 'b');
  const c = await start(storeFor(), 'c');
  const changed = new Condition();
  const got: Record<'a' | 'b', string[]> = { a: [], b: [] };
  /** The old owner's session's `moved` and `close` events. */
  const ended: string[] = [];
  const record = (s: Session, into: string[]) =>
    s.on('message', (m) => {
      into.push(String(m));
      changed.notify();
    });
  const s = await openRaw(a.url);
  const onA = a.hl.session(s.sid);
  assert.ok(onA, 'a owns the session');
  record(onA, got.a);
  onA.on('moved', () => ended.push('moved'));
  onA.on('close', () => ended.push('close'));
  await sendTo(a.url, s, 1, 'zero');
  await changed.until(() => got.a.includes('zero'), 5_000, () => `a got ${JSON.stringify(got.a)}`);
  // Marked delivered (MemoryStore at once, Redis on a's next timer turn): the takeover does not redeliver it.
  await new Promise((r) => setTimeout(r, 100));
  p.pause();
  await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
  // Recorded from its 'session' event on: a takeover by a send delivers 'one' right after it.
  const taken = new Promise<Session>((resolve) =>
    b.hl.once('session', (onB) => {
      record(onB, got.b);
      resolve(onB);
    }),
  );
  if (by === 'send') {
    await sendTo(b.url, s, 2, 'one');
  } else {
    const res = await post(`${b.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 0 }));
    assert.equal(res.status, 200, res.text);
  }
  assert.equal((await withTimeout(taken, 5_000, 'b to take the session over')).resumed, true);
  if (by === 'send') await changed.until(() => got.b.includes('one'), 5_000, () => `b got ${JSON.stringify(got.b)}`);
  return { p, a, b, c, s, got, ended, changed };
}

describe('a node woken from a pause past its lease, before its first heartbeat answers', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'woken')) {
    it(`does not deliver a send that reaches it: the new owner delivers it, once (${name})`, async () => {
      // Taken over by a poll: the send below follows what a delivered, so a would deliver it
      // straight from the request (not through a read of the store) but for the accept's fence.
      const { a, b, s, got, ended, changed } = await takenOverFromPaused(cleanup, makeStores, 'woken-send', 'poll');
      // a takes a request before its heartbeat tells it anything.
      await sendTo(a.url, s, 2, 'two');
      await sendTo(b.url, s, 3, 'three');
      await changed.until(() => got.b.includes('three'), 5_000, () => `b got ${JSON.stringify(got.b)}`);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got.b, ['two', 'three'], 'the new owner delivered each once, in order');
      assert.deepEqual(got.a, ['zero'], 'the old owner delivered nothing after its pause');
      assert.equal(a.hl.session(s.sid), undefined, 'a gave the session up');
      assert.deepEqual(ended, ['moved'], "a's session object says it moved, once, and does not close");
    });

    it(`does not deliver what another node's wake-up tells it of: the new owner delivers it, once (${name})`, async () => {
      const { p, a, c, s, got, ended, changed } = await takenOverFromPaused(cleanup, makeStores, 'woken-pump', 'send');
      // a hears wake-ups again; its heartbeat has not answered yet.
      p.hear();
      // Accepted on c, which owns nothing: c tells the owner, and a hears it too.
      await sendTo(c.url, s, 3, 'two');
      await changed.until(() => got.b.includes('two'), 5_000, () => `b got ${JSON.stringify(got.b)}`);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got.b, ['one', 'two'], 'the new owner delivered each once, in order');
      assert.deepEqual(got.a, ['zero'], 'the old owner delivered nothing after its pause');
      assert.equal(a.hl.session(s.sid), undefined, 'a gave the session up');
      assert.deepEqual(ended, ['moved'], "a's session object says it moved, once, and does not close");
    });
  }
});
