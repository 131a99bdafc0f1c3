/**
 * A node that is alive but cannot reach its store (its calls fail) fences
 * itself once its lease lapses: it drops its WebSockets (4001) and answers
 * its held polls. Otherwise a client on its WebSocket that sends nothing
 * stays there, its heartbeats answered, while no node serves its session:
 * no request reaches another node to take the session over, and the
 * application's sends on the cut-off owner fail.
 *
 * Raw: the owner's WebSocket is closed with 4001 and its held poll answered.
 * Then a real client through a balancer that passes upgrades, on a
 * WebSocket to the owner, silent: the owner is cut off from its store, and
 * the other node takes the session over (`session`, resumed); its sends
 * reach the client, and the client's reach it, with no reset.
 *
 * The fenced node also gives its sessions up: reconnected, it delivers
 * nothing of a session the other node took over (no split brain), a session
 * the store lost meanwhile gets its close, and one nobody took over is
 * taken over again by its next request. A node only paused past its lease
 * (no heartbeat stored, no wake-ups, no requests) gives up at its next
 * heartbeat the sessions taken over meanwhile, and closes a WebSocket of
 * its own that still carries one.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore, type Session } from '../../server/index.js';
import type { SessionStore } from '../../server/store.js';
import { balance, recordingClient } from '../helpers/nodes.js';
import { Cleanup, Condition, openRaw, post, startServer, withTimeout } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { helloAt, killable, nodeOn, pausable, storeKinds } from './helpers.js';

/** The owner's lease: short, so that a test sees it lapse. */
const LEASE_MS = 400;

describe('a node cut off from its store fences itself once its lease lapses', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'fence')) {
    it(`its WebSocket is closed with 4001 and its held poll answered, so that their clients go elsewhere (${name})`, async () => {
      const storeFor = await makeStores();
      const cut = killable(storeFor());
      const a = await startServer({ store: cut.store, nodeId: 'fence-a', ownerLeaseMs: LEASE_MS, pollTimeoutMs: 30_000 });
      cleanup.add(() => a.close());
      // Its store calls fail at every tick once cut: its 'error' events, kept here rather than printed.
      const errors: unknown[] = [];
      a.hl.on('error', (e) => errors.push(e));
      assertTestScheme(a.url, 'node a');
      const onWs = await openRaw(a.url);
      const ws = await helloAt(a.url, onWs, 1);
      cleanup.add(() => ws.socket.terminate());
      const closed = new Promise<[number, string]>((resolve) => ws.socket.once('close', (code, reason) => resolve([code, String(reason)])));
      const polling = await openRaw(a.url);
      const held = post(`${a.url}/poll`, JSON.stringify({ sid: polling.sid, token: polling.token, ack: 0 }));
      // Held (pollTimeoutMs 30 s) before the cut.
      await new Promise((r) => setTimeout(r, 100));
      cut.kill();
      const [code, reason] = await withTimeout(closed, 5_000, 'the WebSocket closed by its cut-off node');
      assert.equal(code, 4001);
      assert.equal(reason, 'the node cannot reach its store');
      const answer = await withTimeout(held, 5_000, 'the held poll answered by its cut-off node');
      assert.equal(answer.status, 200);
      assert.ok(errors.length > 0, 'the failing store calls were reported');
    });

    it(`a silent client on the owner's WebSocket: the other node takes the session over, both ways, no reset (${name})`, async () => {
      const storeFor = await makeStores();
      const cut = killable(storeFor());
      const a = await nodeOn(cleanup, cut.store, 'fence-lb-a', LEASE_MS);
      const b = await nodeOn(cleanup, storeFor(), 'fence-lb-b', LEASE_MS);
      const lb = await balance(cleanup, [a.origin, b.origin], { upgrades: true });
      assertTestScheme(lb.origin, 'the balancer');
      // The session opened, and its WebSocket made, on A: B out of the balancer until then.
      lb.drop(1);
      const changed = new Condition();
      const { client, received, resets } = await recordingClient(cleanup, lb.origin, changed);
      await withTimeout(
        new Promise<void>((resolve) => (client.transport === 'websocket' ? resolve() : client.once('transport', () => resolve()))),
        10_000,
        'the WebSocket up',
      );
      const sid = client.sessionId ?? '';
      assert.ok(a.hl.session(sid), 'A owns the session');
      lb.restore(1);
      const taken = new Promise<Session>((resolve) => b.hl.once('session', resolve));
      cut.kill();
      const session = await withTimeout(taken, 10_000, 'B to take the session over (the client sends nothing)');
      assert.equal(session.resumed, true);
      const got: string[] = [];
      session.on('message', (m) => {
        got.push(String(m));
        changed.notify();
      });
      await session.send('from B');
      await changed.until(() => received.includes('from B'), 10_000, () => `the client got ${JSON.stringify(received)}`);
      await client.send('to B');
      await changed.until(() => got.includes('to B'), 10_000, () => `B got ${JSON.stringify(got)}`);
      assert.deepEqual(resets, [], 'the client never saw a reset');
    });
  }
});

