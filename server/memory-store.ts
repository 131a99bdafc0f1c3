/**
 * The default store: everything in this process's memory. Zero set-up. One
 * MemoryStore shared by several HoldlineServers in one process makes them
 * nodes of one cluster (they serve each other's sessions); a server given
 * none makes its own.
 *
 * Sessions live in a Map keyed by session id; each is a small record (an
 * idle server holds one per session) whose streams are made on first use.
 * Times are kept relative to the store's creation, so they stay small
 * integers (no boxed number per session).
 */
import {
  Inbox,
  Outbox,
  wireError,
  type CloseReason,
  type OutboxEntry,
  type StreamItem,
} from '../shared/index.js';
import type {
  AcceptInboundResult,
  AckOutboundResult,
  ClaimResult,
  EnqueueResult,
  InboundBatch,
  ReadOutboundResult,
  WiresRead,
  SessionRecord,
  SessionStore,
  StoredSession,
  StoreEvent,
  StoreListener,
  Tombstone,
} from './store.js';

/** Most tombstones kept; past it, new closes leave none (old ones are never evicted before they expire). */
const MAX_TOMBSTONES = 100_000;

/** A session's streams, made on its first message either way. */
class Streams {
  outbox = new Outbox();
  inbox = new Inbox();
  /** Accepted inbound messages not yet delivered: `log[head]` is number `logSeq`. */
  log: StreamItem[] = [];
  head = 0;
  logSeq = 1;
  /** Highest inbound number marked delivered. */
  delivered = 0;
}

/** Read-only stand-ins for a session that has sent and received nothing (reads never change them). */
const NO_STREAMS = new Streams();

class Rec {
  token: string;
  owner: string;
  fence = 1;
  /** Until when the client is known to be there, ms since the store's epoch. */
  seen: number;
  streams: Streams = NO_STREAMS;

  constructor(token: string, owner: string, seen: number) {
    this.token = token;
    this.owner = owner;
    this.seen = seen;
  }
}

interface Grave extends Tombstone {
  /** Forgotten after this (ms since the store's epoch). */
  until: number;
}

export class MemoryStore implements SessionStore {
  readonly #epoch = Date.now();
  /**
   * A session is its token alone while it has only what a new session has
   * (owned by the store's first owner, fence 1, never touched, no messages):
   * an idle server holds one per session. It becomes a Rec on first change.
   */
  readonly #sessions = new Map<string, string | Rec>();
  /** The owner of the sessions kept as their token alone: the first node to create one. */
  #firstOwner: string | undefined;
  /** Reads of a token-alone session see it through this (filled per call; never kept). */
  readonly #scratch = new Rec('', '', 0);
  /** attempt -> sid and sid -> attempt, for sessions not used yet (see forgetAttempt). */
  readonly #attempts = new Map<string, string>();
  readonly #attemptOf = new Map<string, string>();
  readonly #graves = new Map<string, Grave>();
  /** sid -> meta, for the sessions that have one (most have none: an idle session costs nothing here). */
  readonly #meta = new Map<string, string>();
  /** node -> until when it is alive (ms since the epoch). */
  readonly #nodes = new Map<string, number>();
  #listeners: StoreListener[] = [];

