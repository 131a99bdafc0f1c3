/**
 * A SessionStore in Redis: several HoldlineServers (nodes) given RedisStores
 * on one Redis serve one session behind a plain round-robin balancer.
 * `import { RedisStore } from 'holdline/redis'`; ioredis is an optional peer
 * dependency, needed only here.
 *
 * Keys: see server/redis-scripts.ts (one session's keys share a `{sid}` hash
 * tag, so every per-session operation is one Lua script in one slot).
 *
 * Where an operation needs keys of two slots (Cluster forbids a script
 * across slots), the second step is separate, and safe:
 * - create: the session first, then the attempt key. Until the second step
 *   a retried open does not find the session: the same as two nodes racing
 *   on one retried open, which the contract allows (each makes one).
 * - delete / forgetAttempt: the session first, then the attempt key is
 *   removed only if it still names this sid (a compare-and-delete: the other
 *   of two sessions made with one attempt never loses it). In between,
 *   findByAttempt checks the record's own attempt and finds nothing.
 * - claim: the owner's heartbeat key lives in its own slot. The script reads
 *   owner and fence; if another node owns it, its heartbeat key is read;
 *   if it has lapsed, a second script takes the session only if owner and
 *   fence are still what was read (compare-and-set). Two nodes racing: one
 *   CAS wins and its fence grows; the other finds a new owner and reads its
 *   heartbeat again.
 * - count: the `sessions` index is updated after create and delete.
 *
 * Expiry: every key of a session has a TTL (`ttlMs`, default 10 min),
 * refreshed by every operation that writes to it and by readOutbound (every
 * poll answered), so a session nobody serves any more (all its nodes died)
 * vanishes. `ttlMs` must be well above the server's sessionIdleTimeoutMs and
 * pollTimeoutMs: a session's owner answers polls from memory-held state but
 * reads the store for each answer, which refreshes the TTL. After delete
 * nothing of the session is left but its tombstone, which has its own TTL.
 *
 * count(): the `sessions` index holds each sid with the time its keys would
 * expire if never refreshed. A session that expired by TTL (never deleted)
 * stays in the index until count() (or a create, at most once per ttlMs per
 * handle) looks at the entries whose time has passed: gone ones are removed,
 * live ones are given their real expiry. So count() is exact for sessions
 * created and deleted through stores, and never counts an expired one; a
 * node that crashed between a create's two steps leaves its session
 * uncounted (it expires unused).
 *
 * Commands: every command goes through one Pipeliner
 * (server/redis-pipeline.ts): those issued in one turn (up to a nextTick) go
 * out as one pipeline, in order. Wake-ups: publish() and subscribe() are
 * server/redis-events.ts (one PUBLISH per turn, one subscriber connection).
 * So a node holds two connections: commands and the subscriber.
 *
 * Connections: with `url` the store makes its command connection and closes
 * it in close(). With `client` (an ioredis Redis or Cluster) the connection
 * is the caller's: close() leaves it open, and the caller's own ioredis
 * `keyPrefix`, if any, applies on top of ours. The subscriber is always the
 * store's own and close() quits it. Redis Sentinel and Cluster are set up
 * through ioredis: pass `client: new Redis({ sentinels, name })` or
 * `client: new Cluster([...])`.
 */
import { Redis, type Cluster } from 'ioredis';
import type { CloseReason, OutboxEntry, StreamItem } from '../shared/index.js';
import type {
  AcceptInboundResult,
  AckOutboundResult,
  BatchAsk,
  ClaimResult,
  EnqueueReadResult,
  EnqueueResult,
  InboundBatch,
  ReadOutboundResult,
  SessionRecord,
  SessionStore,
  StoredSession,
  StoreEvent,
  StoreListener,
  Tombstone,
} from './store.js';
import {
  arrayReply,
  batchReply,
  badReply,
  decodeEntry,
  decodeInbound,
  encodeInbound,
  int,
  isCloseReason,
  pxOf,
  readArgs,
  str,
  strings,
  unknownSession,
  type Arg,
} from './redis-codec.js';
import { RedisEvents } from './redis-events.js';
import { Pipeliner, type RedisClient } from './redis-pipeline.js';
import { resolveRedisOptions, type RedisStoreOptions } from './redis-options.js';
import { S, type Script } from './redis-scripts.js';

export type { RedisStoreOptions } from './redis-options.js';

/** Entries of the count() index looked at per round, and rounds per call. */
const PRUNE_BATCH = 200;
const PRUNE_ROUNDS = 50;
/** A claim re-reads after a lost compare-and-set at most this often (each loss means another node took it). */
const CLAIM_TRIES = 8;

