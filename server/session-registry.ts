/**
 * The node: this server's view of the sessions in the store. It opens
 * sessions, finds and authenticates them for each request (this node's own
 * sessions from memory, any other from the store), owns sessions (a session
 * opened here, or taken over from a node that died or left), routes the
 * store's wake-ups to its sessions and transports, and runs the one periodic
 * tick that ends poll holds, expires idle sessions and keeps this node's
 * heartbeat (one timer for all sessions, not one per session).
 *
 * A server given its own store (`store` option) is clustered: it publishes
 * wake-ups, beats its heartbeat and claims sessions of dead nodes. A server
 * that made its own MemoryStore is alone and skips all of that.
 */
import type { IncomingMessage } from 'node:http';
import { nanoid } from 'nanoid';
import {
  HoldlineError,
  PROTOCOL_VERSION,
  wireError,
  type CloseReason,
  type MessageEntry,
  type OutboxEntry,
  type MessageWire,
  utf8Length,
  type OpenRequest,
  type OpenResponse,
  type Result,
  type SessionAuth,
  type StreamItem,
} from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import { attemptKey, clientAddress, OpenLimiter, verdict, type Verdict } from './open-admission.js';
import { clockMs } from './clock.js';
import type { PollingTransport } from './polling.js';
import type { WebSocketTransport } from './websocket.js';
import { Session, type SessionHost } from './session.js';
import PQueue from 'p-queue';
import type { RemoteHost } from './remote-session.js';
import { ackOutcome, type AckOutcome } from './ack-outcome.js';
import type { AcceptInboundResult, BatchAsk, ReadOutboundResult, SessionRecord, StoreEvent } from './store.js';
import { ServerMetrics } from './metrics.js';

