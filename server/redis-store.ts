/**
 * A SessionStore in Redis: several HoldlineServers (nodes) given RedisStores
 * on one Redis serve one session behind a plain round-robin balancer.
 * `import { RedisStore } from 'holdline/redis'`; ioredis is an optional peer
 * dependency, needed only here.
 *
 * Keys: see server/redis-scripts.ts (one session's keys share a `{sid}` hash
 * tag, so every per-session operation is one Lua script in one slot); their
 * names and the commands on them are server/redis-keyspace.ts.
 *
 * Its parts: the sessions themselves (records, the open attempt, the count()
 * index, delete and tombstones, owners and heartbeats, with the operations
 * whose keys span two slots) are server/redis-sessions.ts; this file keeps
 * the connections, both streams and the wake-ups.
 *
 * Expiry: every key of a session has a TTL (`ttlMs`, default 10 min),
 * refreshed by every operation that writes to it and by readOutbound (every
 * poll answered), so a session nobody serves any more (all its nodes died)
 * vanishes. `ttlMs` must be well above the server's sessionIdleTimeoutMs and
 * pollTimeoutMs: a session's owner answers polls from memory-held state but
 * reads the store for each answer, which refreshes the TTL. After delete
 * nothing of the session is left but its tombstone, which has its own TTL.
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
import { encodeMessages, utf8Length, type CloseReason, type OutboxEntry, type StreamItem } from '../shared/index.js';
import type {
  AcceptInboundResult,
  AckOutboundResult,
  AckReadResult,
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
import { arrayReply, batchReply, badReply, decodeInbound, encodeInbound, int, readArgs, strings, unknownSession, type Arg } from './redis-codec.js';
import { RedisEvents } from './redis-events.js';
import { RedisKeyspace } from './redis-keyspace.js';
import { Pipeliner, type RedisClient } from './redis-pipeline.js';
import { resolveRedisOptions, type RedisStoreOptions } from './redis-options.js';
import { S } from './redis-scripts.js';
import { RedisSessions } from './redis-sessions.js';

export type { RedisStoreOptions } from './redis-options.js';

/** Entries up to this size have their stored form kept from one enqueue to the next (see #kept). */
const STORED_CACHE_BYTES = 4096;

/** A batch of one message, as readOutbound gives it. */
interface Alone {
  readonly m: string;
  readonly wireBytes: number;
}

/** An entry's stored form: its payload bytes, a space, its wire form's JSON (redis-scripts.ts). */
function storedForm(e: OutboxEntry): string {
  return `${e.bytes} ${JSON.stringify(e.wire)}`;
}

/** What the store keeps of the last small entry it enqueued (a broadcast enqueues one entry for every session). */
interface Kept {
  entry: OutboxEntry | undefined;
  stored: string;
  /** Its batch alone, once asked for. */
  alone: Alone | undefined;
}

function aloneBatch(e: OutboxEntry): Alone {
  const m = encodeMessages([e.wire]);
  return { m, wireBytes: utf8Length(m) };
}

export class RedisStore implements SessionStore {
  readonly #client: Redis | Cluster;
  /** True when the store made its command connection (url) and so closes it. */
  readonly #ownsClient: boolean;
  /** The key names and the commands on them (server/redis-keyspace.ts). */
  readonly #ks: RedisKeyspace;
  /** Records, owners and liveness (server/redis-sessions.ts). */
  readonly #sessions: RedisSessions;
  readonly #events: RedisEvents;
  #closed = false;
  /** See #kept: one object, refilled in place (no allocation per enqueue). */
  readonly #last: Kept = { entry: undefined, stored: '', alone: undefined };

  constructor(options: RedisStoreOptions) {
    const { url, client, keyPrefix, ttlMs } = resolveRedisOptions(options);
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
    const pipe = new Pipeliner(this.#client);
    this.#ks = new RedisKeyspace(pipe, keyPrefix, ttlMs);
    this.#sessions = new RedisSessions(this.#ks);
    this.#events = new RedisEvents(this.#client, pipe, `${keyPrefix}events`);
  }

  /** The prefix this store's keys begin with. */
  get keyPrefix(): string {
    return this.#ks.prefix;
  }

  // ---- sessions, owners and liveness: server/redis-sessions.ts ----

  create(session: StoredSession, owner: string): Promise<void> {
    return this.#sessions.create(session, owner);
  }

  get(sid: string): Promise<SessionRecord | undefined> {
    return this.#sessions.get(sid);
  }

  findByAttempt(attempt: string): Promise<SessionRecord | undefined> {
    return this.#sessions.findByAttempt(attempt);
  }

  forgetAttempt(sid: string): Promise<void> {
    return this.#sessions.forgetAttempt(sid);
  }

  count(): Promise<number> {
    return this.#sessions.count();
  }

  delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]> {
    return this.#sessions.delete(sid, tombstone);
  }

  tombstone(sid: string): Promise<Tombstone | undefined> {
    return this.#sessions.tombstone(sid);
  }

  claim(sid: string, node: string): Promise<ClaimResult> {
    return this.#sessions.claim(sid, node);
  }

  release(sid: string, node: string, fence: number): Promise<void> {
    return this.#sessions.release(sid, node, fence);
  }

  heartbeat(node: string, ttlMs: number): Promise<boolean> {
    return this.#sessions.heartbeat(node, ttlMs);
  }

  forgetNode(node: string): Promise<void> {
    return this.#sessions.forgetNode(node);
  }

  touch(sid: string, until: number): Promise<void> {
    return this.#sessions.touch(sid, until);
  }

