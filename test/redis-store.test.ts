/**
 * RedisStore against the store conformance suite (test/store-conformance/),
 * on a redis-server of this test's own (test/middlebox/redis.ts: a free
 * loopback port, never the machine's Redis). Node B's handle is a second
 * RedisStore on the same server, as another node would have; each test gets
 * its own keyPrefix, so count() and heartbeats see only its own keys.
 *
 * Then what is Redis's own: nothing of a session is left after it closes or
 * expires, one subscriber connection per store, options, a caller's client,
 * and readOutbound giving the very batches MemoryStore gives.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Redis } from 'ioredis';
import { HoldlineClient } from '../client/index.js';
import { RedisStore } from '../server/redis.js';
import { HoldlineServer, MemoryStore, type Session } from '../server/index.js';
import { encodeEntry, HoldlineError, type OutboxEntry, type Payload } from '../shared/index.js';
import type { SessionStore, StoreEvent } from '../server/store.js';
import { roundRobin } from './helpers/round-robin.js';
import { Cleanup, closeHttpServer, Condition, listen } from './helpers/server.js';
import { startRedis } from './middlebox/redis.js';
import { storeConformance } from './store-conformance/index.js';

const redis = await startRedis();
/** A client of the test's own server, for looking at keys. */
const inspector = new Redis(redis.url, { lazyConnect: false });
after(async () => {
  // The inspector first: a client left open would try to reconnect to the stopped server.
  await inspector.quit();
  await redis.stop();
});

let prefixes = 0;
const freshPrefix = (): string => `t${++prefixes}-${process.pid}:`;

function prefixOf(store: SessionStore): string {
  assert.ok(store instanceof RedisStore, 'the first handle is a RedisStore');
  return store.keyPrefix;
}

storeConformance('RedisStore', () => new RedisStore({ url: redis.url, keyPrefix: freshPrefix() }), {
  connect: (first) => new RedisStore({ url: redis.url, keyPrefix: prefixOf(first) }),
});

/** Every key under `prefix` (SCAN, bounded). */
async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, batch] = await inspector.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') return keys.sort();
  }
  assert.fail('SCAN did not finish');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A session with something in every key: an attempt, both streams, liveness, an owner's claim. */
async function busySession(store: SessionStore, sid: string): Promise<void> {
  await store.create({ sid, token: `tok-${sid}`, attempt: `att-${sid}` }, 'node-A');
  await store.enqueue(sid, [encodeEntry('out-1'), encodeEntry(new Uint8Array([1, 2, 3]))]);
  await store.acceptInbound(sid, 1, ['in-1', new Uint8Array([9])]);
  await store.touch(sid, Date.now() + 1000);
  await store.claim(sid, 'node-A');
}

describe('RedisStore: Redis keys', () => {
  test("one session's keys share a hash tag, and each has a TTL no longer than ttlMs", async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix(), ttlMs: 60_000 });
    t.after(() => store.close());
    await busySession(store, 'sid-ttl');
    const keys = (await keysUnder(store.keyPrefix)).filter((k) => k.includes('{sid-ttl}'));
    assert.deepEqual(keys.map((k) => k.slice(store.keyPrefix.length)), ['{sid-ttl}:in', '{sid-ttl}:meta', '{sid-ttl}:out']);
    for (const k of [...keys, `${store.keyPrefix}attempt:{att-sid-ttl}`]) {
      const pttl = await inspector.pttl(k);
      assert.ok(pttl > 0 && pttl <= 60_000, `${k}: PTTL ${pttl}`);
    }
  });

  test('after delete nothing of a session is left but its tombstone; after the tombstone TTL, nothing', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    await busySession(store, 'sid-gone');
    await busySession(store, 'sid-buried');
    await store.heartbeat('node-A', 150);
    await store.delete('sid-gone');
    await store.delete('sid-buried', { reason: { code: 'server_closed', message: 'test' }, ttlMs: 150 });
    assert.equal(await store.count(), 0);
    assert.deepEqual(await keysUnder(store.keyPrefix), [`${store.keyPrefix}node:{node-A}`, `${store.keyPrefix}{sid-buried}:grave`]);
    await sleep(300);
    assert.deepEqual(await keysUnder(store.keyPrefix), []);
  });

  test('a session nobody serves expires with all its keys; count() stops counting it', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix(), ttlMs: 200 });
    t.after(() => store.close());
    for (let i = 0; i < 5; i++) await busySession(store, `sid-exp-${i}`);
    assert.equal(await store.count(), 5);
    assert.notDeepEqual(await keysUnder(store.keyPrefix), []);
    await sleep(450);
    assert.equal(await store.get('sid-exp-0'), undefined);
    assert.equal(await store.findByAttempt('att-sid-exp-0'), undefined);
    assert.equal(await store.count(), 0, 'the expired sessions are not counted');
    assert.deepEqual(await keysUnder(store.keyPrefix), [], 'no key of theirs is left (the count index pruned by count())');
  });

  test('a session in use outlives ttlMs: every operation on it refreshes its keys', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix(), ttlMs: 200 });
    t.after(() => store.close());
    await store.create({ sid: 'sid-used', token: 'tok', attempt: '' }, 'node-A');
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      await store.readOutbound('sid-used', 1000); // a poll answered
    }
    assert.equal(await store.count(), 1, 'counted with its real expiry');
    assert.equal((await store.get('sid-used'))?.token, 'tok');
  });
});

