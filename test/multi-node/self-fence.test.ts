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
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../../server/index.js';
import { balance, recordingClient } from '../helpers/nodes.js';
import { Cleanup, Condition, openRaw, post, startServer, withTimeout } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { helloAt, killable, nodeOn, storeKinds } from './helpers.js';

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
