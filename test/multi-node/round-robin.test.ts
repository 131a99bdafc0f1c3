/**
 * Two HoldlineServers in one process sharing one store are two nodes of one
 * cluster; a client behind a plain round-robin balancer (every request to
 * the next node, no stickiness) is served by both:
 *
 * - 5,000 messages each way, mixed text and binary, arrive exactly once and
 *   in order, with no reset, while consecutive polls and sends alternate
 *   between the nodes; each side waits for the other's acks every 50
 *   messages (the owner's 'drain' after acks taken on either node). On one
 *   MemoryStore, and on a RedisStore per node.
 * - With nodeHeader, every answer names the node that gave it, and both
 *   names are seen.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { HoldlineServer, MemoryStore } from '../../server/index.js';
import type { Payload } from '../../shared/index.js';
import { attachNode, balance } from '../helpers/nodes.js';
import { Cleanup, withTimeout } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { assertExactlyOnce, balancedSession, clientAcked, key, message, sessionDrained, storeKinds, twoNodes } from './helpers.js';

/** Send messages 0..n-1 (message(prefix, i)) one by one, recording each one's key in `expected`; after every 50th, wait until `settled()`. */
async function sendNumbered(prefix: string, n: number, expected: string[], send: (m: Payload) => Promise<unknown>, settled: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) {
    const m = message(prefix, i);
    expected.push(key(m));
    await send(m);
    if (i % 50 === 49) await settled();
  }
}

describe('two servers, one store', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'rr')) it(`serve one session round-robin: 5,000 messages each way, mixed text and binary, exactly once and in order (${name})`, async () => {
    const { a, b, lb } = await twoNodes(cleanup, 'node', await makeStores());
    // https in the https run (scripts/test-https.ts): the client to the balancer, and the balancer to each node.
    assertTestScheme(lb.origin, 'the balancer');
    assertTestScheme(a.origin, 'node a');
    assertTestScheme(b.origin, 'node b');

    const N = 5_000;
    const { changed, atServer, client, atClient, resets, owner } = await balancedSession(cleanup, a, b, lb.origin);
    const sid = client.sessionId;

    const expectedUp: string[] = [];
    const expectedDown: string[] = [];
    const up = sendNumbered('up', N, expectedUp, (m) => client.send(m), () => clientAcked(client));
    const down = sendNumbered('down', N, expectedDown, (m) => owner.send(m), () => sessionDrained(owner));
    await withTimeout(Promise.all([up, down]), 60_000, 'sending');
    await changed.until(() => atServer.length >= N && atClient.length >= N, 60_000, () => `server has ${atServer.length}, client ${atClient.length} of ${N}`);
    assertExactlyOnce(atServer, expectedUp, 'client to server');
    assertExactlyOnce(atClient, expectedDown, 'server to client');
    assert.deepEqual(resets, [], 'the session never reset');
    assert.equal(client.sessionId, sid);

    // Consecutive requests alternated between the nodes, polls and sends alike.
    for (const [i, c] of lb.counts.entries()) {
      assert.ok((c.poll ?? 0) > 10, `node ${i} answered polls (${JSON.stringify(c)})`);
      assert.ok((c.send ?? 0) > 10, `node ${i} took sends (${JSON.stringify(c)})`);
    }
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  it('nodeHeader: every answer names the node that gave it, and a round-robin client is served by both', async () => {
    const store = new MemoryStore();
    const nodes = await Promise.all(['hdr-a', 'hdr-b'].map(async (nodeId) => {
      const hl = new HoldlineServer({ store, nodeId, nodeHeader: true, pollTimeoutMs: 500 });
      return (await attachNode(cleanup, hl)).origin;
    }));
    const lb = await balance(cleanup, nodes);
    const seen = new Set<string>();
    const open = await fetch(`${lb.origin}/holdline/open`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ v: 1, attempt: 'node-header-1' }) });
    const s = (await open.json()) as { sid: string; token: string };
    seen.add(open.headers.get('holdline-node') ?? '');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${lb.origin}/holdline/poll`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ...s, ack: 0, hold: 0 }) });
      assert.equal(res.status, 200);
      seen.add(res.headers.get('holdline-node') ?? '');
    }
    assert.deepEqual([...seen].sort(), ['hdr-a', 'hdr-b']);
  });
});
