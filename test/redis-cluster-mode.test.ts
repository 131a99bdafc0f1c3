/**
 * RedisStore on a real Redis Cluster: three masters (redis-server
 * --cluster-enabled yes, each our child on a free loopback port, no
 * persistence), joined by `redis-cli --cluster create`, used through an
 * ioredis `Cluster` client as a user would pass it (`client` option). The
 * store conformance suite runs against it with two handles, as two nodes
 * would have (each its own Cluster client): every per-session script must
 * stay in one slot, and the store's pipelines must be split by the node
 * that serves each slot, or Redis and ioredis refuse them. Then two
 * HoldlineServers carry one session across the cluster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { HoldlineClient } from '../client/index.js';
import { RedisStore } from '../server/redis.js';
import { HoldlineServer, type Session } from '../server/index.js';
import { keySlot } from '../server/redis-pipeline.js';
import type { SessionStore } from '../server/store.js';
import { roundRobin } from './helpers/round-robin.js';
import { attachNode } from './helpers/nodes.js';
import { Cleanup, Condition } from './helpers/server.js';
import { startRedis, type RedisServer } from './middlebox/redis.js';
import { ensureExecutable } from './middlebox/system.js';
import { storeConformance } from './store-conformance/index.js';

const run = promisify(execFile);

/** Three masters on free ports, then the cluster made of them; resolves once every node says cluster_state:ok. */
async function startCluster(): Promise<RedisServer[]> {
  const masters: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      masters.push(
        await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'] }),
      );
    }
    const cli = await ensureExecutable({ name: 'redis-cli', debianPackage: 'redis-tools' });
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`);
    await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Bounded: the nodes agree within a few seconds of the create.
    for (let i = 0; ; i++) {
      const states = await Promise.all(masters.map(async (m) => (await run(cli, ['-p', String(m.port), 'cluster', 'info'], { timeout: 5_000 })).stdout));
      if (states.every((s) => s.includes('cluster_state:ok'))) return masters;
      if (i >= 200) throw new Error(`the cluster did not come up: ${states.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await Promise.all(masters.map((m) => m.stop()));
    throw e;
  }
}

const masters = await startCluster();
const clients: Cluster[] = [];
/** A Cluster client as an application makes one (its own per node of ours). */
function clusterClient(): Cluster {
  const c = new Cluster(masters.map((m) => ({ host: '127.0.0.1', port: m.port })));
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}
after(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(masters.map((m) => m.stop()));
});

let prefixes = 0;
const freshPrefix = (): string => `c${++prefixes}-${process.pid}:`;

const handleA = clusterClient();
const handleB = clusterClient();
storeConformance('RedisStore on Redis Cluster', () => new RedisStore({ client: handleA, keyPrefix: freshPrefix() }), {
  connect: (first: SessionStore) => {
    assert.ok(first instanceof RedisStore);
    return new RedisStore({ client: handleB, keyPrefix: first.keyPrefix });
  },
});

describe('RedisStore on Redis Cluster: slots', () => {
  before(async () => {
    await handleA.ping();
  });

  test("the store's slot of a key is Redis's (CLUSTER KEYSLOT), hash tags included", async () => {
    const keys = ['foo', 'holdline:{abc}:meta', 'holdline:{abc}:out', 'x{}y', '{}', 'h\u00e9llo{s\u00efd}', 'a{b}{c}', 'holdline:sessions'];
    for (const key of keys) {
      const node = handleA.nodes('master')[0];
      assert.ok(node);
      assert.equal(keySlot(key), Number(await node.call('CLUSTER', 'KEYSLOT', key)), key);
    }
  });

  test("a broadcast's scripts land on all three masters, and every one gets through", async (t) => {
    const store = new RedisStore({ client: handleA, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = Array.from({ length: 300 }, (_, i) => `s${i}`);
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    const results = await Promise.all(sids.map((sid) => store.enqueue(sid, [{ wire: 'hi', bytes: 2 }])));
    assert.deepEqual(new Set(results.map((r) => r.lastSeq)), new Set([1]));
    const perMaster = await Promise.all(handleA.nodes('master').map(async (n) => Number(await n.dbsize())));
    assert.equal(perMaster.length, 3);
    for (const n of perMaster) assert.ok(n > 0, `each master holds some sessions' keys: ${JSON.stringify(perMaster)}`);
    assert.equal(await store.count(), 300);
  });
});

describe('RedisStore on Redis Cluster: two HoldlineServers', () => {
  test('one session served by both nodes round-robin, then one node leaves: both ways exactly once, in order, no reset', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const keyPrefix = freshPrefix();
    const atServer: string[] = [];
    const atClient: string[] = [];
    const errors: unknown[] = [];
    const changed = new Condition();
    const nodes: { hl: HoldlineServer; origin: string; sessions: Session[] }[] = [];
    for (const nodeId of ['cluster-node-a', 'cluster-node-b']) {
      const store = new RedisStore({ client: clusterClient(), keyPrefix });
      cleanup.add(() => store.close());
      const hl = new HoldlineServer({ store, nodeId, pollTimeoutMs: 2_000 });
      hl.on('error', (e) => errors.push(e));
      const sessions: Session[] = [];
      hl.on('session', (s) => {
        sessions.push(s);
        s.on('message', (m, info) => {
          if (typeof m !== 'string') return;
          if (info?.redelivered === true && atServer.includes(m)) return;
          atServer.push(m);
          changed.notify();
        });
      });
      const { origin } = await attachNode(cleanup, hl);
      nodes.push({ hl, origin, sessions });
    }
    const [a, b] = nodes;
    assert.ok(a && b);
    const lb = await roundRobin([a.origin, b.origin]);
    cleanup.add(() => lb.close());
    const client = new HoldlineClient(`${lb.origin}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.on('message', (m) => {
      if (typeof m === 'string') atClient.push(m);
      changed.notify();
    });
    await client.connect();
    const first = a.sessions[0];
    assert.ok(first, 'node A opened the session');
    const N = 100;
    const up = Array.from({ length: N }, (_, i) => `up${i}`);
    const down = Array.from({ length: N }, (_, i) => `down${i}`);
    for (const m of up.slice(0, N / 2)) await client.send(m);
    for (const m of down.slice(0, N / 2)) await first.send(m);
    await changed.until(() => atServer.length >= N / 2 && atClient.length >= N / 2, 30_000, () => `server ${atServer.length}, client ${atClient.length}`);
    for (const c of lb.counts) assert.ok((c.poll ?? 0) > 0, `both nodes served polls: ${JSON.stringify(lb.counts)}`);

    lb.drop(0);
    await a.hl.close();
    for (const m of up.slice(N / 2)) await client.send(m);
    await changed.until(() => b.sessions.length > 0, 30_000, () => 'node B took the session over');
    const second = b.sessions[0];
    assert.ok(second?.resumed, 'resumed on B');
    for (const m of down.slice(N / 2)) await second.send(m);
    await changed.until(() => atServer.length >= N && atClient.length >= N, 30_000, () => `server ${atServer.length}, client ${atClient.length}`);
    assert.deepEqual(atServer, up);
    assert.deepEqual(atClient, down);
    assert.deepEqual(resets, []);
    assert.deepEqual(errors, []);
  });
});