  #now(): number {
    return Date.now() - this.#epoch;
  }

  /** The session's record for reading (a token-alone one through the scratch record). */
  #rec(sid: string): Rec {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) throw wireError('session_unknown');
    return typeof slot === 'string' ? this.#view(slot) : slot;
  }

  #view(token: string): Rec {
    const v = this.#scratch;
    v.token = token;
    v.owner = this.#firstOwner ?? '';
    v.fence = 1;
    v.seen = 0;
    v.streams = NO_STREAMS;
    return v;
  }

  /** The session's record for writing: made a Rec of its own first. */
  #own(sid: string): Rec {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) throw wireError('session_unknown');
    if (typeof slot !== 'string') return slot;
    const rec = new Rec(slot, this.#firstOwner ?? '', 0);
    this.#sessions.set(sid, rec);
    return rec;
  }

  /** The session's record with its streams for writing: made on first use. */
  #withStreams(sid: string): Rec {
    const rec = this.#own(sid);
    if (rec.streams === NO_STREAMS) rec.streams = new Streams();
    return rec;
  }

  #record(sid: string, rec: Rec): SessionRecord {
    const r: SessionRecord = { sid, token: rec.token, attempt: this.#attemptOf.get(sid) ?? '', owner: rec.owner, fence: rec.fence };
    if (this.#meta.size === 0) return r;
    const meta = this.#meta.get(sid);
    return meta === undefined ? r : { ...r, meta };
  }

  async create(session: StoredSession, owner: string): Promise<void> {
    this.#graves.delete(session.sid);
    this.#firstOwner ??= owner;
    this.#sessions.set(session.sid, owner === this.#firstOwner ? session.token : new Rec(session.token, owner, 0));
    if (session.meta !== undefined) this.#meta.set(session.sid, session.meta);
    else if (this.#meta.size > 0) this.#meta.delete(session.sid);
    if (session.attempt !== '') {
      this.#attempts.set(session.attempt, session.sid);
      this.#attemptOf.set(session.sid, session.attempt);
    }
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
    const slot = this.#sessions.get(sid);
    return slot === undefined ? undefined : this.#record(sid, typeof slot === 'string' ? this.#view(slot) : slot);
  }

  async findByAttempt(attempt: string): Promise<SessionRecord | undefined> {
    const sid = this.#attempts.get(attempt);
    if (sid === undefined) return undefined;
    const slot = this.#sessions.get(sid);
    return slot === undefined ? undefined : this.#record(sid, typeof slot === 'string' ? this.#view(slot) : slot);
  }

  async forgetAttempt(sid: string): Promise<void> {
    this.#dropAttempt(sid);
  }

  #dropAttempt(sid: string): void {
    const attempt = this.#attemptOf.get(sid);
    if (attempt === undefined) return;
    this.#attemptOf.delete(sid);
    // Two nodes racing on one retried open may have made a session each: the attempt names the later one.
    if (this.#attempts.get(attempt) === sid) this.#attempts.delete(attempt);
  }

  async count(): Promise<number> {
    return this.#sessions.size;
  }

  async delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]> {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) return [];
    const rec = typeof slot === 'string' ? this.#view(slot) : slot;
    this.#sessions.delete(sid);
    if (this.#meta.size > 0) this.#meta.delete(sid);
    this.#dropAttempt(sid);
    if (tombstone) this.#bury(sid, { reason: tombstone.reason, token: rec.token, until: this.#now() + tombstone.ttlMs });
    return rec.streams === NO_STREAMS ? [] : rec.streams.outbox.takeAll();
  }

  #bury(sid: string, grave: Grave): void {
    const now = this.#now();
    // Oldest first (insertion order): drop the expired ones.
    for (const [k, g] of this.#graves) {
      if (g.until > now) break;
      this.#graves.delete(k);
    }
    // Full of live ones: this one goes without (its client gets session_unknown
    // and a reset). Never evict another's: a third party's open+close loop
    // must not erase why a victim's session closed.
    if (this.#graves.size >= MAX_TOMBSTONES) return;
    this.#graves.set(sid, grave);
  }

  async tombstone(sid: string): Promise<Tombstone | undefined> {
    const g = this.#graves.get(sid);
    if (g === undefined) return undefined;
    if (g.until <= this.#now()) {
      this.#graves.delete(sid);
      return undefined;
    }
    return { reason: g.reason, token: g.token };
  }

  // ---- owner and liveness ----

  #alive(node: string): boolean {
    const until = this.#nodes.get(node);
    return until !== undefined && until > this.#now();
  }

  async claim(sid: string, node: string): Promise<ClaimResult> {
    const seen = this.#rec(sid);
    if (seen.owner === node) return { owned: true, fence: seen.fence, took: false };
    if (seen.owner !== '' && this.#alive(seen.owner)) return { owned: false, owner: seen.owner };
    const rec = this.#own(sid);
    rec.owner = node;
    rec.fence++;
    return { owned: true, fence: rec.fence, took: true };
  }

  async release(sid: string, node: string, fence: number): Promise<void> {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) return;
    const rec = typeof slot === 'string' ? this.#view(slot) : slot;
    if (rec.owner === node && rec.fence === fence) this.#own(sid).owner = '';
  }

  async heartbeat(node: string, ttlMs: number): Promise<boolean> {
    const now = this.#now();
    const was = this.#nodes.get(node);
    this.#nodes.set(node, now + ttlMs);
    return was !== undefined && was > now;
  }

  async forgetNode(node: string): Promise<void> {
    this.#nodes.delete(node);
  }

  async touch(sid: string, until: number): Promise<void> {
    const t = until - this.#epoch;
    if (t > this.#rec(sid).seen) this.#own(sid).seen = t;
  }

  async seenUntil(sid: string): Promise<number | undefined> {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) return undefined;
    return (typeof slot === 'string' ? 0 : slot.seen) + this.#epoch;
  }

  // ---- outbound ----

  async enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult> {
    return this.#append(sid, entries);
  }

  enqueueNow(sid: string, entries: readonly OutboxEntry[]): EnqueueResult {
    return this.#append(sid, entries);
  }

  #append(sid: string, entries: readonly OutboxEntry[]): EnqueueResult {
    const { outbox } = this.#withStreams(sid).streams;
    for (const en of entries) outbox.pushEntry(en);
    return { lastSeq: outbox.lastSeq, bufferedBytes: outbox.bufferedBytes };
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const { outbox } = this.#rec(sid).streams;
    const result = outbox.ack(ack);
    return { result, bufferedBytes: outbox.bufferedBytes, lastSeq: outbox.lastSeq };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount = Infinity): Promise<ReadOutboundResult> {
    return this.#readOutbound(sid, maxWireBytes, from, maxCount);
  }

  readOutboundNow(sid: string, maxWireBytes: number, from?: number, maxCount = Infinity): ReadOutboundResult {
    return this.#readOutbound(sid, maxWireBytes, from, maxCount);
  }

  #readOutbound(sid: string, maxWireBytes: number, from: number | undefined, maxCount: number): ReadOutboundResult {
    const { outbox, inbox } = this.#rec(sid).streams;
    const b = outbox.batch(maxWireBytes, maxCount, from);
    // Field by field: object spread costs about a microsecond a call.
    return { seq: b.seq, count: b.count, m: b.m, wireBytes: b.wireBytes, inboundAck: inbox.ack, lastSeq: outbox.lastSeq };
  }

  async readOutboundWires(sid: string, maxWireBytes: number, from: number, maxCount: number): Promise<WiresRead> {
    return this.readOutboundWiresNow(sid, maxWireBytes, from, maxCount);
  }

  readOutboundWiresNow(sid: string, maxWireBytes: number, from: number, maxCount: number): WiresRead {
    const { outbox, inbox } = this.#rec(sid).streams;
    const b = outbox.wires(maxWireBytes, maxCount, from);
    return { seq: b.seq, count: b.count, wires: b.wires, wireBytes: b.wireBytes, inboundAck: inbox.ack, lastSeq: outbox.lastSeq };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const { outbox } = this.#rec(sid).streams;
    return from === undefined ? outbox.pending : outbox.pendingFrom(from);
  }

  // ---- inbound ----

  async acceptInbound(sid: string, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult> {
    return this.acceptInboundNow(sid, seq, messages);
  }

  acceptInboundNow(sid: string, seq: number, messages: readonly StreamItem[]): AcceptInboundResult {
    if (messages.length === 0) {
      const { fence, streams } = this.#rec(sid);
      return { ok: true, skip: 0, ack: streams.inbox.ack, fence };
    }
    // One lookup of the session: every inbound batch comes this way.
    const { fence, streams: s } = this.#withStreams(sid);
    const verdict = s.inbox.accept(seq, messages.length);
    if (!verdict.ok) return { ok: false, expected: verdict.expected, ack: s.inbox.ack, fence };
    for (const m of verdict.skip === 0 ? messages : messages.slice(verdict.skip)) s.log.push(m);
    return { ok: true, skip: verdict.skip, ack: s.inbox.ack, fence };
  }

  async readInbound(sid: string, from: number): Promise<InboundBatch> {
    const { streams: s, fence } = this.#rec(sid);
    const start = Math.max(from, s.logSeq);
    const messages = s.log.slice(s.head + (start - s.logSeq));
    return { seq: start, messages, fence };
  }

  async markDelivered(sid: string, seq: number, fence: number): Promise<boolean> {
    return this.#markDelivered(sid, seq, fence);
  }

  markDeliveredNow(sid: string, seq: number, fence: number): boolean {
    return this.#markDelivered(sid, seq, fence);
  }

  #markDelivered(sid: string, seq: number, fence: number): boolean {
    const rec = this.#rec(sid);
    if (rec.fence !== fence) return false;
    const s = rec.streams;
    if (s === NO_STREAMS || seq <= s.delivered) return true;
    const upTo = Math.min(seq, s.inbox.ack);
    const drop = upTo - s.logSeq + 1;
    if (drop > 0) {
      s.head += drop;
      s.logSeq += drop;
      if (s.head === s.log.length) {
        s.log = [];
        s.head = 0;
      } else if (s.head > 1024 && s.head * 2 > s.log.length) {
        s.log = s.log.slice(s.head);
        s.head = 0;
      }
    }
    s.delivered = Math.max(s.delivered, upTo);
    return true;
  }

  async delivered(sid: string): Promise<number> {
    return this.#rec(sid).streams.delivered;
  }

  // ---- wake-ups ----

  async publish(sid: string, event: StoreEvent): Promise<void> {
    // After this turn, as a store elsewhere would: a listener never runs inside the publisher's call.
    const listeners = this.#listeners;
    if (listeners.length === 0) return;
    queueMicrotask(() => {
      for (const l of listeners) {
        try {
          l(sid, event);
        } catch {
          // A listener's own failure must not keep the event from the others (the server's reports its own).
        }
      }
    });
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }
}