  seenUntil(sid: string): Promise<number | undefined> {
    return this.#sessions.seenUntil(sid);
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
    const r = arrayReply('enqueue', await this.#ks.session(S.enqueue, sid, args));
    return { lastSeq: int('enqueue', r[0]), bufferedBytes: int('enqueue', r[1]) };
  }

  /** What is kept of `e`, if it is small enough to be kept: the cache holds its last one for as long as the store lives. */
  #kept(e: OutboxEntry): Kept | undefined {
    if (e.bytes > STORED_CACHE_BYTES) return undefined;
    const last = this.#last;
    if (last.entry !== e) {
      last.entry = e;
      last.stored = storedForm(e);
      last.alone = undefined;
    }
    return last;
  }

  /** An outbound entry as the out list keeps it: `<payload bytes> <wire JSON>`. */
  #stored(e: OutboxEntry): string {
    return this.#kept(e)?.stored ?? storedForm(e);
  }

  /** A batch of `e` alone, as readOutbound gives it. */
  #alone(e: OutboxEntry): Alone {
    const kept = this.#kept(e);
    if (kept === undefined) return aloneBatch(e);
    return (kept.alone ??= aloneBatch(e));
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const r = arrayReply('ackOutbound', await this.#ks.session(S.ackOutbound, sid, [String(ack)]));
    const result = r[0];
    if (result !== 'ok' && result !== 'stale' && result !== 'future') throw badReply('ackOutbound', result);
    return { result, bufferedBytes: int('ackOutbound', r[1]), lastSeq: int('ackOutbound', r[2]) };
  }

  async ackAndRead(sid: string, ack: number, read: BatchAsk): Promise<AckReadResult> {
    const args = readArgs(read.maxWireBytes, read.from, read.maxCount);
    args.push(String(ack));
    const r = arrayReply('ackAndRead', await this.#ks.session(S.ackRead, sid, args));
    const result = r[0];
    if (result !== 'ok' && result !== 'stale' && result !== 'future') throw badReply('ackAndRead', result);
    const batch = r.length > 3 ? batchReply('ackAndRead', r, 3) : undefined;
    return { result, bufferedBytes: int('ackAndRead', r[1]), lastSeq: int('ackAndRead', r[2]), batch };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount = Infinity): Promise<ReadOutboundResult> {
    const r = arrayReply('readOutbound', await this.#ks.session(S.readOutbound, sid, readArgs(maxWireBytes, from, maxCount)));
    return batchReply('readOutbound', r, 0);
  }

  async enqueueAndRead(sid: string, entries: readonly OutboxEntry[], read: BatchAsk): Promise<EnqueueReadResult> {
    const args: Arg[] = readArgs(read.maxWireBytes, read.from, read.maxCount);
    let bytes = 0;
    for (const e of entries) bytes += e.bytes;
    args.push(bytes);
    for (const e of entries) args.push(this.#stored(e));
    const r = arrayReply('enqueueAndRead', await this.#ks.session(S.enqueueRead, sid, args));
    const lastSeq = int('enqueueAndRead', r[0]);
    const bufferedBytes = int('enqueueAndRead', r[1]);
    const [only] = entries;
    // The batch is the one message appended (a broadcast's usual case): made here, not read back.
    if (r.length === 3 && only !== undefined) {
      const { m, wireBytes } = this.#alone(only);
      // The fields in batchReply's order: one object shape for every batch the flush reads.
      return { lastSeq, bufferedBytes, batch: { seq: lastSeq, count: 1, m, wireBytes, inboundAck: int('enqueueAndRead', r[2]), lastSeq } };
    }
    return { lastSeq, bufferedBytes, batch: batchReply('enqueueAndRead', r, 2) };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const [last, acked] = strings('pendingOutbound', await this.#ks.cmd('HMGET', this.#ks.keys(sid)[0], 'olast', 'oack'));
    if (last === null || last === undefined) throw unknownSession();
    const l = int('pendingOutbound', last);
    const a = int('pendingOutbound', acked);
    return from === undefined ? l - a : Math.max(0, l - Math.max(from, a + 1) + 1);
  }

  // ---- inbound ----

  async acceptInbound(sid: string, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult> {
    const args: Arg[] = [String(seq)];
    for (const m of messages) args.push(encodeInbound(m));
    const r = arrayReply('acceptInbound', await this.#ks.session(S.acceptInbound, sid, args));
    const ack = int('acceptInbound', r[2]);
    const fence = int('acceptInbound', r[3]);
    return int('acceptInbound', r[0]) === 1
      ? { ok: true, skip: int('acceptInbound', r[1]), ack, fence }
      : { ok: false, expected: int('acceptInbound', r[1]), ack, fence };
  }

  async readInbound(sid: string, from: number): Promise<InboundBatch> {
    const r = arrayReply('readInbound', await this.#ks.session(S.readInbound, sid, [String(from)], true));
    const [seq, fence, ...items] = r;
    return { seq: int('readInbound', seq), messages: items.map(decodeInbound), fence: int('readInbound', fence) };
  }

  async markDelivered(sid: string, seq: number, fence: number): Promise<boolean> {
    const r = await this.#ks.session(S.markDelivered, sid, [String(seq), String(fence)]);
    if (r === null) throw unknownSession();
    return int('markDelivered', r) === 1;
  }

  async delivered(sid: string): Promise<number> {
    const d = await this.#ks.cmd('HGET', this.#ks.keys(sid)[0], 'dlv');
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