/** What each node's session got, in order. */
function recordOn(session: Session, into: string[], changed: Condition): void {
  session.on('message', (m) => {
    into.push(String(m));
    changed.notify();
  });
}

/**
 * Nodes A (on `aStore`) and B behind a round-robin balancer; a client whose
 * session A opened, its 'before' delivered on A; B's session, once B takes
 * it over, recorded too.
 */
async function ownedByA(cleanup: Cleanup, aStore: SessionStore, bStore: SessionStore, prefix: string) {
  const a = await nodeOn(cleanup, aStore, `${prefix}-a`, LEASE_MS);
  const b = await nodeOn(cleanup, bStore, `${prefix}-b`, LEASE_MS);
  const lb = await balance(cleanup, [a.origin, b.origin]);
  lb.drop(1);
  const changed = new Condition();
  const { client, resets } = await recordingClient(cleanup, lb.origin, changed);
  const sid = client.sessionId ?? '';
  const old = a.hl.session(sid);
  assert.ok(old, 'A owns the session');
  const onA: string[] = [];
  recordOn(old, onA, changed);
  /** The old session object's `moved` and `close` events. */
  const ended: string[] = [];
  old.on('moved', () => ended.push('moved'));
  old.on('close', () => ended.push('close'));
  await client.send('before');
  await changed.until(() => onA.includes('before'), 5_000, () => 'delivered on A');
  const onB: string[] = [];
  const taken = new Promise<Session>((resolve) =>
    b.hl.once('session', (s) => {
      recordOn(s, onB, changed);
      resolve(s);
    }),
  );
  return { a, lb, changed, client, resets, sid, old, onA, onB, taken, ended };
}

/** B took the session over after 'during': 20 more messages reach B once, in order; A delivers none; A's old session's send rejects; no reset. */
async function onlyB(r: Awaited<ReturnType<typeof ownedByA>>): Promise<void> {
  const { changed, client, onA, onB } = r;
  for (let i = 0; i < 20; i++) await client.send(`after ${i}`);
  await changed.until(() => onB.includes('after 19'), 10_000, () => `B got ${JSON.stringify(onB)}`);
  await new Promise((res) => setTimeout(res, 300));
  assert.deepEqual(onB.filter((m) => m.startsWith('after')), Array.from({ length: 20 }, (_, i) => `after ${i}`), 'B got each once, in order');
  assert.deepEqual(onA, ['before'], 'A delivered nothing after it lost the session');
  await assert.rejects(r.old.send('from the old owner'), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'session_closed');
  assert.equal(r.a.hl.session(r.sid), undefined, 'A no longer owns it');
  assert.deepEqual(r.ended, ['moved'], "A's session object says it moved, once, and does not close");
  assert.deepEqual(r.resets, [], 'the client never saw a reset');
}

/** The client sends 'during': B takes the session over (resumed) and delivers it. */
async function takenByB(r: Awaited<ReturnType<typeof ownedByA>>): Promise<void> {
  await r.client.send('during');
  assert.equal((await withTimeout(r.taken, 10_000, 'B to take the session over')).resumed, true);
  await r.changed.until(() => r.onB.includes('during'), 10_000, () => `B got ${JSON.stringify(r.onB)}`);
}

describe('a node cut off from its store, once reconnected, serves no session another node took over', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'split')) {
    it(`its old session delivers nothing more and its sends reject; the new owner gets everything once (${name})`, async () => {
      const storeFor = await makeStores();
      const cut = killable(storeFor());
      const r = await ownedByA(cleanup, cut.store, storeFor(), 'split');
      r.lb.restore(1);
      cut.kill();
      await new Promise((res) => setTimeout(res, LEASE_MS * 1.5));
      await takenByB(r);
      cut.revive();
      // A beats again, and hears the store's events again.
      await new Promise((res) => setTimeout(res, LEASE_MS));
      await onlyB(r);
    });
  }
});

