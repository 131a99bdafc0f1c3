/**
 * RedisStore's payloads and batches, on a redis-server of this file's own:
 * inbound text with lone surrogates and outbound entries come back exactly;
 * readOutbound (and enqueue, ackOutbound, pendingOutbound, delete) give the
 * very results MemoryStore gives, over a seeded run of escapes, binary,
 * size limits, `from` and maxCount.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import { MemoryStore } from '../../server/index.js';
import { encodeEntry, type OutboxEntry, type Payload } from '../../shared/index.js';
import { freshPrefix, testRedis } from './helpers.js';

const { redis } = await testRedis();

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