describe('RedisStore: wake-ups', () => {
  test('publish on one handle reaches subscribers on another, over one subscriber connection per store', async (t) => {
    const keyPrefix = freshPrefix();
    const a = new RedisStore({ url: redis.url, keyPrefix });
    const b = new RedisStore({ url: redis.url, keyPrefix });
    t.after(() => a.close());
    t.after(() => b.close());
    const heard: [string, string, StoreEvent][] = [];
    for (const tag of ['b1', 'b2', 'b3']) t.after(b.subscribe((sid, event) => heard.push([tag, sid, event])));
    t.after(a.subscribe(() => undefined));
    const deadline = Date.now() + 5000;
    while ((await inspector.pubsub('NUMSUB', `${keyPrefix}events`))[1] !== 2) {
      assert.ok(Date.now() < deadline, 'both stores subscribed within 5 s');
      await sleep(10);
    }
    const event: StoreEvent = { type: 'ack', node: 'node-A', ack: 3, bufferedBytes: 10 };
    await a.publish('sid-x', event);
    while (heard.length < 3) {
      assert.ok(Date.now() < deadline, 'the event arrived within 5 s');
      await sleep(5);
    }
    assert.deepEqual(heard, [['b1', 'sid-x', event], ['b2', 'sid-x', event], ['b3', 'sid-x', event]]);
    assert.deepEqual(await inspector.pubsub('NUMSUB', `${keyPrefix}events`), [`${keyPrefix}events`, 2], 'two stores, two subscriber connections');
  });

  test('stores with different prefixes hear nothing of each other', async (t) => {
    const a = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    const b = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => a.close());
    t.after(() => b.close());
    const onA: string[] = [];
    const onB: string[] = [];
    t.after(a.subscribe((sid) => onA.push(sid)));
    t.after(b.subscribe((sid) => onB.push(sid)));
    const deadline = Date.now() + 5000;
    while (onA.length === 0 || onB.length === 0) {
      assert.ok(Date.now() < deadline, 'both subscriptions live within 5 s');
      await a.publish('to-a', { type: 'out', node: 'n' });
      await b.publish('to-b', { type: 'out', node: 'n' });
      await sleep(10);
    }
    await a.create({ sid: 'sid-a', token: 't', attempt: '' }, 'n');
    assert.equal(await b.get('sid-a'), undefined);
    assert.equal(await b.count(), 0);
    assert.ok(onA.every((s) => s === 'to-a') && onB.every((s) => s === 'to-b'), `a heard ${onA.join()}, b heard ${onB.join()}`);
  });
});

