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
 * wake-ups, beats its heartbeat and claims sessions of dead nodes. Alone (its
 * own MemoryStore), it skips all of that.
 *
 * This file is the node's session map and what the transports and the server
 * call; its parts: opening (session-opener.ts), finding and taking over
 * (session-lookup.ts), the heartbeat and fencing (owner-lease.ts), the tick
 * (node-ticker.ts), the store's wake-ups (store-events.ts), broadcasts.
 */
import type { IncomingMessage } from 'node:http';
import { nanoid } from 'nanoid';
import type { CloseReason, MessageEntry, OpenRequest, OpenResponse, OutboxEntry, Result, SessionAuth, StreamItem } from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import { OpenLimiter } from './open-admission.js';
import { clockMs } from './clock.js';
import type { PollingTransport } from './polling.js';
import type { WebSocketTransport } from './websocket.js';
import { Session } from './session.js';
import type { SessionHost, SessionIdentity } from './session-host.js';
import { SessionContexts } from './session-contexts.js';
import type { RemoteHost } from './remote-session.js';
import { ackOutcome, type AckOutcome, type AckRead } from './ack-outcome.js';
import type { AcceptInboundResult, BatchAsk, ReadOutboundResult, StoreEvent } from './store.js';
import { ServerMetrics } from './metrics.js';
import { DeliveryMarks } from './delivery-marks.js';
import { sendToOwned, type BroadcastResult } from './broadcast.js';
import { NodeTicker } from './node-ticker.js';
import { OwnerLease } from './owner-lease.js';
import { SessionLookup, type AuthResult, type EndedSession, type LookupHost, type Served } from './session-lookup.js';
import { SessionOpener, type OpenerHost } from './session-opener.js';
import { storeEventListener } from './store-events.js';

export type { AuthResult, Served } from './session-lookup.js';
export type { BroadcastResult } from './broadcast.js';

