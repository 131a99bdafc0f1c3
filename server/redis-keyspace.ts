/**
 * The Redis store's keyspace (server/redis-store.ts and its part
 * server/redis-sessions.ts): the names of its keys under the store's
 * `keyPrefix` (what each holds: server/redis-scripts.ts), and the commands
 * on them, each through the store's one Pipeliner (server/redis-pipeline.ts),
 * every script given the TTL as its first argument. One per store.
 */
import type { Arg } from './redis-codec.js';
import type { Pipeliner } from './redis-pipeline.js';
import type { Script } from './redis-scripts.js';

export class RedisKeyspace {
  /** The prefix this store's keys begin with. */
  readonly prefix: string;
  /** The TTL of a session's keys (RedisStoreOptions.ttlMs). */
  readonly ttlMs: number;
  /** The count() index: every sid with the time its keys would expire if never refreshed. */
  readonly sessionsKey: string;
  /** ttlMs as the scripts take it (their ARGV[1]). */
  readonly #ttl: string;
  readonly #pipe: Pipeliner;

  constructor(pipe: Pipeliner, prefix: string, ttlMs: number) {
    this.#pipe = pipe;
    this.prefix = prefix;
    this.ttlMs = ttlMs;
    this.#ttl = String(ttlMs);
    this.sessionsKey = `${prefix}sessions`;
  }

  // ---- keys ----

  /** One session's keys, in the order its scripts take them: meta, out, in, grave. */
  keys(sid: string): [string, string, string, string] {
    const base = `${this.prefix}{${sid}}:`;
    return [`${base}meta`, `${base}out`, `${base}in`, `${base}grave`];
  }

  attemptKey(attempt: string): string {
    return `${this.prefix}attempt:{${attempt}}`;
  }

  nodeKey(node: string): string {
    return `${this.prefix}node:{${node}}`;
  }

  // ---- commands ----

  /** A script on `keys`: its ARGV is the TTL, then `args`. */
  run(script: Script, keys: readonly string[], args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#pipe.script(script, keys, [this.#ttl, ...args], buffers);
  }

  /** A session script, on the keys of `sid`. */
  session(script: Script, sid: string, args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.run(script, this.keys(sid), args, buffers);
  }

  /** A plain command on `key` (its first key). */
  cmd(name: string, key: string, ...args: Arg[]): Promise<unknown> {
    return this.#pipe.command(name, key, [key, ...args]);
  }
}
