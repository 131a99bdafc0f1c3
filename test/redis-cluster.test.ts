/**
 * Scale-out on Redis, with real separate node processes: three Holdline
 * nodes (test/fixtures/cluster-node.ts, each its own `node` process with a
 * RedisStore) behind a real nginx doing plain round robin (no stickiness,
 * keep-alive upstreams), on a redis-server of this file's own (never the
 * machine's). The client runs here and reaches the nodes only through nginx.
 *
 * - 20,000 messages each way, mixed text and binary, exactly once and in
 *   order, while one client's consecutive requests land on different nodes
 *   (nginx's access log names the upstream of every request; probes show its
 *   addresses and the Holdline-Node header agree).
 * - A node that never saw a session's client sends to it (hl.remote(id)).
 * - After sessions close (by the client, by the server) or expire (idle),
 *   Redis holds no key of theirs (SCAN over the prefix; tombstones go by TTL).
 * - Redis restarted without persistence (on the same port): the client gets
 *   `reset` with exactly the messages it sent and never had acknowledged;
 *   nothing is dropped silently, and the new session works.
 *
 * The owner crash (kill -9) and the rolling restart are in
 * test/redis-cluster-crash.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { HoldlineClient } from '../client/index.js';
import type { ResetEvent } from '../client/events.js';
import { Cluster, downMessage, messageKey, upMessage, type NodeProcess } from './helpers/cluster.js';
import { Cleanup } from './helpers/server.js';
import { startNginx, type NginxAccessEntry, type NginxProxy } from './middlebox/nginx.js';
import { startRedis, type RedisServer } from './middlebox/redis.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
const upKeys = (from: number, to: number): string[] => range(from, to).map((i) => messageKey(upMessage(i)));
const downKeys = (from: number, to: number, gen: number): string[] => range(from, to).map((i) => messageKey(downMessage(i, gen)));

/** Resolves once the client's sends so far are acknowledged. */
function clientAcked(client: HoldlineClient): Promise<void> {
  if (client.bufferedAmount === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (client.bufferedAmount !== 0) return;
      client.off('ack', check);
      resolve();
    };
    client.on('ack', check);
  });
}

/** The first index where two lists differ, for a readable failure instead of a 20,000-line diff. */
function assertSameList(got: readonly string[], want: readonly string[], what: string): void {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) assert.fail(`${what}: item ${i} is ${got[i]}, expected ${want[i]}`);
  assert.equal(got.length, want.length, `${what}: ${got.length} items, expected ${want.length}`);
}

