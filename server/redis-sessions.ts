/**
 * The Redis store's sessions (server/redis-store.ts): records and the open
 * attempt that made them, the count() index, delete with its tombstone, the
 * owner (claim, release) and liveness (node heartbeats, touch, seenUntil).
 * One per store; RedisStore hands these SessionStore calls to it.
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
 * count(): the `sessions` index holds each sid with the time its keys would
 * expire if never refreshed. A session that expired by TTL (never deleted)
 * stays in the index until count() (or a create, at most once per ttlMs per
 * handle) looks at the entries whose time has passed: gone ones are removed,
 * live ones are given their real expiry. So count() is exact for sessions
 * created and deleted through stores, and never counts an expired one; a
 * node that crashed between a create's two steps leaves its session
 * uncounted (it expires unused).
 */
import type { CloseReason, OutboxEntry } from '../shared/index.js';
import type { ClaimResult, SessionRecord, StoredSession, Tombstone } from './store.js';
import { arrayReply, badReply, decodeEntry, int, isCloseReason, pxOf, str, strings, unknownSession } from './redis-codec.js';
import type { RedisKeyspace } from './redis-keyspace.js';
import { S } from './redis-scripts.js';

/** Entries of the count() index looked at per round, and rounds per call. */
const PRUNE_BATCH = 200;
const PRUNE_ROUNDS = 50;
/** A claim re-reads after a lost compare-and-set at most this often (each loss means another node took it). */
const CLAIM_TRIES = 8;

export class RedisSessions {
  readonly #ks: RedisKeyspace;
  #lastPrune = 0;

  constructor(keyspace: RedisKeyspace) {
    this.#ks = keyspace;
  }

  // ---- sessions ----