/** Entries up to this size have their stored form kept from one enqueue to the next (see #stored). */
const STORED_CACHE_BYTES = 4096;

export class RedisStore implements SessionStore {
  readonly #client: Redis | Cluster;
  /** True when the store made its command connection (url) and so closes it. */
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #ttl: string;
  readonly #ttlMs: number;
  readonly #sessionsKey: string;
  readonly #pipe: Pipeliner;
  readonly #events: RedisEvents;
  #lastPrune = 0;
  #closed = false;
  /** The last entry enqueued and its stored form: a broadcast enqueues one entry for every session. */
  #lastEntry: OutboxEntry | undefined;
  #lastStored = '';

  constructor(options: RedisStoreOptions) {
    const { url, client, keyPrefix, ttlMs } = resolveRedisOptions(options);
    this.#prefix = keyPrefix;
    this.#ttlMs = ttlMs;
    this.#ttl = String(ttlMs);
    this.#sessionsKey = `${keyPrefix}sessions`;
    if (client !== undefined) {
      this.#client = client;
      this.#ownsClient = false;
    } else {
      // Checked above: url is a string here.
      const own = new Redis(String(url), { lazyConnect: false });
      // Failures reach the commands that wait on the connection; the event itself needs a listener.
      own.on('error', () => undefined);
      this.#client = own;
      this.#ownsClient = true;
    }
    this.#pipe = new Pipeliner(this.#client);
    this.#events = new RedisEvents(this.#client, this.#pipe, `${keyPrefix}events`);
  }