describe('Scale-out on Redis: three node processes behind nginx round robin', { timeout: 150_000 }, () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let redis: RedisServer;
  let inspector: Redis;
  let cluster: Cluster;
  let nodes: NodeProcess[];
  let nginx: NginxProxy;
  let redisAgain: RedisServer | undefined;
  const keyPrefix = `hc${process.pid}:`;
  const IDLE_MS = 2_000;

  before(async () => {
    redis = await startRedis();
    // Stopped after everything else, also when the last test restarted it (clients and nodes first).
    cleanup.add(() => Promise.all([redis.stop(), redisAgain?.stop()]));
    inspector = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 2 });
    inspector.on('error', () => undefined);
    cleanup.add(() => inspector.disconnect());
    cluster = new Cluster({ redisUrl: redis.url, keyPrefix, ownerLeaseMs: 1_000, pollTimeoutMs: 1_000, sessionIdleTimeoutMs: IDLE_MS });
    cleanup.add(() => cluster.stop());
    nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => cluster.start(id)));
    nginx = await startNginx({ upstreams: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) });
    cleanup.add(() => nginx.stop());
  });

  const newClient = (): HoldlineClient => {
    const c = new HoldlineClient(`${nginx.url}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => c.close());
    return c;
  };

  /** The node that reported `session` for `sid` last (its owner, as far as the application knows). */
  const ownerOf = async (sid: string): Promise<NodeProcess> => {
    await cluster.changed.until(() => cluster.sessions.some((s) => s.sid === sid), 10_000, () => `a node announces session ${sid}`);
    const seen = cluster.sessions.filter((s) => s.sid === sid).at(-1);
    const node = seen === undefined ? undefined : cluster.byId(seen.node);
    assert.ok(node, `the owner of ${sid} is one of our nodes`);
    return node;
  };

  /** Every key under our prefix (SCAN, bounded). */
  const keysUnder = async (): Promise<string[]> => {
    const keys: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 10_000; i++) {
      const [next, batch] = await inspector.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') return keys.sort();
    }
    assert.fail('SCAN did not finish');
  };

  let exchanged: { client: HoldlineClient; sid: string } | undefined;
  let remoteSid = '';
  let remoteClient: HoldlineClient | undefined;

  it('20,000 messages each way, mixed text and binary: exactly once, in order; consecutive requests land on different nodes', async (t) => {
    const N = 20_000;
    const errorsBefore = cluster.errors.length;
    const client = newClient();
    const atClient: string[] = [];
    const resets: ResetEvent[] = [];
    client.on('message', (m) => {
      atClient.push(messageKey(m));
      if (atClient.length % 500 === 0 || atClient.length === N) cluster.changed.notify();
    });
    client.on('reset', (e) => resets.push(e));
    const started = Date.now();
    await client.connect();
    const sid = client.sessionId ?? '';
    const owner = await ownerOf(sid);

    // Both sides paced, so that the streams take many requests (not a few huge batches): the
    // owner sends in chunks of 100, each a command it answers once the sends resolved; the
    // client waits for its acks every 100 messages.
    const CHUNK = 100;
    const down = (async () => {
      for (let from = 0; from < N; from += CHUNK) {
        const r = await owner.command({ cmd: 'send', sid, from, count: CHUNK, gen: 0, remote: false });
        assert.ok(r.ok, `the owner sent ${from}..: ${r.code ?? ''} ${r.message ?? ''}`);
      }
    })();
    for (let i = 0; i < N; i++) {
      await client.send(upMessage(i));
      if (i % CHUNK === CHUNK - 1) await clientAcked(client);
    }
    await down;
    await cluster.changed.until(
      () => atClient.length >= N && cluster.delivered(sid).length >= N,
      120_000,
      () => `client has ${atClient.length}/${N}, the owner delivered ${cluster.delivered(sid).length}/${N}`,
    );
    const ms = Date.now() - started;
    // A moment more, so that a late duplicate would show.
    await new Promise((r) => setTimeout(r, 300));

    const delivered = cluster.delivered(sid);
    assertSameList(atClient, downKeys(0, N, 0), 'server to client');
    assertSameList(delivered.map((m) => m.key), upKeys(0, N), 'client to server');
    assert.deepEqual([...new Set(delivered.map((m) => m.node))], [owner.nodeId], 'the owner delivered every message');
    assert.equal(delivered.filter((m) => m.redelivered).length, 0, 'nothing flagged: no owner changed');
    assert.deepEqual(resets, [], 'no reset');
    assert.deepEqual(cluster.errors.slice(errorsBefore), [], 'no node reported an error');

    // Where nginx sent this client's requests, from its access log ($upstream_addr), request by request.
    const nodeOf = (e: NginxAccessEntry): string => {
      const port = Number((e.upstream ?? '').split(', ').at(-1)?.split(':').at(-1));
      return cluster.byPort(port)?.nodeId ?? `? ${e.upstream ?? ''}`;
    };
    const log = (await nginx.accessLog()).filter((e) => e.uri === '/holdline/poll' || e.uri === '/holdline/send');
    const byNode = new Map<string, Record<string, number>>();
    for (const e of log) {
      const c = byNode.get(nodeOf(e)) ?? {};
      const endpoint = e.uri.slice('/holdline/'.length);
      c[endpoint] = (c[endpoint] ?? 0) + 1;
      byNode.set(nodeOf(e), c);
    }
    assert.deepEqual([...byNode.keys()].sort(), ['n1', 'n2', 'n3'], 'nginx sent requests to all three nodes');
    for (const [node, c] of byNode) assert.ok((c.poll ?? 0) > 0 && (c.send ?? 0) > 0, `${node} served polls and sends: ${JSON.stringify(c)}`);
    let switches = 0;
    for (let i = 1; i < log.length; i++) {
      const [a, b] = [log[i - 1], log[i]];
      if (a && b && nodeOf(a) !== nodeOf(b)) switches++;
    }
    assert.ok(switches >= (log.length - 1) / 2, `consecutive requests change node: ${switches} of ${log.length - 1}`);
    // The nodes' own counts agree: each served requests of this client.
    for (const n of nodes) {
      const r = await n.command({ cmd: 'stats' });
      assert.ok(r.ok && (r.requests?.poll ?? 0) > 0 && (r.requests?.send ?? 0) > 0, `${n.nodeId} counts polls and sends: ${JSON.stringify(r.requests)}`);
    }

    // The Holdline-Node header and nginx's upstream address name the same node (probes with a query of their own).
    const named = new Set<string>();
    for (let k = 0; k < 9; k++) {
      const res = await fetch(`${nginx.url}/holdline/poll?probe=${k}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ sid: 'probe-no-such-session', token: 'probe-token-000000000000', ack: 0, hold: 0 }),
      });
      await res.arrayBuffer();
      const header = res.headers.get('holdline-node') ?? '';
      const entry = await nginx.waitForAccessEntry((e) => e.uri === `/holdline/poll?probe=${k}`);
      assert.equal(header, nodeOf(entry), `probe ${k}: Holdline-Node is the node nginx's log names`);
      named.add(header);
    }
    assert.deepEqual([...named].sort(), ['n1', 'n2', 'n3'], 'consecutive probes answered by each node in turn');

    t.diagnostic(`20,000 each way through nginx to 3 nodes in ${ms} ms; requests (poll/send) per node: ${JSON.stringify(Object.fromEntries(byNode))}; ` +
      `${switches} of ${log.length - 1} consecutive requests changed node`);
    exchanged = { client, sid };
  });

  it('a node that never saw the client sends to its session (hl.remote(id).send())', async (t) => {
    // A fourth node on the same Redis, not behind nginx: no request of any client reaches it.
    const outside = await cluster.start('outside');
    const client = newClient();
    const got: string[] = [];
    client.on('message', (m) => {
      got.push(messageKey(m));
      cluster.changed.notify();
    });
    await client.connect();
    const sid = client.sessionId ?? '';
    remoteSid = sid;
    remoteClient = client;
    const owner = await ownerOf(sid);
    assert.notEqual(owner.nodeId, 'outside');
    const M = 300;
    const r = await outside.command({ cmd: 'send', sid, from: 0, count: M, gen: 9, remote: true });
    assert.ok(r.ok, `remote send: ${r.code ?? ''} ${r.message ?? ''}`);
    await cluster.changed.until(() => got.length >= M, 30_000, () => `client has ${got.length}/${M}`);
    await new Promise((res) => setTimeout(res, 200));
    assertSameList(got, downKeys(0, M, 9), 'from the outside node, exactly once, in order');
    const stats = await outside.command({ cmd: 'stats' });
    assert.deepEqual(stats.requests, {}, 'the outside node served no request');
    assert.equal(stats.sessions, 0, 'and owns no session');
    const unknown = await outside.command({ cmd: 'send', sid: 'no-such-session-id', from: 0, count: 1, gen: 0, remote: true });
    assert.deepEqual([unknown.ok, unknown.code], [false, 'session_unknown'], 'a session that does not exist: the remote send says so');
    await outside.close();
    t.diagnostic(`${M} messages from a node outside the balancer reached the client of ${owner.nodeId}'s session`);
  });

  it('after sessions close or expire, Redis holds no key of theirs (tombstones go by TTL)', async (t) => {
    assert.ok(exchanged, 'the 20,000-message test ran');
    const sidsGone: string[] = [exchanged.sid];
    // Closed by the client: a tombstone (client_closed) for IDLE_MS.
    const closedByClient = exchanged.sid;
    await exchanged.client.close();
    // Closed by the server, through any node: a tombstone (server_closed).
    const c2 = newClient();
    const closedWith: string[] = [];
    c2.on('close', (reason) => {
      closedWith.push(reason.code);
      cluster.changed.notify();
    });
    await c2.connect();
    const serverClosed = c2.sessionId ?? '';
    sidsGone.push(serverClosed);
    const r = await nodes[0]?.command({ cmd: 'closeSession', sid: serverClosed });
    assert.ok(r?.ok);
    await cluster.changed.until(() => cluster.closes.some((c) => c.sid === serverClosed), 10_000, () => 'the owner closed it');
    // Its client learns why, and closes.
    await cluster.changed.until(() => closedWith.length > 0, 10_000, () => 'the client of the server-closed session closes');
    assert.deepEqual(closedWith, ['server_closed']);
    // Expired: opened and never used (no poll, no send).
    const opened = await fetch(`${nginx.url}/holdline/open`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ v: 1, attempt: `never-used-${process.pid}` }),
    });
    const idle = ((await opened.json()) as { sid: string }).sid;
    sidsGone.push(idle);
    const ofSession = (keys: string[], sid: string): string[] => keys.filter((k) => k.includes(`{${sid}}`));
    const before = await keysUnder();
    assert.ok(ofSession(before, closedByClient).some((k) => k.endsWith(':grave')), 'the client-closed session left a tombstone');
    assert.ok(ofSession(before, serverClosed).some((k) => k.endsWith(':grave')), 'the server-closed session left a tombstone');
    assert.ok(ofSession(before, idle).some((k) => k.endsWith(':meta')), 'the unused session is in Redis');

    const started = Date.now();
    await cluster.changed.until(() => cluster.closes.some((c) => c.sid === idle && c.code === 'idle_timeout'), 20_000, () => 'the unused session expired');
    // Tombstones live IDLE_MS; then nothing of these sessions may be left.
    const deadline = Date.now() + 20_000;
    let left: string[] = [];
    for (;;) {
      const keys = await keysUnder();
      left = keys.filter((k) => sidsGone.some((sid) => k.includes(`{${sid}}`)) || k.includes('attempt:'));
      if (left.length === 0 || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.deepEqual(left, [], 'no key of the closed and expired sessions, and no attempt key');
    assert.ok(ofSession(await keysUnder(), remoteSid).some((k) => k.endsWith(':meta')), 'an open session (its client polls) keeps its keys');
    // Its client closes too: then nothing is left under the prefix but the nodes' heartbeats.
    await remoteClient?.close();
    const heartbeats = nodes.map((n) => `${keyPrefix}node:{${n.nodeId}}`).sort();
    const until = Date.now() + 20_000;
    let all: string[] = [];
    for (;;) {
      all = await keysUnder();
      if (all.every((k) => heartbeats.includes(k)) || Date.now() > until) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // (A node with no session to serve stops beating: its heartbeat key goes by its TTL too.)
    assert.deepEqual(all.filter((k) => !heartbeats.includes(k)), [], 'every session closed or expired: nothing is left but node heartbeats');
    t.diagnostic(`keys gone ${Date.now() - started} ms after the idle session's expiry began (sessionIdleTimeoutMs ${IDLE_MS}, tombstone TTL ${IDLE_MS})`);
  });

  it('Redis restarted without persistence: reset with exactly the unacknowledged messages; nothing dropped silently', async (t) => {
    const client = newClient();
    const sent: string[] = [];
    let acked = 0;
    const atClient: { sid: string; key: string }[] = [];
    const resets: { e: ResetEvent; acked: number; sent: number }[] = [];
    client.on('ack', (total) => {
      acked = total;
      cluster.changed.notify();
    });
    client.on('message', (m) => {
      atClient.push({ sid: client.sessionId ?? '', key: messageKey(m) });
      cluster.changed.notify();
    });
    client.on('reset', (e) => {
      resets.push({ e, acked, sent: sent.length });
      cluster.changed.notify();
    });
    const send = async (i: number): Promise<void> => {
      sent.push(messageKey(upMessage(i)));
      await client.send(upMessage(i));
    };
    await client.connect();
    const sid = client.sessionId ?? '';
    const owner = await ownerOf(sid);

    // Before: 300 each way, all acknowledged and delivered.
    const K = 300;
    const down = await owner.command({ cmd: 'send', sid, from: 0, count: K, gen: 0, remote: false });
    assert.ok(down.ok);
    for (let i = 0; i < K; i++) await send(i);
    await cluster.changed.until(
      () => acked >= K && atClient.length >= K && cluster.delivered(sid).length >= K,
      30_000,
      () => `acked ${acked}, client has ${atClient.length}, server ${cluster.delivered(sid).length}`,
    );

    // Redis goes away, and comes back empty on the same port.
    const port = redis.port;
    await redis.stop();
    const lostAt = Date.now();
    const M = 100;
    for (let i = K; i < K + M; i++) await send(i);
    // The owner's application sends during the outage: it must learn the outcome (no silent drop).
    const during = owner.command({ cmd: 'send', sid, from: K, count: 10, gen: 0, remote: false });
    await new Promise((r) => setTimeout(r, 1_000));
    redisAgain = await startRedis({ port });

    await cluster.changed.until(() => resets.length > 0, 30_000, () => 'the client resets');
    const [reset] = resets;
    assert.ok(reset);
    assert.equal(reset.e.previousSessionId, sid);
    assert.equal(reset.acked, K, 'what was acknowledged before the restart stayed acknowledged');
    assertSameList(reset.e.lost.map(messageKey), sent.slice(reset.acked, reset.sent), 'lost: exactly the messages sent and never acknowledged');
    assertSameList(reset.e.lost.map(messageKey), upKeys(K, K + M), 'lost: the messages sent while Redis was away');
    // Nothing silently dropped: each message sent on the old session was delivered to the application or is in `lost`.
    assertSameList(cluster.delivered(sid).map((m) => m.key), upKeys(0, K), 'the old session delivered exactly what was acknowledged');
    const outcome = await during;
    assert.equal(outcome.ok, false, `a send() during the outage did not resolve: it failed (${outcome.code ?? ''})`);
    assertSameList(atClient.filter((m) => m.sid === sid).map((m) => m.key), downKeys(0, K, 0), 'the client got every committed message of the old session');

    // The new session works, both ways.
    const newSid = reset.e.sessionId;
    assert.notEqual(newSid, sid);
    const newOwner = await ownerOf(newSid);
    const fresh = cluster.sessions.filter((s) => s.sid === newSid);
    assert.deepEqual(fresh.map((s) => s.resumed), [false], 'a new session, announced once, not resumed');
    const J = 50;
    const r = await newOwner.command({ cmd: 'send', sid: newSid, from: 0, count: J, gen: 1, remote: false });
    assert.ok(r.ok, `send on the new session: ${r.code ?? ''}`);
    for (let i = 1000; i < 1000 + J; i++) await send(i);
    await cluster.changed.until(
      () => atClient.filter((m) => m.sid === newSid).length >= J && cluster.delivered(newSid).length >= J,
      30_000,
      () => `the new session carries messages both ways: client has ${atClient.filter((m) => m.sid === newSid).length}, server ${cluster.delivered(newSid).length}; ` +
        `owner ${newOwner.nodeId}; errors ${JSON.stringify(cluster.errors.slice(-5))}`,
    );
    assertSameList(atClient.filter((m) => m.sid === newSid).map((m) => m.key), downKeys(0, J, 1), 'new session, server to client');
    assertSameList(cluster.delivered(newSid).map((m) => m.key), upKeys(1000, 1000 + J), 'new session, client to server');
    assert.equal(resets.length, 1, 'one reset');
    // The owner ends the lost session (its application hears close): at its next heartbeat (session_unknown),
    // or, here where IDLE_MS is short, when its idle check finds no trace of the client in the store.
    await cluster.changed.until(() => cluster.closes.some((c) => c.sid === sid), 30_000, () => 'the owner closes the lost session');
    const ended = cluster.closes.filter((c) => c.sid === sid);
    assert.equal(ended.length, 1, `closed once: ${JSON.stringify(ended)}`);
    assert.equal(ended[0]?.node, owner.nodeId, 'on its owner');
    assert.ok(['session_unknown', 'idle_timeout'].includes(ended[0]?.code ?? ''), `code ${ended[0]?.code ?? ''}`);
    await client.close();
    t.diagnostic(`reset ${Date.now() - lostAt} ms after Redis stopped (down ~1 s); lost ${reset.e.lost.length}; the down send during the outage failed with ${outcome.code ?? ''}`);
  });
});