  async create(session: StoredSession, owner: string): Promise<void> {
    const ks = this.#ks;
    const { sid, token, attempt } = session;
    await ks.session(S.create, sid, [token, attempt, owner, Date.now(), session.meta ?? '']);
    const steps: Promise<unknown>[] = [ks.cmd('ZADD', ks.sessionsKey, Date.now() + ks.ttlMs, sid)];
    if (attempt !== '') steps.push(ks.cmd('SET', ks.attemptKey(attempt), sid, 'PX', ks.ttlMs));
    await Promise.all(steps);
    if (Date.now() - this.#lastPrune > ks.ttlMs) await this.#prune();
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
    const [meta] = this.#ks.keys(sid);
    const [tok, att, own, fen, met] = strings('get', await this.#ks.cmd('HMGET', meta, 'tok', 'att', 'own', 'fen', 'meta'));
    if (tok === null || tok === undefined) return undefined;
    const rec = { sid, token: tok, attempt: att ?? '', owner: own ?? '', fence: int('get', fen) };
    return met ? { ...rec, meta: met } : rec;
  }

  async findByAttempt(attempt: string): Promise<SessionRecord | undefined> {
    if (attempt === '') return undefined;
    const sid = await this.#ks.cmd('GET', this.#ks.attemptKey(attempt));
    if (sid === null) return undefined;
    if (typeof sid !== 'string') throw badReply('findByAttempt', sid);
    const rec = await this.get(sid);
    // Between a forgetAttempt's or a delete's two steps the key may still name a session that no longer has it.
    return rec !== undefined && rec.attempt === attempt ? rec : undefined;
  }

  async forgetAttempt(sid: string): Promise<void> {
    const attempt = str('forgetAttempt', await this.#ks.session(S.forgetAttempt, sid, []));
    if (attempt !== '') await this.#dropAttempt(attempt, sid);
  }

  #dropAttempt(attempt: string, sid: string): Promise<unknown> {
    return this.#ks.run(S.dropAttempt, [this.#ks.attemptKey(attempt)], [sid]);
  }

  async count(): Promise<number> {
    await this.#prune();
    return int('count', await this.#ks.cmd('ZCARD', this.#ks.sessionsKey));
  }

  /** Look at the count() index entries whose expiry time has passed: drop the gone, re-time the live. */
  async #prune(): Promise<void> {
    const ks = this.#ks;
    this.#lastPrune = Date.now();
    for (let round = 0; round < PRUNE_ROUNDS; round++) {
      const now = Date.now();
      const due = strings('count', await ks.cmd('ZRANGEBYSCORE', ks.sessionsKey, '-inf', now, 'LIMIT', 0, PRUNE_BATCH));
      if (due.length === 0) return;
      await Promise.all(
        due.map(async (sid) => {
          if (sid === null) return;
          const pttl = int('count', await ks.cmd('PTTL', ks.keys(sid)[0]));
          if (pttl < 0) await ks.cmd('ZREM', ks.sessionsKey, sid);
          else await ks.cmd('ZADD', ks.sessionsKey, 'XX', now + pttl + 1, sid);
        }),
      );
      if (due.length < PRUNE_BATCH) return;
    }
  }

  async delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]> {
    const why = tombstone === undefined ? '' : JSON.stringify(tombstone.reason);
    const reply = await this.#ks.session(S.delete, sid, [why, pxOf(tombstone?.ttlMs ?? 1)]);
    if (reply === null) return [];
    if (!Array.isArray(reply) || reply.length === 0) throw badReply('delete', reply);
    const [attempt, ...out] = reply;
    const att = str('delete', attempt);
    const steps: Promise<unknown>[] = [this.#ks.cmd('ZREM', this.#ks.sessionsKey, sid)];
    if (att !== '') steps.push(this.#dropAttempt(att, sid));
    await Promise.all(steps);
    return out.map(decodeEntry);
  }

  async tombstone(sid: string): Promise<Tombstone | undefined> {
    const [tok, why] = strings('tombstone', await this.#ks.cmd('HMGET', this.#ks.keys(sid)[3], 'tok', 'why'));
    if (tok === null || tok === undefined || why === null || why === undefined) return undefined;
    const reason: unknown = JSON.parse(why);
    if (!isCloseReason(reason)) throw badReply('tombstone', why);
    return { reason, token: tok };
  }

  // ---- owner and liveness ----

  async claim(sid: string, node: string): Promise<ClaimResult> {
    const ks = this.#ks;
    let owner = '';
    for (let i = 0; i < CLAIM_TRIES; i++) {
      const own = arrayReply('claim', await ks.session(S.claimOwn, sid, [node]));
      if (int('claim', own[0]) === 1) return { owned: true, fence: int('claim', own[1]), took: false };
      owner = str('claim', own[1]);
      const fence = int('claim', own[2]);
      // A released session (owner '') is free; otherwise its owner's heartbeat decides.
      if (owner !== '' && int('claim', await ks.cmd('EXISTS', ks.nodeKey(owner))) === 1) return { owned: false, owner };
      const took = arrayReply('claim', await ks.session(S.claimTake, sid, [node, owner, String(fence)]));
      if (int('claim', took[0]) === 1) return { owned: true, fence: int('claim', took[1]), took: true };
      // Owner or fence changed since read: another node took it; look again.
    }
    return { owned: false, owner };
  }

  async release(sid: string, node: string, fence: number): Promise<void> {
    await this.#ks.session(S.release, sid, [node, String(fence)]);
  }

  async heartbeat(node: string, ttlMs: number): Promise<boolean> {
    // SET ... GET (Redis 6.2+): the previous value, nil when there was none (lapsed, or Redis lost it).
    return (await this.#ks.cmd('SET', this.#ks.nodeKey(node), '1', 'PX', pxOf(ttlMs), 'GET')) !== null;
  }

  async forgetNode(node: string): Promise<void> {
    await this.#ks.cmd('DEL', this.#ks.nodeKey(node));
  }

  async touch(sid: string, until: number): Promise<void> {
    if ((await this.#ks.session(S.touch, sid, [String(until)])) === null) throw unknownSession();
  }

  async seenUntil(sid: string): Promise<number | undefined> {
    const seen = await this.#ks.cmd('HGET', this.#ks.keys(sid)[0], 'seen');
    return seen === null ? undefined : int('seenUntil', seen);
  }
}