/** Compare two tokens in time that depends only on their length. */
function sameToken(given: string, expected: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

/** A request's session: `session` when this node owns it, else undefined (owned by another node). */
export interface Served {
  readonly sid: string;
  readonly session: Session | undefined;
}

export type AuthResult =
  | { ok: true; value: Served }
  | { ok: false; error: HoldlineError; closed?: CloseReason };

export interface RegistryEvents {
  session(session: Session): void;
  error(err: unknown): void;
}

const unknownSession = (sid: string) =>
  ({ ok: false, error: wireError('session_unknown', `no session ${sid}: it expired, was closed, or the server restarted`) }) as const;
const badCredential = () => ({ ok: false, error: wireError('bad_credential', 'the session token is wrong') }) as const;
const closedResult = (reason: CloseReason) =>
  ({ ok: false, error: wireError('session_closed', `session closed: ${reason.code}: ${reason.message}`), closed: reason }) as const;

/** What one node's broadcast reached. */
export interface BroadcastResult {
  /** Sessions owned by this node the message was queued to. */
  queued: number;
  /** Sessions that refused it (closed meanwhile, or queue_full after sendTimeoutMs). */
  failed: number;
}

/** An outbound entry from a message in wire form (a broadcast from another node). */
function encodeWire(w: MessageWire): OutboxEntry {
  if (typeof w === 'string') return { wire: w, bytes: utf8Length(w) };
  const pad = w.b.endsWith('==') ? 2 : w.b.endsWith('=') ? 1 : 0;
  return { wire: w, bytes: (w.b.length / 4) * 3 - pad };
}

/** A session's identity from a stored record's meta (`{"a": address, "d": data}`, written by #open). */
function parseMeta(meta: string | undefined): { data: unknown; remoteAddress: string | undefined } {
  let o: { a?: unknown; d?: unknown } | undefined;
  try {
    o = meta ? (JSON.parse(meta) as typeof o) : undefined;
  } catch {
    o = undefined;
  }
  return { data: o?.d, remoteAddress: typeof o?.a === 'string' ? o.a : undefined };
}

/** Sends of one broadcast in flight at once (each is a store round trip with a networked store). */
const BROADCAST_CONCURRENCY = 512;
/** Sessions per queued task of a broadcast. */
const BROADCAST_CHUNK = 64;

export class SessionRegistry implements SessionHost, RemoteHost {
  readonly options: ResolvedOptions;
  /** This node's id in the store. */
  readonly node: string;
  /** Shares its store with other nodes (see the file comment). */
  readonly clustered: boolean;
  /** Set by the server once its transports exist (they need the registry first). */
  polling!: PollingTransport;
  /** @internal The WebSocket transport, when the server offers it (left out of the .d.ts: its types are `ws`'s). */
  websocket: WebSocketTransport | undefined;
  /** This node's figures (hl.metrics()); its methods also write the debug log. */
  readonly metrics = new ServerMetrics();
  /** Sessions this node owns. */
  readonly #live = new Map<string, Session>();
  /**
   * Sessions opened and not yet used: their open may still be retried (the
   * answer lost), so the store keeps their attempt id until the first use.
   */
  readonly #unused = new Set<string>();
  readonly #opening = new Map<string, Promise<Result<OpenResponse>>>();
  /** Takeovers under way, so that two requests of one session adopt it once. */
  readonly #adopting = new Map<string, Promise<Session | undefined>>();
  /** Sessions being removed from the store (shutdown() waits for them). */
  readonly #ending = new Set<Promise<void>>();
  /**
   * Sessions this node closed whose removal from the store is under way: a
   * request of theirs in that gap is told how they closed, as it is after
   * (by the tombstone), not served from the store's last copy of them.
   */
  readonly #ended = new Map<string, { token: string; reason: CloseReason | undefined }>();
  /** Idle sessions whose liveness is being asked of the store. */
  readonly #asking = new Set<string>();
  readonly #events: RegistryEvents;
  readonly #unsubscribe: () => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  /** Opens past the maxSessions check whose store.create() has not finished. */
  #reserved = 0;
  /** Date.now() when the heartbeat is next due. */
  #nextBeat = 0;
  /** A heartbeat has been stored before (a later one that finds none means the store lost it). */
  #beaten = false;
  #queuedTotal = 0;
  /** Opens per client key lately (maxOpensPerMinute). */
  readonly #opens: OpenLimiter;

  constructor(options: ResolvedOptions, events: RegistryEvents) {
    this.options = options;
    this.clustered = options.sharedStore;
    this.node = options.nodeId ?? nanoid(10);
    this.#events = events;
    this.#opens = new OpenLimiter(options.maxOpensPerMinute);
    this.#unsubscribe = this.clustered ? options.store.subscribe(this.#onStoreEvent) : () => {};
  }

  get size(): number {
    return this.#live.size;
  }

  get(sid: string): Session | undefined {
    return this.#live.get(sid);
  }

  sessions(): IterableIterator<Session> {
    return this.#live.values();
  }

  readonly reportError = (err: unknown): void => {
    this.metrics.reported(err);
    this.#events.error(err);
  };

  owned(sid: string): Session | undefined {
    return this.#live.get(sid);
  }

  get queuedTotal(): number {
    return this.#queuedTotal;
  }

  queued(delta: number): void {
    this.#queuedTotal = Math.max(0, this.#queuedTotal + delta);
  }

  ackWanted(session: Session): void {
    this.polling.ackWanted(session.id);
  }

  holding(sid: string): boolean {
    return this.polling.holding(sid) || this.websocket?.carrying(sid) === true;
  }

  // ---- opening ----

  /** Open a session, or return the one this attempt already opened (a retried open). */
  open(req: OpenRequest, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    const key = attemptKey(req.attempt, httpReq, req.auth);
    const pending = this.#opening.get(key);
    if (pending) return pending;
    const p = this.#open(req, key, httpReq).finally(() => this.#opening.delete(key));
    this.#opening.set(key, p);
    return p;
  }

  async #open(req: OpenRequest, attempt: string, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    if (this.#closing) return { ok: false, error: wireError('server_closing') };
    if (req.v !== PROTOCOL_VERSION) {
      return { ok: false, error: wireError('unsupported_version', `this server speaks version ${PROTOCOL_VERSION}, not ${req.v}`) };
    }
    if (!this.#admitOpen(httpReq)) {
      return { ok: false, error: wireError('too_many_sessions', `too many opens from this client (maxOpensPerMinute ${this.options.maxOpensPerMinute})`) };
    }
    // Authentication first, also for a retried open: a session is handed
    // back only to a request that passes it.
    let data: unknown;
    if (this.options.authenticate) {
      let v: Verdict = { ok: false };
      try {
        v = verdict(await this.options.authenticate(httpReq, req.auth));
      } catch (e) {
        this.reportError(e);
      }
      if (!v.ok) return { ok: false, error: wireError('unauthorized') };
      data = v.data;
    }
    const { store } = this.options;
    const existing = await store.findByAttempt(attempt);
    if (existing) return { ok: true, value: this.#openResponse(existing.sid, existing.token) };
    // With a shared store, other nodes need the identity too: it goes with the record, as JSON.
    const remoteAddress = this.#clientAddress(httpReq);
    let meta: string | undefined;
    if (this.clustered) {
      try {
        meta = JSON.stringify(data === undefined ? { a: remoteAddress } : { a: remoteAddress, d: data });
      } catch (e) {
        this.reportError(new HoldlineError('invalid_argument', `the authenticate hook's data must be JSON with a shared store: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
        return { ok: false, error: wireError('internal_error') };
      }
    }

    if (this.#live.size + this.#reserved >= this.options.maxSessions) {
      return { ok: false, error: wireError('too_many_sessions', `the server holds maxSessions (${this.options.maxSessions}) sessions`) };
    }
    // An id, not a secret (the token is): 96 random bits keep ids unique.
    const sid = nanoid(16);
    // 22 characters: 132 random bits, as many as most session tokens carry and
    // fewer bytes held per idle session than 32.
    const token = nanoid(22);
    this.#reserved++;
    try {
      if (this.clustered) await this.#beat();
      await store.create(meta === undefined ? { sid, token, attempt } : { sid, token, attempt, meta }, this.node);
    } finally {
      this.#reserved--;
    }
    if (this.#closing) {
      await store.delete(sid);
      return { ok: false, error: wireError('server_closing') };
    }
    const session = new Session(sid, token, this, clockMs(), { data, remoteAddress });
    this.#live.set(sid, session);
    this.#unused.add(sid);
    this.#startTicker();
    this.#announce(session);
    return { ok: true, value: this.#openResponse(sid, token) };
  }

  /** Take one open from the client's bucket (maxOpensPerMinute); false when it is empty. */
  #admitOpen(req: IncomingMessage): boolean {
    let key: string;
    try {
      key = this.options.clientKey ? String(this.options.clientKey(req)) : this.#clientAddress(req);
    } catch (e) {
      this.reportError(e);
      key = this.#clientAddress(req);
    }
    return this.#opens.admit(key);
  }

  #clientAddress(req: IncomingMessage): string {
    return clientAddress(req, this.options.trustProxy);
  }

  #announce(session: Session): void {
    this.metrics.sessionOpened(session.id, session.resumed);
    try {
      this.#events.session(session);
    } catch (e) {
      this.reportError(e);
    }
  }

  #openResponse(sid: string, token: string): OpenResponse {
    const o = this.options;
    return {
      v: PROTOCOL_VERSION,
      sid,
      token,
      pollTimeoutMs: o.pollTimeoutMs,
      sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
      maxMessageBytes: o.maxMessageBytes,
      maxBatchBytes: o.maxBatchBytes,
      maxBatchMessages: o.maxBatchMessages,
    };
  }

  // ---- finding a request's session ----

  /**
   * The session these credentials prove, or the error to answer with; for a
   * session closed recently, also why it closed. A session of this node's
   * own is found at once; any other is looked up in the store (and taken
   * over when its owner is gone).
   */
  authenticateSession(auth: SessionAuth): AuthResult | Promise<AuthResult> {
    const live = this.#live.get(auth.sid);
    if (live === undefined) {
      const ended = this.#ended.get(auth.sid);
      if (ended === undefined) return this.#fromStore(auth);
      if (!sameToken(auth.token, ended.token)) return badCredential();
      return ended.reason ? closedResult(ended.reason) : unknownSession(auth.sid);
    }
    if (!sameToken(auth.token, live.token)) return badCredential();
    if (this.#unused.size > 0 && this.#unused.delete(auth.sid)) {
      this.options.store.forgetAttempt(auth.sid).catch(this.reportError);
    }
    return { ok: true, value: { sid: live.id, session: live } };
  }

  async #fromStore(auth: SessionAuth): Promise<AuthResult> {
    const { store } = this.options;
    const rec = await store.get(auth.sid);
    if (rec === undefined) return this.#gone(auth);
    if (!sameToken(auth.token, rec.token)) return badCredential();
    if (rec.attempt !== '') store.forgetAttempt(rec.sid).catch(this.reportError);
    let session: Session | undefined;
    try {
      session = this.clustered && !this.#closing ? await this.#adopt(rec) : undefined;
    } catch (e) {
      // Its owner closed it between the read and the takeover: say how.
      if (e instanceof HoldlineError && e.code === 'session_unknown') return this.#gone(auth);
      throw e;
    }
    // Between the store's answer and now this node may have opened, adopted or closed it.
    session ??= this.#live.get(rec.sid);
    if (session === undefined && this.#ended.has(rec.sid)) return this.authenticateSession(auth);
    return { ok: true, value: { sid: rec.sid, session } };
  }

  /** A session the store does not hold: closed (a tombstone says why) or unknown. */
  async #gone(auth: SessionAuth): Promise<AuthResult> {
    const grave = await this.options.store.tombstone(auth.sid);
    if (grave === undefined) return unknownSession(auth.sid);
    if (!sameToken(auth.token, grave.token)) return badCredential();
    return closedResult(grave.reason);
  }

  /** Take the session over if its owner is gone; undefined while another live node owns it. */
  #adopt(rec: SessionRecord): Promise<Session | undefined> {
    const pending = this.#adopting.get(rec.sid);
    if (pending) return pending;
    const p = this.#adoptNow(rec).finally(() => this.#adopting.delete(rec.sid));
    this.#adopting.set(rec.sid, p);
    return p;
  }

  async #adoptNow(rec: SessionRecord): Promise<Session | undefined> {
    const { store } = this.options;
    await this.#beat();
    const claim = await store.claim(rec.sid, this.node);
    if (!claim.owned) return undefined;
    const known = this.#live.get(rec.sid);
    if (known) return known;
    const [delivered, read] = await Promise.all([store.delivered(rec.sid), store.readOutbound(rec.sid, 0, Number.MAX_SAFE_INTEGER)]);
    const identity = parseMeta(rec.meta);
    const session = new Session(rec.sid, rec.token, this, clockMs(), identity, { fence: claim.fence, delivered, accepted: read.inboundAck });
    this.#live.set(rec.sid, session);
    this.#startTicker();
    this.#announce(session);
    // What the last owner accepted and did not mark delivered.
    session.pump();
    return session;
  }

  // ---- what every transport does with a request ----

  /**
   * Apply the client's cumulative ack (and check a poll's `from`). False:
   * the caller answers bad_ack. Synchronous when nothing changes.
   */
  applyAck(served: Served, ack: number, from?: number): boolean | Promise<boolean> {
    const { session } = served;
    if (session) return session.ackApplied(ack, from) || session.applyAck(ack, from);
    return this.#ackRemote(served.sid, ack, from);
  }

  async #ackRemote(sid: string, ack: number, from?: number): Promise<boolean> {
    return (await this.#ackRemoteOutcome(sid, ack, from)) !== false;
  }

  async #ackRemoteOutcome(sid: string, ack: number, from?: number): Promise<AckOutcome> {
    const r = await this.options.store.ackOutbound(sid, ack);
    if (r.result === 'ok') this.#publish(sid, { type: 'ack', node: this.node, ack, bufferedBytes: r.bufferedBytes });
    return ackOutcome(r, ack, from);
  }

  /**
   * A poll's ack, for the polling transport: undefined when it changes
   * nothing (nothing to apply), else a function that applies it and says
   * what the store then holds for the poll (see AckOutcome). The transport
   * applies it once the poll is held, so that one store call both applies
   * the ack and says whether the poll can be answered at once.
   */
  pollAck(served: Served, ack: number, from?: number): (() => Promise<AckOutcome>) | undefined {
    const { session } = served;
    if (session) return session.ackApplied(ack, from) ? undefined : () => session.ackOutbound(ack, from);
    return () => this.#ackRemoteOutcome(served.sid, ack, from);
  }

  /** Judge an inbound batch and keep what is new; the caller then has it delivered (deliver()). */
  accept(served: Served, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult> {
    return this.options.store.acceptInbound(served.sid, seq, messages);
  }

  /** Have accepted messages delivered: here, or by the owner. */
  deliver(served: Served, messages: readonly StreamItem[], skip: number, seq: number): void {
    this.metrics.received(messages, skip);
    if (served.session) served.session.receive(messages, skip, seq);
    else if (skip < messages.length) this.#publish(served.sid, { type: 'in', node: this.node });
  }

  /** A request of the session came (`holdMs`: a poll held that long). */
  seen(served: Served, holdMs = 0): void {
    if (served.session) served.session.touch(clockMs());
    else this.options.store.touch(served.sid, Date.now() + holdMs).catch(this.reportError);
  }

  /** The client closes its session. */
  clientClose(served: Served): void {
    const reason: CloseReason = { code: 'client_closed', message: 'closed by the client' };
    // The owner closes it (the store then forgets it), wherever it lives.
    if (served.session) served.session.close(reason);
    else this.#publish(served.sid, { type: 'close', node: this.node, reason });
  }

  // ---- sending from any node ----

  get maxMessageBytes(): number {
    return this.options.maxMessageBytes;
  }

  /** Append to a session owned elsewhere (or nowhere: its next node takes it over) and wake its poll. */
  async sendRemote(sid: string, entry: OutboxEntry): Promise<void> {
    const owned = this.#live.get(sid);
    if (owned) return owned.sendEncoded(entry);
    await this.options.store.enqueue(sid, [entry]);
    this.polling.outboundReady(sid);
    this.websocket?.outboundReady(sid);
    this.#publish(sid, { type: 'out', node: this.node });
  }

  closeRemote(sid: string, reason: CloseReason): void {
    const owned = this.#live.get(sid);
    if (owned) owned.close(reason);
    else this.#publish(sid, { type: 'close', node: this.node, reason });
  }

  /**
   * Queue `entry` to every session this node owns, and (clustered) have
   * every other node do the same for its own. At most BROADCAST_CONCURRENCY
   * sends wait for the store at once; a send that waits for room (a client
   * behind on its acks) frees its place at once and is counted when it ends.
   */
  async broadcast(entry: MessageEntry): Promise<BroadcastResult> {
    if (this.clustered) this.#publish('*', { type: 'broadcast', node: this.node, data: entry.wire });
    return this.#sendToOwned(entry);
  }

  async #sendToOwned(entry: OutboxEntry): Promise<BroadcastResult> {
    // The sessions of now, in chunks: a queued task per chunk, not per session.
    const sessions = [...this.#live.values()];
    const queue = new PQueue({ concurrency: Math.ceil(BROADCAST_CONCURRENCY / BROADCAST_CHUNK) });
    let queued = 0;
    let failed = 0;
    const ok = (): void => void queued++;
    const notOk = (): void => void failed++;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < sessions.length; i += BROADCAST_CHUNK) {
      const chunk = sessions.slice(i, i + BROADCAST_CHUNK);
      void queue.add(async () => {
        const committing: Promise<void>[] = [];
        for (const s of chunk) {
          const sent = s.sendEncoded(entry).then(ok, notOk);
          // A send that waits for room (its client is behind on acks) frees its place at once.
          if (s.sendWaiting) sends.push(sent);
          else committing.push(sent);
        }
        await Promise.all(committing);
      });
    }
    await queue.onIdle();
    await Promise.all(sends);
    return { queued, failed };
  }

  // ---- transports' and sessions' calls ----

  pollTaken(sid: string, ws: number): void {
    this.#startTicker();
    // The client polls: a WebSocket that carried the session is over (it fell back).
    this.websocket?.pollTaken(sid, ws);
    if (this.clustered) this.#publish(sid, { type: 'poll', node: this.node, at: Date.now(), ws });
  }

  pollPredatesWebSocket(sid: string, ws: number): boolean {
    return this.websocket?.predates(sid, ws) === true;
  }

  /** A WebSocket now carries the session: a poll held anywhere is answered. */
  carriedByWebSocket(sid: string): void {
    this.#startTicker();
    this.polling.superseded(sid, Date.now());
    if (this.clustered) this.#publish(sid, { type: 'poll', node: this.node, at: Date.now() });
  }

  heldRead(session: Session): BatchAsk | undefined {
    return this.polling.heldRead(session.id);
  }

  outboundReady(session: Session, commits: number, batch?: ReadOutboundResult): void {
    this.polling.outboundReady(session.id, commits, batch);
    this.websocket?.outboundReady(session.id);
    // A poll or WebSocket of this node carries it: no other node holds one to
    // wake (one poll per session), so no publish (a broadcast to every
    // session would otherwise publish once per session).
    if (this.clustered && !this.holding(session.id)) this.#publish(session.id, { type: 'out', node: this.node });
  }

  sessionEnded(session: Session, reason: CloseReason): void {
    if (this.#live.get(session.id) !== session) return;
    this.metrics.sessionClosed(session.id, reason);
    this.#live.delete(session.id);
    this.#unused.delete(session.id);
    this.polling.closed(session.id, reason);
    this.websocket?.closed(session.id, reason);
    // Explicit closes are remembered so a returning client learns the reason;
    // an expired or shut-down session is forgotten and the client gets `reset`.
    const remember = reason.code === 'server_closed' || reason.code === 'client_closed';
    const tombstone = remember ? { reason, ttlMs: this.options.sessionIdleTimeoutMs } : undefined;
    this.#ended.set(session.id, { token: session.token, reason: remember ? reason : undefined });
    const ending = this.options.store
      .delete(session.id, tombstone)
      .then((rest) => {
        if (this.clustered) this.#publish(session.id, { type: 'close', node: this.node, reason });
        session.ended(reason, rest);
      })
      .catch(this.reportError)
      .finally(() => {
        this.#ending.delete(ending);
        if (this.#ended.get(session.id)?.token === session.token) this.#ended.delete(session.id);
      });
    this.#ending.add(ending);
    if (this.#live.size === 0) this.#stopTicker();
  }

  #publish(sid: string, event: StoreEvent): void {
    this.options.store.publish(sid, event).catch(this.reportError);
  }

  readonly #onStoreEvent = (sid: string, event: StoreEvent): void => {
    if (event.node === this.node) return;
    try {
      switch (event.type) {
        case 'out':
          this.websocket?.outboundReady(sid);
          return this.polling.outboundReady(sid);
        case 'ack':
          return this.#live.get(sid)?.acked(event.ack, event.bufferedBytes);
        case 'in':
          return this.#live.get(sid)?.pump();
        case 'poll':
          // A WebSocket's hello publishes no count: every other WebSocket of the session goes.
          this.websocket?.pollTaken(sid, event.ws);
          return this.polling.superseded(sid, event.at);
        case 'close':
          this.polling.closed(sid, event.reason);
          this.websocket?.closed(sid, event.reason);
          return this.#live.get(sid)?.close(event.reason);
        case 'broadcast':
          this.#sendToOwned(encodeWire(event.data)).catch(this.reportError);
          return;
        case 'resync':
          // Events were lost while the store's subscriber was away: deliver
          // what other nodes accepted meanwhile, and let held polls read again.
          for (const s of this.#live.values()) s.pump();
          this.polling.release();
          return;
      }
    } catch (e) {
      this.reportError(e);
    }
  };

  // ---- the tick ----

  /** Keep this node's heartbeat (clustered): beat unless a beat is recent enough to keep the lease for 2/3 of it. */
  async #beat(): Promise<void> {
    const t = Date.now();
    if (t < this.#nextBeat) return;
    this.#nextBeat = t + Math.floor(this.options.ownerLeaseMs / 3);
    const kept = await this.options.store.heartbeat(this.node, this.options.ownerLeaseMs);
    if (!kept && this.#beaten) this.#checkHeld();
    this.#beaten = true;
  }

  /**
   * The store had lost this node's last heartbeat: it lost its data (Redis
   * restarted without it, or failed over to a replica that had not got it),
   * or this node stalled past its lease. Close at once the sessions the store
   * no longer holds, rather than keep them until their idle timeout: their
   * application hears `close` (session_unknown), their clients reset and
   * learn what was lost.
   */
  #checkHeld(): void {
    const queue = new PQueue({ concurrency: BROADCAST_CONCURRENCY });
    const reason: CloseReason = { code: 'session_unknown', message: 'the store lost the session (Redis restarted or failed over without its data)' };
    for (const session of [...this.#live.values()]) {
      queue
        .add(async () => {
          // Twice, a lease apart: a session the store misses once (a read
          // racing its open or a takeover on a node that stalled past its
          // lease) must not be closed under its client.
          const { store, ownerLeaseMs } = this.options;
          if ((await store.get(session.id)) !== undefined) return;
          await new Promise((r) => setTimeout(r, ownerLeaseMs).unref());
          if (session.state === 'closed' || this.#live.get(session.id) !== session) return;
          if ((await store.get(session.id)) === undefined && (await store.tombstone(session.id)) === undefined) session.close(reason);
        })
        .catch(this.reportError);
    }
  }

  #startTicker(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(clockMs()), this.options.tickMs);
    this.#timer.unref();
  }

  #stopTicker(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #touchGone = (sid: string): void => {
    this.#live.get(sid)?.touch(clockMs());
  };

  /** End expired holds, expire idle sessions, keep the heartbeat. */
  tick(now: number): void {
    this.polling.tick(now, this.#touchGone);
    const idle = this.options.sessionIdleTimeoutMs;
    for (const session of this.#live.values()) {
      if (now - session.seen <= idle || this.holding(session.id)) continue;
      if (this.clustered) this.#askIdle(session, now);
      else session.close({ code: 'idle_timeout', message: `not polled for ${idle} ms` });
    }
    if (this.clustered) this.#beat().catch(this.reportError);
    if (this.#opens.size > 0 && now % 5_000 < this.options.tickMs) this.#opens.prune();
    if (this.#live.size === 0 && this.polling.held === 0 && (this.websocket?.size ?? 0) === 0) this.#stopTicker();
  }

  /** Idle here: has another node seen the client since? Else it expires. */
  #askIdle(session: Session, now: number): void {
    if (this.#asking.has(session.id)) return;
    this.#asking.add(session.id);
    const idle = this.options.sessionIdleTimeoutMs;
    this.options.store
      .seenUntil(session.id)
      .then((until) => {
        const ago = until === undefined ? Infinity : Date.now() - until;
        if (ago <= idle) session.touch(now - Math.max(0, ago));
        else session.close({ code: 'idle_timeout', message: `not polled for ${idle} ms` });
      })
      .catch(this.reportError)
      .finally(() => this.#asking.delete(session.id));
  }

  /**
   * Stop serving. Alone: close every session (`server_shutdown`: clients
   * reconnect and `reset`). Clustered: hand every session over (held polls
   * are answered at once, ownership released), so clients go on with
   * another node with nothing lost.
   */
  async shutdown(): Promise<void> {
    this.#closing = true;
    this.#stopTicker();
    const sessions = [...this.#live.values()];
    if (!this.clustered) {
      for (const session of sessions) session.close({ code: 'server_shutdown', message: 'the server is shutting down' });
      this.websocket?.release();
      await Promise.all(this.#ending);
      return;
    }
    const { store } = this.options;
    await Promise.all(sessions.map((s) => s.committed()));
    this.#live.clear();
    for (const s of sessions) s.detach();
    this.polling.release();
    this.websocket?.release();
    await Promise.all(sessions.map((s) => store.release(s.id, this.node, s.fence).catch(this.reportError)));
    await Promise.all(this.#ending);
    await store.forgetNode(this.node).catch(this.reportError);
    this.#unsubscribe();
  }
}
