/**
 * What the RedisStore tests (`*.test.ts` in this folder) share: a
 * redis-server of the file's own (test/middlebox/redis.ts: a free loopback
 * port, never the machine's Redis) with a client of it for looking at keys,
 * both stopped when the file's tests are done; a key prefix for each store
 * (each test gets its own, so count() and heartbeats see only its own keys);
 * and sleeping.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { after } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../middlebox/redis.js';

export { sleep };

export interface TestRedis {
  redis: RedisServer;
  /** A client of the test's own server, for looking at keys. */
  inspector: Redis;
}

/** Start the file's redis-server and its inspector; call once, at the top level (it registers the `after` that stops both). */
export async function testRedis(): Promise<TestRedis> {
  const redis = await startRedis();
  const inspector = new Redis(redis.url, { lazyConnect: false });
  after(async () => {
    // The inspector first: a client left open would try to reconnect to the stopped server.
    await inspector.quit();
    await redis.stop();
  });
  return { redis, inspector };
}

let prefixes = 0;
/** A key prefix no other store of this process has. */
export const freshPrefix = (): string => `t${++prefixes}-${process.pid}:`;

