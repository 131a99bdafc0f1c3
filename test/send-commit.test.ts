/**
 * A send()'s commit to the store: at once with a store in this process that
 * has enqueueNow (MemoryStore), awaited with one that has only enqueue. Either
 * way an awaited send() is in the store when its promise resolves, the sends
 * of one turn's microtasks are one commit (with enqueueNow, after the turn's
 * first send, committed at once), and the client gets every message once, in
 * order.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../server/index.js';
import type { OutboxEntry } from '../shared/index.js';
import { HoldlineClient } from '../client/index.js';
import { startHoldline } from './helpers/holdline.js';

class CountingStore extends MemoryStore {
  readonly calls: string[] = [];
  override enqueue(sid: string, entries: readonly OutboxEntry[]) {
    this.calls.push(`enqueue ${entries.length}`);
    return super.enqueue(sid, entries);
  }
  override enqueueNow(sid: string, entries: readonly OutboxEntry[]) {
    this.calls.push(`now ${entries.length}`);
    return super.enqueueNow(sid, entries);
  }
}

/** The same store with the optional enqueueNow taken away: what a networked store (RedisStore) looks like to the node. */
function asyncOnly(store: CountingStore): CountingStore {
  Reflect.defineProperty(store, 'enqueueNow', { value: undefined });
  assert.equal(store.enqueueNow, undefined);
  return store;
}

/** A server on `store` and a client connected on `transport`: the server's session, and what the client got. */
async function connected(t: TestContext, store: CountingStore | MemoryStore, transport: 'polling' | 'websocket' = 'polling') {
  const hl = await startHoldline(t, { store });
  const client = new HoldlineClient(hl.url, { transports: [transport] });
  t.after(() => client.close());
  const got: string[] = [];
  client.on('message', (m) => got.push(String(m)));
  await client.connect();
  const session = hl.server.session(client.sessionId ?? '');
  assert.ok(session);
  return { client, session, got };
}

for (const [kind, make, want] of [
  ['a store with enqueueNow commits at once', () => new CountingStore(), 'now'],
  ['a store with only enqueue is awaited', () => asyncOnly(new CountingStore()), 'enqueue'],
] as const) {
  test(`send() commits: ${kind}; an awaited send is in the store, one turn's sends are one commit`, async (t) => {
    const store = make();
    const { session, got } = await connected(t, store);

    // An application that awaits each send: one commit each, in the store when the promise resolves.
    for (let i = 1; i <= 3; i++) {
      await session.send(`a${i}`);
      assert.equal(await store.pendingOutbound(session.id, i), 1, `a${i} is in the store once send() resolved`);
    }
    // Sends of one turn: one commit of all three.
    await Promise.all([session.send('b1'), session.send('b2'), session.send('b3')]);
    assert.deepEqual(store.calls, [`${want} 1`, `${want} 1`, `${want} 1`, `${want} 3`]);

    const deadline = Date.now() + 10_000;
    while (got.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
  });
}

test('send() on a session closed before its commit rejects with session_closed, and commits nothing', async (t) => {
  const store = new CountingStore();
  const { session } = await connected(t, store);
  // The turn's first send is committed at once; the next one at the end of the turn's microtasks.
  const first = session.send('first');
  const sent = session.send('too late');
  // Its commit runs in a microtask after this turn: the close comes first.
  void session.close();
  await first;
  await assert.rejects(sent, (e: unknown) => e instanceof Error && 'code' in e && e.code === 'session_closed');
  assert.deepEqual(store.calls, ['now 1']);
});

test("the turn's first send is in the store when send() returns; the turn's other sends are committed together after it", async (t) => {
  const store = new CountingStore();
  const { session, got } = await connected(t, store);
  await new Promise((r) => setTimeout(r, 0)); // a turn of its own
  const sends = [session.send('x1')];
  assert.deepEqual(store.calls, ['now 1'], 'committed before send() returned');
  sends.push(session.send('x2'), session.send('x3'));
  assert.deepEqual(store.calls, ['now 1'], 'the others wait for the end of the turn');
  await Promise.all(sends);
  assert.deepEqual(store.calls, ['now 1', 'now 2']);
  // A send of a later turn is the first of its own.
  await new Promise((r) => setTimeout(r, 0));
  void session.send('x4');
  assert.deepEqual(store.calls, ['now 1', 'now 2', 'now 1']);
  const deadline = Date.now() + 10_000;
  while (got.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ['x1', 'x2', 'x3', 'x4']);
});

test("on a WebSocket, the turn's first send is written before send() returns, and a 'flush' it brings comes after the call", async (t) => {
  const { client, session, got } = await connected(t, new MemoryStore(), 'websocket');
  const deadline = Date.now() + 10_000;
  while (client.transport !== 'websocket' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(client.transport, 'websocket');
  await new Promise((r) => setTimeout(r, 50));
  const events: string[] = [];
  session.on('flush', () => events.push('flush'));
  void session.send('w1');
  events.push('returned');
  assert.equal(session.queuedAmount, 0, 'written before send() returned');
  void session.send('w2');
  assert.equal(session.queuedAmount, 2, "the turn's next send waits for the end of the turn");
  while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ['w1', 'w2']);
  assert.equal(events[0], 'returned', `'flush' never fires inside send(): ${events.join(', ')}`);
  assert.ok(events.includes('flush'));
});