  /** The prefix this store's keys begin with. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  // ---- keys ----

  #keys(sid: string): [string, string, string, string] {
    const base = `${this.#prefix}{${sid}}:`;
    return [`${base}meta`, `${base}out`, `${base}in`, `${base}grave`];
  }

  #attemptKey(attempt: string): string {
    return `${this.#prefix}attempt:{${attempt}}`;
  }

  #nodeKey(node: string): string {
    return `${this.#prefix}node:{${node}}`;
  }

  // ---- commands ----

  #run(script: Script, keys: readonly string[], args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#pipe.script(script, keys, [this.#ttl, ...args], buffers);
  }

  #session(script: Script, sid: string, args: readonly Arg[], buffers = false): Promise<unknown> {
    return this.#run(script, this.#keys(sid), args, buffers);
  }

  /** A plain command on `key` (its first key). */
  #cmd(name: string, key: string, ...args: Arg[]): Promise<unknown> {
    return this.#pipe.command(name, key, [key, ...args]);
  }

  // ---- sessions ----

  async create(session: StoredSession, owner: string): Promise<void> {
    const { sid, token, attempt } = session;
    await this.#session(S.create, sid, [token, attempt, owner, Date.now(), session.meta ?? '']);
    const steps: Promise<unknown>[] = [this.#cmd('ZADD', this.#sessionsKey, Date.now() + this.#ttlMs, sid)];
    if (attempt !== '') steps.push(this.#cmd('SET', this.#attemptKey(attempt), sid, 'PX', this.#ttlMs));
    await Promise.all(steps);
    if (Date.now() - this.#lastPrune > this.#ttlMs) await this.#prune();
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
    const [meta] = this.#keys(sid);
    const [tok, att, own, fen, met] = strings('get', await this.#cmd('HMGET', meta, 'tok', 'att', 'own', 'fen', 'meta'));
    if (tok === null || tok === undefined) return undefined;
    const rec = { sid, token: tok, attempt: att ?? '', owner: own ?? '', fence: int('get', fen) };
    return met ? { ...rec, meta: met } : rec;
  }

  async findByAttempt(attempt: string): Promise<SessionRecord | undefined> {
    if (attempt === '') return undefined;
    const sid = await this.#cmd('GET', this.#attemptKey(attempt));
    if (sid === null) return undefined;
    if (typeof sid !== 'string') throw badReply('findByAttempt', sid);
    const rec = await this.get(sid);
    // Between a forgetAttempt's or a delete's two steps the key may still name a session that no longer has it.
    return rec !== undefined && rec.attempt === attempt ? rec : undefined;
  }

  async forgetAttempt(sid: string): Promise<void> {
    const attempt = str('forgetAttempt', await this.#session(S.forgetAttempt, sid, []));
    if (attempt !== '') await this.#dropAttempt(attempt, sid);
  }

  #dropAttempt(attempt: string, sid: string): Promise<unknown> {
    return this.#run(S.dropAttempt, [this.#attemptKey(attempt)], [sid]);
  }

  async count(): Promise<number> {
    await this.#prune();
    return int('count', await this.#cmd('ZCARD', this.#sessionsKey));
  }

  /** Look at the count() index entries whose expiry time has passed: drop the gone, re-time the live. */
  async #prune(): Promise<void> {
    this.#lastPrune = Date.now();
    for (let round = 0; round < PRUNE_ROUNDS; round++) {
      const now = Date.now();
      const due = strings('count', await this.#cmd('ZRANGEBYSCORE', this.#sessionsKey, '-inf', now, 'LIMIT', 0, PRUNE_BATCH));
      if (due.length === 0) return;
      await Promise.all(
        due.map(async (sid) => {
          if (sid === null) return;
          const pttl = int('count', await this.#cmd('PTTL', this.#keys(sid)[0]));
          if (pttl < 0) await this.#cmd('ZREM', this.#sessionsKey, sid);
          else await this.#cmd('ZADD', this.#sessionsKey, 'XX', now + pttl + 1, sid);
        }),
      );
      if (due.length < PRUNE_BATCH) return;
    }
  }

  async delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]> {
    const why = tombstone === undefined ? '' : JSON.stringify(tombstone.reason);
    const reply = await this.#session(S.delete, sid, [why, pxOf(tombstone?.ttlMs ?? 1)]);
    if (reply === null) return [];
    if (!Array.isArray(reply) || reply.length === 0) throw badReply('delete', reply);
    const [attempt, ...out] = reply;
    const att = str('delete', attempt);
    const steps: Promise<unknown>[] = [this.#cmd('ZREM', this.#sessionsKey, sid)];
    if (att !== '') steps.push(this.#dropAttempt(att, sid));
    await Promise.all(steps);
    return out.map(decodeEntry);
  }

  async tombstone(sid: string): Promise<Tombstone | undefined> {
    const [tok, why] = strings('tombstone', await this.#cmd('HMGET', this.#keys(sid)[3], 'tok', 'why'));
    if (tok === null || tok === undefined || why === null || why === undefined) return undefined;
    const reason: unknown = JSON.parse(why);
    if (!isCloseReason(reason)) throw badReply('tombstone', why);
    return { reason, token: tok };
  }

  // ---- owner and liveness ----

  async claim(sid: string, node: string): Promise<ClaimResult> {
    let owner = '';
    for (let i = 0; i < CLAIM_TRIES; i++) {
      const own = arrayReply('claim', await this.#session(S.claimOwn, sid, [node]));
      if (int('claim', own[0]) === 1) return { owned: true, fence: int('claim', own[1]), took: false };
      owner = str('claim', own[1]);
      const fence = int('claim', own[2]);
      // A released session (owner '') is free; otherwise its owner's heartbeat decides.
      if (owner !== '' && int('claim', await this.#cmd('EXISTS', this.#nodeKey(owner))) === 1) return { owned: false, owner };
      const took = arrayReply('claim', await this.#session(S.claimTake, sid, [node, owner, String(fence)]));
      if (int('claim', took[0]) === 1) return { owned: true, fence: int('claim', took[1]), took: true };
      // Owner or fence changed since read: another node took it; look again.
    }
    return { owned: false, owner };
  }

  async release(sid: string, node: string, fence: number): Promise<void> {
    await this.#session(S.release, sid, [node, String(fence)]);
  }

  async heartbeat(node: string, ttlMs: number): Promise<boolean> {
    // SET ... GET (Redis 6.2+): the previous value, nil when there was none (lapsed, or Redis lost it).
    return (await this.#cmd('SET', this.#nodeKey(node), '1', 'PX', pxOf(ttlMs), 'GET')) !== null;
  }

  async forgetNode(node: string): Promise<void> {
    await this.#cmd('DEL', this.#nodeKey(node));
  }

  async touch(sid: string, until: number): Promise<void> {
    if ((await this.#session(S.touch, sid, [String(until)])) === null) throw unknownSession();
  }

  async seenUntil(sid: string): Promise<number | undefined> {
    const seen = await this.#cmd('HGET', this.#keys(sid)[0], 'seen');
    return seen === null ? undefined : int('seenUntil', seen);
  }

  // ---- outbound ----

  async enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult> {
    const args: Arg[] = [0];
    let bytes = 0;
    for (const e of entries) {
      bytes += e.bytes;
      args.push(this.#stored(e));
    }
    args[0] = bytes;
    const r = arrayReply('enqueue', await this.#session(S.enqueue, sid, args));
    return { lastSeq: int('enqueue', r[0]), bufferedBytes: int('enqueue', r[1]) };
  }

  /** An outbound entry as the out list keeps it: `<payload bytes> <wire JSON>`. */
  #stored(e: OutboxEntry): string {
    // Kept for small entries only: the cache holds its last one for as long as the store lives.
    if (e.bytes > STORED_CACHE_BYTES) return `${e.bytes} ${JSON.stringify(e.wire)}`;
    if (e !== this.#lastEntry) {
      this.#lastEntry = e;
      this.#lastStored = `${e.bytes} ${JSON.stringify(e.wire)}`;
    }
    return this.#lastStored;
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const r = arrayReply('ackOutbound', await this.#session(S.ackOutbound, sid, [String(ack)]));
    const result = r[0];
    if (result !== 'ok' && result !== 'stale' && result !== 'future') throw badReply('ackOutbound', result);
    return { result, bufferedBytes: int('ackOutbound', r[1]), lastSeq: int('ackOutbound', r[2]) };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount = Infinity): Promise<ReadOutboundResult> {
    const r = arrayReply('readOutbound', await this.#session(S.readOutbound, sid, readArgs(maxWireBytes, from, maxCount)));
    return batchReply('readOutbound', r, 0);
  }

  async enqueueAndRead(sid: string, entries: readonly OutboxEntry[], read: BatchAsk): Promise<EnqueueReadResult> {
    const args: Arg[] = readArgs(read.maxWireBytes, read.from, read.maxCount);
    let bytes = 0;
    for (const e of entries) bytes += e.bytes;
    args.push(bytes);
    for (const e of entries) args.push(this.#stored(e));
    const r = arrayReply('enqueueAndRead', await this.#session(S.enqueueRead, sid, args));
    return { lastSeq: int('enqueueAndRead', r[0]), bufferedBytes: int('enqueueAndRead', r[1]), batch: batchReply('enqueueAndRead', r, 2) };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const [last, acked] = strings('pendingOutbound', await this.#cmd('HMGET', this.#keys(sid)[0], 'olast', 'oack'));
    if (last === null || last === undefined) throw unknownSession();
    const l = int('pendingOutbound', last);
    const a = int('pendingOutbound', acked);
    return from === undefined ? l - a : Math.max(0, l - Math.max(from, a + 1) + 1);
  }

  // ---- inbound ----

  async acceptInbound(sid: string, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult> {
    const args: Arg[] = [String(seq)];
    for (const m of messages) args.push(encodeInbound(m));
    const r = arrayReply('acceptInbound', await this.#session(S.acceptInbound, sid, args));
    const ack = int('acceptInbound', r[2]);
    return int('acceptInbound', r[0]) === 1
      ? { ok: true, skip: int('acceptInbound', r[1]), ack }
      : { ok: false, expected: int('acceptInbound', r[1]), ack };
  }

  async readInbound(sid: string, from: number): Promise<InboundBatch> {
    const r = arrayReply('readInbound', await this.#session(S.readInbound, sid, [String(from)], true));
    const [seq, ...items] = r;
    return { seq: int('readInbound', seq), messages: items.map(decodeInbound) };
  }

  async markDelivered(sid: string, seq: number, fence: number): Promise<boolean> {
    const r = await this.#session(S.markDelivered, sid, [String(seq), String(fence)]);
    if (r === null) throw unknownSession();
    return int('markDelivered', r) === 1;
  }

  async delivered(sid: string): Promise<number> {
    const d = await this.#cmd('HGET', this.#keys(sid)[0], 'dlv');
    if (d === null) throw unknownSession();
    return int('delivered', d);
  }

  // ---- wake-ups ----

  publish(sid: string, event: StoreEvent): Promise<void> {
    return this.#events.publish(sid, event);
  }

  subscribe(listener: StoreListener): () => void {
    return this.#events.subscribe(listener);
  }

  /** Quits the subscriber, and the command connection if the store made it (a `client` passed in stays open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const subscriber = this.#events.close();
    const quits: Promise<unknown>[] = [];
    if (subscriber !== undefined) quits.push(quit(subscriber));
    if (this.#ownsClient) quits.push(quit(this.#client));
    await Promise.all(quits);
  }
}

/** QUIT, or a disconnect when the connection is not up (QUIT would wait for a reconnect). */
async function quit(c: RedisClient): Promise<void> {
  if (c.status === 'ready') {
    try {
      await c.quit();
      return;
    } catch {
      // fall through
    }
  }
  c.disconnect();
}
