/**
 * RedisStore's options and connections, on a redis-server of this file's
 * own: bad options throw invalid_argument naming the option; a caller's
 * client is used and left open by close(), while the store's own subscriber
 * connection is closed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore } from '../../server/redis.js';
import { HoldlineError } from '../../shared/index.js';
import { freshPrefix, sleep, testRedis } from './helpers.js';

const { redis, inspector } = await testRedis();

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