describe('RedisStore: options and connections', () => {
  const rejects = (options: object, option: string): void => {
    assert.throws(
      // The wrong types are the point of the test.
      () => new RedisStore(options as ConstructorParameters<typeof RedisStore>[0]),
      (e: unknown) => e instanceof HoldlineError && e.code === 'invalid_argument' && e.message.includes(`"${option}"`),
      `options {${Object.keys(options ?? {}).join(', ')}}: the error names ${option}`,
    );
  };

  test('bad options throw invalid_argument naming the option', () => {
    rejects({}, 'url');
    rejects({ url: 'http://127.0.0.1:1' }, 'url');
    rejects({ url: 42 }, 'url');
    rejects({ url: redis.url, client: inspector }, 'client');
    rejects({ client: {} }, 'client');
    rejects({ url: redis.url, keyPrefix: 7 }, 'keyPrefix');
    rejects({ url: redis.url, ttlMs: 0 }, 'ttlMs');
    rejects({ url: redis.url, ttlMs: 1.5e3 + 0.5 }, 'ttlMs');
    rejects({ url: redis.url, ttlMs: '600000' }, 'ttlMs');
    rejects({ url: redis.url, keyprefix: 'x' }, 'keyprefix');
  });

  test("a caller's client is used and left open by close(); the store's own subscriber is closed", async () => {
    const client = new Redis(redis.url);
    try {
      const store = new RedisStore({ client, keyPrefix: freshPrefix() });
      await store.create({ sid: 'sid-c', token: 't', attempt: '' }, 'n');
      const off = store.subscribe(() => undefined);
      const channel = `${store.keyPrefix}events`;
      const deadline = Date.now() + 5000;
      while ((await inspector.pubsub('NUMSUB', channel))[1] !== 1) {
        assert.ok(Date.now() < deadline, 'subscribed within 5 s');
        await sleep(10);
      }
      off();
      await store.close();
      await store.close(); // twice is harmless
      assert.equal(await client.ping(), 'PONG', "the caller's client is still open");
      while ((await inspector.pubsub('NUMSUB', channel))[1] !== 0) {
        assert.ok(Date.now() < deadline, 'the subscriber connection closed within 5 s');
        await sleep(10);
      }
    } finally {
      await client.quit();
    }
  });
});

describe('RedisStore: payloads and batches', () => {
  test('inbound text with lone surrogates and outbound entries come back exactly', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    await store.create({ sid: 's', token: 't', attempt: '' }, 'n');
    const texts = ['lone \uD800 high', 'lone \uDC00 low', 'pair 😀', ''];
    await store.acceptInbound('s', 1, texts);
    assert.deepEqual((await store.readInbound('s', 1)).messages, texts);
    const entries = [...texts, '\u2028 \u0001 "\\', new Uint8Array([0, 255])].map((p) => encodeEntry(p));
    await store.enqueue('s', entries);
    const b = await store.readOutbound('s', 1_000_000);
    assert.equal(b.m, JSON.stringify(entries.map((e) => e.wire)));
    assert.deepEqual(await store.delete('s'), entries);
  });

  test('readOutbound gives the very batches MemoryStore gives (seeded: escapes, binary, limits, from, maxCount)', async (t) => {
    const redisStore = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => redisStore.close());
    const memory = new MemoryStore();
    let s = 0x12345;
    const rand = (n: number): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    const payload = (): Payload => {
      switch (rand(5)) {
        case 0:
          return new Uint8Array(rand(40));
        case 1:
          return '"\\'.repeat(rand(6)) + 'x'.repeat(rand(20)); // escapes: the real JSON is larger than the least size
        case 2:
          return 'é😀'.repeat(rand(8));
        default:
          return 'm'.repeat(rand(30));
      }
    };
    for (const store of [redisStore, memory]) await store.create({ sid: 's', token: 't', attempt: '' }, 'n');
    let last = 0;
    let acked = 0;
    for (let round = 0; round < 60; round++) {
      const entries: OutboxEntry[] = Array.from({ length: rand(8) }, () => encodeEntry(payload()));
      const [x, y] = await Promise.all([redisStore.enqueue('s', entries), memory.enqueue('s', entries)]);
      assert.deepEqual(x, y, `round ${round}: enqueue`);
      last = x.lastSeq;
      if (rand(3) === 0 && last > acked) {
        const ack = acked + 1 + rand(last - acked);
        assert.deepEqual(await redisStore.ackOutbound('s', ack), await memory.ackOutbound('s', ack), `round ${round}: ack`);
        acked = ack;
      }
      for (let q = 0; q < 4; q++) {
        const max = 2 + rand(200);
        const from = rand(3) === 0 ? undefined : acked + rand(last - acked + 3);
        const count = rand(4) === 0 ? 1 + rand(5) : undefined;
        const got = await redisStore.readOutbound('s', max, from, count);
        const want = await memory.readOutbound('s', max, from, count);
        assert.deepEqual(got, want, `round ${round}: readOutbound(${max}, ${String(from)}, ${String(count)})`);
        assert.equal(await redisStore.pendingOutbound('s', from), await memory.pendingOutbound('s', from));
      }
    }
    assert.deepEqual(await redisStore.delete('s'), await memory.delete('s'));
  });
});

