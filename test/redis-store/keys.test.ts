/**
 * RedisStore's keys, on a redis-server of this file's own: one session's
 * keys share a hash tag and each has a TTL no longer than ttlMs; nothing of
 * a session is left after delete but its tombstone, and after the
 * tombstone's TTL nothing; a session nobody serves expires with all its keys
 * (count() stops counting it); a session in use outlives ttlMs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import { encodeEntry } from '../../shared/index.js';
import type { SessionStore } from '../../server/store.js';
import { freshPrefix, sleep, testRedis } from './helpers.js';

const { redis, inspector } = await testRedis();

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
