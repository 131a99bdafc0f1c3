/**
 * A WebSocket on a node that does not own its session, when the owner
 * dies: its store calls fail and its lease lapses. No request over HTTP
 * comes to trigger the takeover (the client rides the WebSocket), so the
 * WebSocket's node looks the session up again on the connection's batches
 * and heartbeats. It takes the session over (`session`, resumed) and
 * delivers what the client sent, and the application's sends on it reach
 * the client.
 *
 * Then the same through a round-robin balancer that passes upgrades, with
 * a real client: the owner dies mid-stream, its WebSocket is cut or left
 * open, and 2,000 messages each way arrive exactly once with no reset.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore, type Session } from '../../server/index.js';
import type { SessionStore } from '../../server/store.js';
import { balance, recordAtServer, recordingClient } from '../helpers/nodes.js';
import { Cleanup, Condition, openRaw, startServer, withTimeout, type StartedServer } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { assertExactlyOnce, helloAt, key, killable, message, nodeOn, storeKinds, streamAcrossOwners } from './helpers.js';

/** The owner's lease: short, so that a test sees it lapse. */
const LEASE_MS = 400;

describe('a WebSocket on a node that does not own the session, when the owner dies', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  /** Node A owns a session (its store can die), node B (heartbeats every second) carries it on a raw WebSocket. */
  async function rig(storeFor: () => SessionStore) {
    const dying = killable(storeFor());
    const a = await startServer({ store: dying.store, nodeId: 'take-a', ownerLeaseMs: LEASE_MS });
    cleanup.add(() => a.close());
    // A dead node's store calls fail at every tick: its 'error' events, kept here rather than printed.
    const deadErrors: unknown[] = [];
    a.hl.on('error', (e) => deadErrors.push(e));
    const b: StartedServer = await startServer({ store: storeFor(), nodeId: 'take-b', ownerLeaseMs: LEASE_MS, pollTimeoutMs: 1_000 });
    cleanup.add(() => b.close());
    assertTestScheme(b.url, 'node b');
    const s = await openRaw(a.url);
    assert.ok(a.hl.session(s.sid), 'A owns the session');
    const ws = await helloAt(b.url, s, 1);
    cleanup.add(() => ws.socket.terminate());
    assert.equal(b.hl.session(s.sid), undefined, 'B carries it for A');
    const taken = new Promise<Session>((resolve) => b.hl.once('session', resolve));
    dying.kill();
    // The owner's lease lapses.
    await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
    return { b, s, ws, taken };
  }

  for (const [name, makeStores] of storeKinds(cleanup, 'take')) {
    it(`a batch on the WebSocket: B takes the session over, delivers it, and its own sends reach the client (${name})`, async () => {
      const { ws, taken } = await rig(await makeStores());
      const got: string[] = [];
      const delivered = new Condition();
      void taken.then((session) => session.on('message', (m) => {
        got.push(String(m));
        delivered.notify();
      }));
      ws.socket.send(JSON.stringify({ ack: 0, seq: 1, n: 1 }));
      ws.socket.send('after the owner died');
      const session = await withTimeout(taken, 5_000, 'B to take the session over');
      assert.equal(session.resumed, true);
      await delivered.until(() => got.length >= 1, 5_000, () => 'the message delivered on B');
      assert.deepEqual(got, ['after the owner died']);
      await session.send('from B');
      for (;;) if ((await withTimeout(ws.next(), 5_000, '"from B" on the WebSocket')) === 'from B') break;
    });

    it(`nothing from the client: B takes the session over at the WebSocket's heartbeat (${name})`, async () => {
      const { ws, taken } = await rig(await makeStores());
      const session = await withTimeout(taken, 5_000, 'B to take the session over at a heartbeat (every second)');
      assert.equal(session.resumed, true);
      await session.send('from B');
      for (;;) if ((await withTimeout(ws.next(), 5_000, '"from B" on the WebSocket')) === 'from B') break;
    });
  }

  for (const cut of [true, false]) {
    it(`through the balancer: the owner dies mid-stream, its WebSocket ${cut ? 'cut' : 'left open'}; 2,000 each way exactly once, no reset`, async () => {
      const shared = new MemoryStore();
      const dying = killable(shared);
      const a = await nodeOn(cleanup, dying.store, 'take-lb-a', LEASE_MS);
      const b = await nodeOn(cleanup, shared, 'take-lb-b', LEASE_MS);
      const lb = await balance(cleanup, [a.origin, b.origin], { upgrades: true });
      const changed = new Condition();
      const atServer = recordAtServer([a, b], changed, { dropFlaggedRepeats: true });
      const { client, received: atClient, resets } = await recordingClient(cleanup, lb.origin, changed);
      const sid = client.sessionId ?? '';
      assert.ok(a.hl.session(sid), 'A owns the session it opened');
      await waitFor(() => client.transport === 'websocket', 10_000, 'the WebSocket up');
      const N = 2_000;
      /** The node that owns the session now, as the application sees it. */
      const current = (): Session | undefined => b.sessions.at(-1) ?? a.hl.session(sid);
      const streamed = streamAcrossOwners(client, current, N);
    await changed.until(() => atServer.length >= N / 4 && atClient.length >= N / 4, 30_000, () => 'a quarter of the stream');
      dying.kill();
      lb.drop(0);
      a.http.closeAllConnections();
      if (cut) lb.cutUpgraded();
      await withTimeout(streamed, 60_000, `sending across the takeover (client on ${client.transport})`);
      await changed.until(() => atServer.length >= N && atClient.length >= N, 60_000, () => `server has ${atServer.length}/${N}, client ${atClient.length}/${N}`);
      assertExactlyOnce(atServer, Array.from({ length: N }, (_, i) => key(message('up', i))), 'client to server (flagged repeats dropped)');
      assertExactlyOnce(atClient, Array.from({ length: N }, (_, i) => key(message('down', i))), 'server to client');
      assert.equal(b.sessions.length, 1, 'B took the session over once');
      assert.deepEqual(resets, [], 'the client never saw a reset');
    });
  }
});
