/**
 * Two HoldlineServers on one Redis (a RedisStore each, one key prefix, on a
 * redis-server of this file's own) are two nodes of one cluster: a client
 * behind a round-robin balancer with no stickiness is served by both, then
 * one node leaves and the other takes the session over; every message both
 * ways arrives exactly once, in order, with no reset.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import type { Payload } from '../../shared/index.js';
import { balance, payloadKey as key, recordAtServer, recordingClient, startNode, type Node } from '../helpers/nodes.js';
import { Cleanup, Condition } from '../helpers/server.js';
import { freshPrefix, testRedis } from './helpers.js';

const { redis } = await testRedis();

describe('RedisStore: two HoldlineServers on one Redis', () => {
  const message = (prefix: string, i: number): Payload => (i % 3 === 2 ? new Uint8Array([i & 0xff, 0xff, 0]) : `${prefix}${i}`);

  test('round-robin with no stickiness, then one node leaves: every message both ways exactly once, in order, no reset', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const keyPrefix = freshPrefix();
    const changed = new Condition();
    const nodes: Node[] = [];
    for (const nodeId of ['redis-node-a', 'redis-node-b']) {
      const store = new RedisStore({ url: redis.url, keyPrefix });
      cleanup.add(() => store.close());
      nodes.push(await startNode(cleanup, { store, nodeId, pollTimeoutMs: 2_000 }));
    }
    // After the leave, what the old owner had not marked delivered comes again, flagged.
    const atServer = recordAtServer(nodes, changed, { dropFlaggedRepeats: true });
    const [a, b] = nodes;
    assert.ok(a && b);
    const lb = await balance(cleanup, [a.origin, b.origin]);
    const { client, received: atClient, resets } = await recordingClient(cleanup, lb.origin, changed);
    const first = a.sessions[0];
    assert.ok(first, 'the first open went to node A, which owns the session');

    const N = 200;
    const up = Array.from({ length: N }, (_, i) => message('up', i));
    const down = Array.from({ length: N }, (_, i) => message('down', i));
    await Promise.all([
      (async () => {
        for (const m of up.slice(0, N / 2)) await client.send(m);
      })(),
      (async () => {
        for (const m of down.slice(0, N / 2)) await first.send(m);
      })(),
    ]);
    await changed.until(() => atServer.length >= N / 2 && atClient.length >= N / 2, 30_000, () => `server ${atServer.length}, client ${atClient.length}`);
    for (const c of lb.counts) assert.ok((c.poll ?? 0) > 0 && (c.send ?? 0) > 0, `both nodes served polls and sends: ${JSON.stringify(lb.counts)}`);

    // A leaves: B takes the session over on its next request.
    lb.drop(0);
    await a.hl.close();
    for (const m of up.slice(N / 2)) await client.send(m);
    await changed.until(() => b.sessions.length > 0, 30_000, () => 'node B took the session over');
    const second = b.sessions[0];
    assert.ok(second?.resumed, 'the session on B is resumed');
    for (const m of down.slice(N / 2)) await second.send(m);
    await changed.until(() => atServer.length >= N && atClient.length >= N, 30_000, () => `server ${atServer.length}, client ${atClient.length}`);

    assert.deepEqual(atServer, up.map(key), 'client to server: each once, in order');
    assert.deepEqual(atClient, down.map(key), 'server to client: each once, in order');
    assert.deepEqual(resets, [], 'the session never reset');
    assert.deepEqual(nodes.flatMap((n) => n.errors), []);
  });
});
