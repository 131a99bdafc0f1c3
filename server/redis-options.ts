/**
 * The RedisStore's options and their checks: bad options throw
 * `invalid_argument` naming the option, at construction.
 */
import type { Cluster, Redis } from 'ioredis';
import { HoldlineError } from '../shared/index.js';
import { describe } from './redis-codec.js';

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL of the Redis to connect to (the store makes and closes its connection). */
  url?: string;
  /** An ioredis client (Redis or Cluster) to use instead: the caller's, never closed by the store. */
  client?: Redis | Cluster;
  /** Prefix of every key and of the channel. Default `holdline:`. Stores with different prefixes share nothing. */
  keyPrefix?: string;
  /**
   * How long a session's keys live without any operation on them (ms). Default
   * 10 min. Keep it well above the server's sessionIdleTimeoutMs.
   */
  ttlMs?: number;
}

const DEFAULT_PREFIX = 'holdline:';
const DEFAULT_TTL_MS = 10 * 60_000;
const MIN_TTL_MS = 100;

function bad(option: string, want: string, got: unknown): HoldlineError {
  return new HoldlineError('invalid_argument', `RedisStore option "${option}" must be ${want}, got ${describe(got)}`);
}

const KNOWN = new Set(['url', 'client', 'keyPrefix', 'ttlMs']);

function isClient(v: unknown): v is Redis | Cluster {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as { call?: unknown; callBuffer?: unknown; duplicate?: unknown; publish?: unknown; pipeline?: unknown };
  return typeof c.call === 'function' && typeof c.callBuffer === 'function' && typeof c.duplicate === 'function' && typeof c.publish === 'function' && typeof c.pipeline === 'function';
}

/** The options checked, with their defaults. */
export interface ResolvedRedisOptions {
  readonly url: string | undefined;
  readonly client: Redis | Cluster | undefined;
  readonly keyPrefix: string;
  readonly ttlMs: number;
}

export function resolveRedisOptions(options: RedisStoreOptions): ResolvedRedisOptions {
    if (typeof options !== 'object' || options === null) {
      throw new HoldlineError('invalid_argument', `RedisStore options must be an object, got ${describe(options)}`);
    }
    for (const k of Object.keys(options)) {
      if (!KNOWN.has(k)) throw new HoldlineError('invalid_argument', `unknown RedisStore option "${k}"`);
    }
    const { url, client, keyPrefix = DEFAULT_PREFIX, ttlMs = DEFAULT_TTL_MS } = options;
    if (url !== undefined && client !== undefined) {
      throw new HoldlineError('invalid_argument', 'RedisStore options "url" and "client" exclude each other: give one');
    }
    if (url === undefined && client === undefined) {
      throw new HoldlineError('invalid_argument', 'RedisStore needs option "url" (a redis:// URL) or option "client" (an ioredis client)');
    }
    if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
      throw bad('url', 'a redis:// or rediss:// URL', url);
    }
    if (client !== undefined && !isClient(client)) throw bad('client', 'an ioredis Redis or Cluster client', client);
    if (typeof keyPrefix !== 'string') throw bad('keyPrefix', 'a string', keyPrefix);
    if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < MIN_TTL_MS) {
      throw bad('ttlMs', `an integer >= ${MIN_TTL_MS} (ms)`, ttlMs);
    }
  return { url, client, keyPrefix, ttlMs };
}