export interface RegistryEvents {
  session(session: Session): void;
  error(err: unknown): void;
}

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
  /** Sessions opened and not yet used: their open may be retried (the answer lost), so the store keeps their attempt id. */
  readonly #unused = new Set<string>();
  /** Sessions being removed from the store (shutdown() waits for them). */
  readonly #ending = new Set<Promise<void>>();
  /**
   * Sessions this node closed whose removal from the store is under way: a request of theirs in
   * that gap is told how they closed (as by the tombstone after), not served from the store's copy.
   */
  readonly #ended = new Map<string, EndedSession>();
  readonly #events: RegistryEvents;
  /** Each session's node and identity, shared by the sessions of one address (server/session-contexts.ts). */
  readonly #contexts = new SessionContexts(this);
  readonly #unsubscribe: () => void;
  #closing = false;
  #queuedTotal = 0;
  readonly #lease: OwnerLease;
  readonly #opener: SessionOpener;
  readonly #lookup: SessionLookup;
  readonly #ticker: NodeTicker;
  /** The sessions' marks of inbound delivery, written a moment later (server/delivery-marks.ts). */
  readonly #marks: DeliveryMarks;

  constructor(options: ResolvedOptions, events: RegistryEvents) {
    this.options = options;
    this.clustered = options.sharedStore;
    this.node = options.nodeId ?? nanoid(10);
    this.#events = events;
    this.#lease = new OwnerLease(this);
    const opens = new OpenLimiter(options.maxOpensPerMinute);
    const parts: OpenerHost & LookupHost = {
      options,
      node: this.node,
      clustered: this.clustered,
      reportError: this.reportError,
      lease: this.#lease,
      live: this.#live,
      unused: this.#unused,
      ended: this.#ended,
      closing: () => this.#closing,
      own: (sid, token, identity, takeover?: { fence: number; delivered: number; accepted: number }) => this.#own(sid, token, identity, takeover),
    };
    this.#opener = new SessionOpener(parts, opens);
    this.#lookup = new SessionLookup(parts);
    this.#ticker = new NodeTicker(this, this.#lease, opens);
    this.#marks = new DeliveryMarks(options.store, this.reportError);
    this.#unsubscribe = this.clustered ? options.store.subscribe(storeEventListener(this)) : () => {};
  }

  get size(): number {
    return this.#live.size;
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

  /** Own these sessions (default: all) no more here, no `close` (waiting sends reject): the node leaves, is fenced, or another took one over. */
  disown(sessions: readonly Session[] = [...this.#live.values()]): void {
    for (const s of sessions) {
      if (this.#live.get(s.id) !== s) continue;
      this.polling.disown(s);
      this.websocket?.disowned(s.id);
      s.detach();
      this.#live.delete(s.id);
      this.#unused.delete(s.id);
    }
  }

  // ---- opening and owning ----

  /** Open a session, or return the one this attempt already opened (a retried open). */
  open(req: OpenRequest, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    return this.#opener.open(req, httpReq);
  }

  /** Own a session opened here, or taken over (`takeover`: what the store holds of it), and announce it. */
  #own(
    sid: string,
    token: string,
    identity: SessionIdentity,
    takeover: { fence: number; delivered: number; accepted: number } | undefined,
  ): Session {
    const session = new Session(sid, token, this.#contexts.of(identity), clockMs(), takeover);
    this.#live.set(sid, session);
    this.polling.own(session);
    // Opened here: its open may be retried until its first use.
    if (takeover === undefined) this.#unused.add(sid);
    this.#ticker.start();
    this.#announce(session);
    return session;
  }

  #announce(session: Session): void {
    this.metrics.sessionOpened(session.id, session.resumed);
    try {
      this.#events.session(session);
    } catch (e) {
      this.reportError(e);
    }
  }

  // ---- finding a request's session ----

  /**
   * The session these credentials prove, or the error to answer with; for a
   * session closed recently, also why it closed. A session of this node's
   * own is found at once; any other is looked up in the store (and taken
   * over when its owner is gone: session-lookup.ts).
   */
  authenticateSession(auth: SessionAuth): AuthResult | Promise<AuthResult> {
    return this.#lookup.authenticate(auth);
  }

  // ---- what every transport does with a request ----

  /**
   * Apply the client's cumulative ack (and check a poll's `from`). False:
   * the caller answers bad_ack. Synchronous when nothing changes.
   */
  applyAck(served: Served, ack: number, from?: number): boolean | Promise<boolean> {
    const { session } = served;
    if (session) return session.ackApplied(ack, from) || session.applyAck(ack, from);
    return this.#ackRemoteOutcome(served.sid, ack, from).then((outcome) => outcome !== false);
  }

  async #ackRemoteOutcome(sid: string, ack: number, from?: number): Promise<AckOutcome> {
    const r = await this.options.store.ackOutbound(sid, ack);
    if (r.result === 'ok') this.#publish(sid, { type: 'ack', node: this.node, ack, bufferedBytes: r.bufferedBytes });
    return ackOutcome(r, ack, from);
  }

  /**
   * A poll's ack, for the polling transport: undefined when it changes nothing, else a function
   * that applies it and says what the store then holds for the poll (see AckOutcome). The transport
   * applies it once the poll is held: one store call applies the ack and says whether the poll can
   * be answered at once (for a session owned here, given the poll's `read`, with its batch).
   */
  pollAck(served: Served, ack: number, from?: number): ((read?: BatchAsk) => Promise<AckOutcome | AckRead>) | undefined {
    const { session } = served;
    if (session) return session.ackApplied(ack, from) ? undefined : (read) => session.ackOutbound(ack, from, read);
    return () => this.#ackRemoteOutcome(served.sid, ack, from);
  }

  /** Judge an inbound batch and keep what is new (at once with a store in this process); the caller then has it delivered (deliver()). */
  accept(served: Served, seq: number, messages: readonly StreamItem[]): AcceptInboundResult | Promise<AcceptInboundResult> {
    const { store } = this.options;
    return store.acceptInboundNow ? store.acceptInboundNow(served.sid, seq, messages) : store.acceptInbound(served.sid, seq, messages);
  }

  /** Have accepted messages delivered: here, or by the owner (`fence`, the store's as it accepted them: not this node's, another took the session over meanwhile). */
  deliver(served: Served, messages: readonly StreamItem[], skip: number, seq: number, fence?: number): void {
    this.metrics.received(messages, skip);
    const { session } = served;
    if (session && (fence === undefined || fence === session.fence)) {
      // Listeners done with the messages (none async): their replies go on the held poll now, not at the end of the turn.
      if (session.receive(messages, skip, seq)) this.polling.answerNow(served.sid);
      return;
    }
    if (session) this.disown([session]);
    if (skip < messages.length) this.#publish(served.sid, { type: 'in', node: this.node });
  }

  /** A request of the session came (`holdMs`: a poll held that long). */
  seen(served: Served, holdMs = 0): void {
    if (served.session) served.session.touch(clockMs());
    else this.options.store.touch(served.sid, Date.now() + holdMs).catch(this.reportError);
  }

  /** The client closes its session. */
  clientClose(served: Served): void {
    // The owner closes it (the store then forgets it), wherever it lives.
    this.closeRemote(served.sid, { code: 'client_closed', message: 'closed by the client' });
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
   * (broadcast.ts) sends wait for the store at once; a send that waits for room (a client
   * behind on its acks) frees its place at once and is counted when it ends.
   */
  async broadcast(entry: MessageEntry): Promise<BroadcastResult> {
    if (this.clustered) this.#publish('*', { type: 'broadcast', node: this.node, data: entry.wire });
    return sendToOwned(this.#live.values(), entry);
  }

  // ---- transports' and sessions' calls ----

  pollTaken(sid: string, ws: number): void {
    this.#ticker.start();
    // The client polls: a WebSocket that carried the session is over (it fell back).
    this.websocket?.pollTaken(sid, ws);
    if (this.clustered) this.#publish(sid, { type: 'poll', node: this.node, at: Date.now(), ws });
  }

  pollPredatesWebSocket(sid: string, ws: number): boolean {
    return this.websocket?.predates(sid, ws) === true;
  }

  /** A WebSocket now carries the session (`hello`: its hello's count, if the client sent one): a poll held anywhere is answered. */
  carriedByWebSocket(sid: string, hello: number | undefined): void {
    this.#ticker.start();
    this.polling.superseded(sid, Date.now());
    if (this.clustered) this.#publish(sid, hello === undefined ? { type: 'poll', node: this.node, at: Date.now() } : { type: 'poll', node: this.node, at: Date.now(), hello });
  }

  heldRead(session: Session): BatchAsk | undefined {
    return this.polling.heldRead(session.id) ?? this.websocket?.heldRead(session.id);
  }

  outboundReady(session: Session, commits: number, batch?: ReadOutboundResult): void {
    this.polling.outboundReady(session.id, commits, batch);
    this.websocket?.outboundReady(session.id, batch === undefined ? undefined : { commits, batch });
    // A poll or WebSocket of this node carries it: no other node holds one to wake (one poll
    // per session), so no publish (a broadcast to every session would otherwise publish once each).
    if (this.clustered && !this.holding(session.id)) this.#publish(session.id, { type: 'out', node: this.node });
  }

  sessionEnded(session: Session, reason: CloseReason): void {
    if (this.#live.get(session.id) !== session) return;
    this.metrics.sessionClosed(session.id, reason);
    this.polling.disown(session);
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
    if (this.#live.size === 0) this.#ticker.stop();
  }

  markDelivered(session: Session, seq: number): void {
    this.#marks.mark(session, seq);
  }

  #publish(sid: string, event: StoreEvent): void {
    this.options.store.publish(sid, event).catch(this.reportError);
  }

  // ---- the tick ----

  /** End expired holds, expire idle sessions, keep the heartbeat. */
  tick(now: number): void {
    this.#ticker.tick(now);
  }

  /**
   * Stop serving. Alone: close every session (`server_shutdown`: clients
   * reconnect and `reset`). Clustered: hand every session over (held polls
   * are answered at once, ownership released), so clients go on with
   * another node with nothing lost.
   */
  async shutdown(): Promise<void> {
    this.#closing = true;
    this.#ticker.stop();
    const sessions = [...this.#live.values()];
    if (!this.clustered) {
      for (const session of sessions) session.close({ code: 'server_shutdown', message: 'the server is shutting down' });
      this.websocket?.release();
      await Promise.all(this.#ending);
      return;
    }
    await Promise.all(sessions.map((s) => s.committed()));
    // What they delivered is marked: the next owner redelivers none of it.
    await this.#marks.settle();
    this.disown();
    this.polling.release();
    this.websocket?.release();
    const { store } = this.options;
    await Promise.all(sessions.map((s) => store.release(s.id, this.node, s.fence).catch(this.reportError)));
    await Promise.all(this.#ending);
    await store.forgetNode(this.node).catch(this.reportError);
    this.#unsubscribe();
  }
}
