/**
 * `holdline/redis`: the Redis session store, in an entry of its own so that
 * `holdline/server` never loads ioredis (an optional peer dependency: install
 * it to use this entry).
 */
export { RedisStore } from './redis-store.js';
export type { RedisStoreOptions } from './redis-store.js';