describe('the sessions a node gave up when it fenced itself, once it reaches its store again', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  /** A node on a MemoryStore it can be cut off from, one session opened on it, and the node cut off until it fenced itself. */
  async function fenced() {
    const memory = new MemoryStore();
    const cut = killable(memory);
    const a = await startServer({ store: cut.store, nodeId: 'orphan-a', ownerLeaseMs: LEASE_MS });
    cleanup.add(() => a.close());
    a.hl.on('error', () => {});
    const s = await openRaw(a.url);
    const old = a.hl.session(s.sid);
    assert.ok(old, 'A owns the session');
    const closes: string[] = [];
    old.on('close', (reason) => closes.push(reason.code));
    cut.kill();
    await waitFor(() => a.hl.session(s.sid) === undefined, 5_000, 'A to fence itself and give the session up');
    return { memory, cut, a, s, old, closes };
  }

  it('one the store lost (Redis restarted without its data) ends with close, session_unknown', async () => {
    const { memory, cut, s, closes } = await fenced();
    await memory.delete(s.sid);
    cut.revive();
    await waitFor(() => closes.length > 0, 5_000, 'close on the session the store lost');
    assert.deepEqual(closes, ['session_unknown']);
  });

  it('one the store still holds, and no node took over: no close; its next request takes it over again (resumed)', async () => {
    const { cut, a, s, old, closes } = await fenced();
    cut.revive();
    const again = new Promise<Session>((resolve) => a.hl.once('session', resolve));
    await new Promise((r) => setTimeout(r, LEASE_MS));
    const res = await post(`${a.url}/send`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: ['back'] }));
    assert.equal(res.status, 200, res.text);
    const session = await withTimeout(again, 5_000, 'the session taken over again');
    assert.equal(session.resumed, true);
    assert.notEqual(session, old);
    assert.deepEqual(closes, [], 'the session given up ends with no close');
  });
});

describe('a node paused past its lease, whose sessions another node took over meanwhile', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'pause')) {
    it(`gives them up at its first heartbeat after: it delivers nothing more of them and its sends reject (${name})`, async () => {
      const storeFor = await makeStores();
      const p = pausable(storeFor());
      const r = await ownedByA(cleanup, p.store, storeFor(), 'pause');
      // A pauses: no heartbeat stored, no wake-ups heard, no requests.
      p.pause();
      r.lb.drop(0);
      r.lb.restore(1);
      await new Promise((res) => setTimeout(res, LEASE_MS * 1.5));
      await takenByB(r);
      // A wakes: its next heartbeat finds its lease gone, and the session B's.
      p.resume();
      r.lb.restore(0);
      await waitFor(() => r.a.hl.session(r.sid) === undefined, 5_000, 'A to give the session up');
      await onlyB(r);
    });
  }
});

describe('a node paused past its lease, with a WebSocket carrying the session another node took over', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'pause-ws')) {
    it(`closes that WebSocket (4001) as it gives the session up, so that it delivers nothing through it (${name})`, async () => {
      const storeFor = await makeStores();
      const p = pausable(storeFor());
      const a = await startServer({ store: p.store, nodeId: 'pause-ws-a', ownerLeaseMs: LEASE_MS });
      cleanup.add(() => a.close());
      const b = await startServer({ store: storeFor(), nodeId: 'pause-ws-b', ownerLeaseMs: LEASE_MS });
      cleanup.add(() => b.close());
      const s = await openRaw(a.url);
      const ws = await helloAt(a.url, s, 1);
      cleanup.add(() => ws.socket.terminate());
      const closed = new Promise<[number, string]>((resolve) => ws.socket.once('close', (code, reason) => resolve([code, String(reason)])));
      p.pause();
      await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
      const taken = new Promise<Session>((resolve) => b.hl.once('session', resolve));
      const res = await post(`${b.url}/send`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: ['on B'] }));
      assert.equal(res.status, 200, res.text);
      assert.equal((await withTimeout(taken, 5_000, 'B to take the session over')).resumed, true);
      p.resume();
      const [code, reason] = await withTimeout(closed, 5_000, "A's WebSocket closed as it gives the session up");
      assert.equal(code, 4001);
      assert.equal(reason, 'the session moved to another node');
      assert.equal(a.hl.session(s.sid), undefined, 'A no longer owns it');
    });
  }
});
