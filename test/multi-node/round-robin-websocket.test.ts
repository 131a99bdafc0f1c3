/**
 * WebSockets behind a plain round-robin balancer that passes upgrades (as
 * nginx with the upgrade headers does), in front of two nodes sharing one
 * store: the deployment of several nodes without sticky sessions. With one
 * MemoryStore shared in this process, and with a RedisStore on each node
 * (one redis-server of the test's own).
 *
 * Each upgrade goes to the next node on its own turn, so successive
 * WebSockets of one session land on alternate nodes, and one of them is
 * served by the node that does not own the session. Between them the
 * balancer cuts the upgraded connection (no close frame): the client goes
 * on on polling, whose requests alternate between the nodes, and upgrades
 * again later. Messages flow both ways throughout, mixed text and binary,
 * and arrive exactly once and in order, with no reset.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Payload } from '../../shared/index.js';
import { balance } from '../helpers/nodes.js';
import { Cleanup, withTimeout } from '../helpers/server.js';
import { assertTestScheme, testTls, upgradesOverTls } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { assertExactlyOnce, balancedSession, clientAcked, key, message, nodeOn, sessionDrained, storeKinds } from './helpers.js';

/** WebSockets the session rides, each cut by the balancer but the last. */
const WEBSOCKETS = 4;
/** Messages each way while each WebSocket is up, and again on polling after each cut. */
const PER_STEP = 150;

describe('two servers on one store, WebSockets through a round-robin balancer', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  const stores = storeKinds(cleanup, 'rr-ws');

  for (const [name, makeStores] of stores) it(`successive WebSockets land on alternate nodes, owner or not; cuts fall back to polling; exactly once both ways (${name})`, async () => {
    const storeFor = await makeStores();
    const a = await nodeOn(cleanup, storeFor(), 'rr-ws-a');
    const b = await nodeOn(cleanup, storeFor(), 'rr-ws-b');
    const lb = await balance(cleanup, [a.origin, b.origin], { upgrades: true });
    assertTestScheme(lb.origin, 'the balancer');
    assertTestScheme(a.origin, 'node a');
    const overTls = [upgradesOverTls(a.http), upgradesOverTls(b.http)];

    const { changed, atServer, client, atClient, resets, owner, ownerIndex } = await balancedSession(cleanup, a, b, lb.origin);
    const sid = client.sessionId;
    const switches: string[] = [];
    client.on('transport', (e) => switches.push(e.transport));

    const expectedUp: string[] = [];
    const expectedDown: string[] = [];
    let next = 0;
    /** PER_STEP messages each way, one at a time, each side waiting for the other's acks now and then. */
    const step = async (what: string): Promise<void> => {
      const from = next;
      next += PER_STEP;
      const send = async (prefix: string, expected: string[], one: (m: Payload) => Promise<unknown>, settled: () => Promise<void>) => {
        for (let i = from; i < from + PER_STEP; i++) {
          const m = message(prefix, i);
          expected.push(key(m));
          await one(m);
          if (i % 50 === 49) await settled();
        }
      };
      await withTimeout(
        Promise.all([send('up', expectedUp, (m) => client.send(m), () => clientAcked(client)), send('down', expectedDown, (m) => owner.send(m), () => sessionDrained(owner))]),
        20_000,
        `sending (${what})`,
      ).catch((e: unknown) => {
        // Where it stuck: which side still waits for acks, what arrived, where the requests went.
        const state = { transport: client.transport, clientBuffered: client.bufferedAmount, ownerBuffered: owner.bufferedAmount, atServer: atServer.length, atClient: atClient.length, sentUp: expectedUp.length, sentDown: expectedDown.length, counts: lb.counts, switches };
        throw new Error(`${String(e)}; ${JSON.stringify(state)}`);
      });
    };

    /** The node that took each upgrade so far, by the balancer's counts. */
    const upgradesTo = (): number[] => lb.counts.map((c) => c.ws ?? 0);
    for (let n = 1; n <= WEBSOCKETS; n++) {
      await waitFor(() => client.transport === 'websocket', 10_000, `WebSocket ${n} up`);
      await step(`on WebSocket ${n}`);
      if (n === WEBSOCKETS) break;
      // Up for longer than reconnect.maxDelayMs (200 ms): a cut now is not a failed WebSocket, and the client upgrades again.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(lb.cutUpgraded(), 1, `one upgraded connection to cut (WebSocket ${n})`);
      await waitFor(() => client.transport === 'polling', 10_000, `back on polling after cut ${n}`);
      await step(`on polling after cut ${n}`);
    }

    const total = next;
    await changed.until(() => atServer.length >= total && atClient.length >= total, 30_000, () => `server has ${atServer.length}, client ${atClient.length} of ${total}`);
    assertExactlyOnce(atServer, expectedUp, 'client to server');
    assertExactlyOnce(atClient, expectedDown, 'server to client');
    assert.deepEqual(resets, [], 'the session never reset');
    assert.equal(client.sessionId, sid);

    // Every WebSocket was a new upgrade on the balancer, alternating between the nodes: half of them served by the node that does not own the session.
    const upgrades = upgradesTo();
    assert.equal((upgrades[0] ?? 0) + (upgrades[1] ?? 0), WEBSOCKETS, `one upgrade per WebSocket (${JSON.stringify(lb.counts)})`);
    assert.equal(upgrades[1 - ownerIndex], WEBSOCKETS / 2, `the node that does not own the session served WebSockets too (${JSON.stringify(lb.counts)})`);
    assert.deepEqual(switches.slice(0, 2 * WEBSOCKETS - 1), Array.from({ length: 2 * WEBSOCKETS - 1 }, (_, i) => (i % 2 === 0 ? 'websocket' : 'polling')));
    // On polling, between the WebSockets, consecutive polls went to both nodes.
    for (const [i, c] of lb.counts.entries()) assert.ok((c.poll ?? 0) > 0, `node ${i} answered polls (${JSON.stringify(c)})`);
    // The nodes saw each upgrade over TLS in the https run, in the clear otherwise.
    assert.deepEqual(overTls.map((seen) => seen.length), upgrades);
    assert.ok(overTls.flat().every((tls) => tls === testTls()), `upgrades over TLS: ${JSON.stringify(overTls)}`);
    assert.deepEqual([...a.errors, ...b.errors], []);
  });
});