describe('RedisStore: pipelining', () => {
  /** EVALSHA calls Redis has run so far (INFO commandstats). */
  async function evalshaCalls(): Promise<number> {
    const m = /cmdstat_evalsha:calls=(\d+)/.exec(await inspector.info('commandstats'));
    return Number(m?.[1] ?? 0);
  }

  test('calls of many sessions issued together run as a few many-session scripts, each with its own reply, in order', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = Array.from({ length: 300 }, (_, i) => `p${i}`);
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    await store.delete('p150');
    await store.enqueue('p7', [{ wire: 'first', bytes: 5 }]);
    const before = await evalshaCalls();
    // As a broadcast issues them: one enqueue per session in one turn, a session the store lost among them.
    const enqueued = await Promise.allSettled(sids.map((sid) => store.enqueue(sid, [{ wire: `to ${sid}`, bytes: 3 + sid.length }])));
    const reads = await Promise.all(sids.filter((s) => s !== 'p150').map((sid) => store.readOutbound(sid, 1_000_000)));
    const calls = (await evalshaCalls()) - before;
    assert.ok(calls <= 10, `600 calls ran as ${calls} scripts`);
    enqueued.forEach((r, i) => {
      if (sids[i] === 'p150') {
        assert.equal(r.status, 'rejected');
        assert.ok(r.status === 'rejected' && r.reason instanceof HoldlineError && r.reason.code === 'session_unknown');
      } else {
        assert.equal(r.status, 'fulfilled');
        assert.deepEqual(r.status === 'fulfilled' && r.value, {
          lastSeq: sids[i] === 'p7' ? 2 : 1,
          bufferedBytes: (sids[i] === 'p7' ? 5 : 0) + 3 + (sids[i]?.length ?? 0),
        });
      }
    });
    const p7 = reads[7];
    assert.ok(p7);
    assert.equal(p7.m, '["first","to p7"]', 'each session got its own message, after what it had');
    assert.equal(reads[200]?.m, `["to p201"]`);
  });

  test('after Redis lost its scripts (SCRIPT FLUSH), a call alone and calls in a pipeline run from the source (NOSCRIPT, then EVAL)', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = ['n0', 'n1', 'n2'];
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    await inspector.call('SCRIPT', 'FLUSH');
    assert.deepEqual(await store.enqueue('n0', [{ wire: 'alone', bytes: 5 }]), { lastSeq: 1, bufferedBytes: 5 });
    await inspector.call('SCRIPT', 'FLUSH');
    const together = await Promise.all(sids.map((sid) => store.enqueue(sid, [{ wire: 'together', bytes: 8 }])));
    assert.deepEqual(together.map((r) => r.lastSeq), [2, 1, 1]);
    assert.equal((await store.readOutbound('n0', 1_000_000)).m, '["alone","together"]');
  });

  test('calls issued turn by turn while a pipeline waits for its replies go out together when they come, as one many-session script', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = Array.from({ length: 50 }, (_, i) => `q${i}`);
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    const before = await evalshaCalls();
    // Redis holds every client's commands for a while: the first call's pipeline stays in flight.
    await inspector.call('CLIENT', 'PAUSE', '300', 'ALL');
    const enqueued: Promise<unknown>[] = [];
    for (const sid of sids) {
      enqueued.push(store.enqueue(sid, [{ wire: `to ${sid}`, bytes: 3 + sid.length }]));
      // One call per event-loop turn, as polls arriving one by one issue them.
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(enqueued);
    const calls = (await evalshaCalls()) - before;
    assert.ok(calls <= 3, `50 calls issued in 50 turns ran as ${calls} scripts (the first alone, the rest together)`);
    assert.deepEqual(results[49], { lastSeq: 1, bufferedBytes: 6 });
  });
});

