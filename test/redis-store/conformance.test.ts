/**
 * RedisStore against the store conformance suite (test/store-conformance/),
 * on a redis-server of this file's own. Node B's handle is a second
 * RedisStore on the same server, as another node would have; each test gets
 * its own keyPrefix, so count() and heartbeats see only its own keys.
 */
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import type { SessionStore } from '../../server/store.js';
import { storeConformance } from '../store-conformance/index.js';
import { freshPrefix, testRedis } from './helpers.js';

const { redis } = await testRedis();

function prefixOf(store: SessionStore): string {
  assert.ok(store instanceof RedisStore, 'the first handle is a RedisStore');
  return store.keyPrefix;
}

storeConformance('RedisStore', () => new RedisStore({ url: redis.url, keyPrefix: freshPrefix() }), {
  connect: (first) => new RedisStore({ url: redis.url, keyPrefix: prefixOf(first) }),
});