describe('RedisStore: two HoldlineServers on one Redis', () => {
  const key = (p: Payload): string => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`);
  const message = (prefix: string, i: number): Payload => (i % 3 === 2 ? new Uint8Array([i & 0xff, 0xff, 0]) : `${prefix}${i}`);

  test('round-robin with no stickiness, then one node leaves: every message both ways exactly once, in order, no reset', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const keyPrefix = freshPrefix();
    const atServer: string[] = [];
    const atClient: string[] = [];
    const errors: unknown[] = [];
    const changed = new Condition();
    const nodes: { hl: HoldlineServer; origin: string; sessions: Session[] }[] = [];
    for (const nodeId of ['redis-node-a', 'redis-node-b']) {
      const store = new RedisStore({ url: redis.url, keyPrefix });
      cleanup.add(() => store.close());
      const hl = new HoldlineServer({ store, nodeId, pollTimeoutMs: 2_000 });
      hl.on('error', (e) => errors.push(e));
      const sessions: Session[] = [];
      hl.on('session', (s) => {
        sessions.push(s);
        s.on('message', (m, info) => {
          // After the leave, what the old owner had not marked delivered comes again, flagged.
          if (info?.redelivered === true && atServer.includes(key(m))) return;
          atServer.push(key(m));
          changed.notify();
        });
      });
      const server = http.createServer();
      hl.attach(server);
      const origin = await listen(server);
      cleanup.add(async () => {
        await hl.close();
        await closeHttpServer(server);
      });
      nodes.push({ hl, origin, sessions });
    }
    const [a, b] = nodes;
    assert.ok(a && b);
    const lb = await roundRobin([a.origin, b.origin]);
    cleanup.add(() => lb.close());
    const client = new HoldlineClient(`${lb.origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: unknown[] = [];
    client.on('reset', (e) => resets.push(e));
    client.on('message', (m) => {
      atClient.push(key(m));
      changed.notify();
    });
    await client.connect();
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
    assert.deepEqual(errors, []);
  });
});

describe('RedisStore: Redis restarted without its data', () => {
  test('the owner closes its sessions the store lost at its next heartbeat (session_unknown), not at their idle timeout', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    // A Redis of this test's own, to restart.
    let own = await startRedis();
    cleanup.add(() => own.stop());
    const store = new RedisStore({ url: own.url, keyPrefix: freshPrefix() });
    cleanup.add(() => store.close());
    // Idle timeout far beyond the test: only the heartbeat's check can close the session in time.
    const hl = new HoldlineServer({ store, nodeId: 'restart-node', ownerLeaseMs: 600, sessionIdleTimeoutMs: 300_000, pollTimeoutMs: 1_000 });
    const errors: unknown[] = [];
    hl.on('error', (e) => errors.push(e));
    const changed = new Condition();
    const closes: { sid: string; code: string }[] = [];
    hl.on('session', (s) => {
      s.on('close', (reason) => {
        closes.push({ sid: s.id, code: reason.code });
        changed.notify();
      });
    });
    const server = http.createServer();
    hl.attach(server);
    const origin = await listen(server);
    cleanup.add(async () => {
      await hl.close();
      await closeHttpServer(server);
    });
    const client = new HoldlineClient(`${origin}/holdline`, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    const resets: { previousSessionId: string }[] = [];
    client.on('reset', (e) => {
      resets.push(e);
      changed.notify();
    });
    await client.connect();
    const sid = client.sessionId ?? '';
    const session = hl.session(sid);
    assert.ok(session, 'the node owns the session');
    await session.send('before');

    const { port } = own;
    await own.stop();
    own = await startRedis({ port });

    await changed.until(() => closes.some((c) => c.sid === sid), 20_000, () => `closes ${JSON.stringify(closes)}`);
    assert.deepEqual(closes.filter((c) => c.sid === sid), [{ sid, code: 'session_unknown' }], 'closed once, with the reason');
    assert.equal(hl.session(sid), undefined, 'the node no longer holds it');
    await assert.rejects(session.send('after'), (e: unknown) => e instanceof HoldlineError && e.code === 'session_closed');
    // The client learns it too (its next poll), and goes on with a new session.
    await changed.until(() => resets.length > 0, 20_000, () => 'the client resets');
    assert.equal(resets[0]?.previousSessionId, sid);
    assert.notEqual(client.sessionId, sid);
  });
});
