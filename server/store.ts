/**
 * The session store: the source of truth for everything a second node needs
 * to serve a session. The server's nodes talk to it only through this
 * interface, so that several nodes sharing one store (a `MemoryStore` shared
 * in one process, or a `RedisStore`) serve one session with no sticky
 * sessions.
 *
 * What lives here, per session:
 * - the record: id, credential (token), the open attempt that made it,
 *   and what the authentication hook said about its client (`meta`);
 * - its owner: the node that emits `session` and runs the application's
 *   listeners, and a fence number that grows with every change of owner;
 * - liveness: until when the client is known to be there (a request came,
 *   a poll is held);
 * - both streams: the outbound (server-to-client) messages not yet
 *   acknowledged, and the inbound dedupe (the cumulative ack) with the
 *   inbound messages accepted but not yet delivered by the owner;
 * - after a close, a tombstone: why it closed, for a returning client.
 * And per node: a heartbeat. An owner whose node has not beaten within its
 * TTL is gone, and the next node to serve the session takes it over.
 *
 * Every operation is atomic for one session (two nodes racing on one session
 * see one order) and returns a Promise. Stream operations have the semantics
 * of shared/outbox.ts and shared/inbox.ts. Operations on a session the store
 * does not hold reject with the wire error `session_unknown`, except where
 * a method says it returns undefined.
 *
 * Wake-ups: `publish(sid, event)` reaches every node's `subscribe` listener
 * (including the publisher's own; events name their origin node). Nodes
 * publish after they change what another node may be waiting on: outbound
 * messages queued (a held poll on another node answers), inbound messages
 * accepted (the owner delivers), an ack (the owner's send window opens), a
 * poll taken (a poll held elsewhere is superseded), a close.
 *
 * Readings the contract pins (`test/store-conformance/` checks all of this
 * against every store):
 * - events are asynchronous: no listener runs inside `publish()`; a listener
 *   that throws keeps the event from no other; `publish` works for a session
 *   the store no longer holds (a close is published after the delete);
 * - `subscribe()` may return before a remote store is listening;
 * - clean-up calls race deletes: `forgetAttempt` and `release` of a session
 *   the store does not hold do nothing;
 * - a claim after `release` is a takeover (`took`, the fence grows); an owner
 *   whose heartbeat lapsed and whose session nobody took keeps it by claiming;
 * - two sessions made with one attempt (two nodes racing on a retried open):
 *   findByAttempt finds one, and dropping the other does not lose it;
 * - `delivered()` never moves back;
 * - messages are handed over by reference: callers do not mutate a payload
 *   after `acceptInbound` or `enqueue`.
 */
import type { AckResult, CloseReason, InboxVerdict, OutboxBatch, MessageWire, OutboxEntry, OutboxWires, StreamItem } from '../shared/index.js';

export interface StoredSession {
  readonly sid: string;
  readonly token: string;
  /**
   * The client's open-attempt id: a retried open returns this session.
   * Empty once forgotten (forgetAttempt).
   */
  readonly attempt: string;
  /**
   * What the authentication hook said about the session's client (its
   * `session.data`), as JSON; absent when it said nothing. Kept as it is,
   * so that a node taking the session over has it too.
   */
  readonly meta?: string | undefined;
}

/** A session record with its owner, as `get` returns it. */
export interface SessionRecord extends StoredSession {
  /** The owner node's id. */
  readonly owner: string;
  /** Grows by one with every change of owner (1 for the node that opened it). */
  readonly fence: number;
}

export interface Tombstone {
  readonly reason: CloseReason;
  /** The closed session's token: only its own client learns the reason. */
  readonly token: string;
}

export interface EnqueueResult {
  /** Sequence number of the last message appended. */
  lastSeq: number;
  /** Payload bytes queued and not yet acknowledged, after the append. */
  bufferedBytes: number;
}

/** readOutbound()'s arguments. */
export interface BatchAsk {
  readonly maxWireBytes: number;
  readonly from: number | undefined;
  readonly maxCount: number;
}

/** enqueueAndRead(): what enqueue() and then readOutbound() would give. */
export interface EnqueueReadResult extends EnqueueResult {
  batch: ReadOutboundResult;
}

export interface AckOutboundResult {
  result: AckResult;
  bufferedBytes: number;
  /** Sequence number of the last message appended (0 when none yet). */
  lastSeq: number;
}

/**
 * ackAndRead(): what ackOutbound() and then readOutbound() would give; no
 * batch when the ack was refused ('future') or nothing is pending from the
 * read's start.
 */
export interface AckReadResult extends AckOutboundResult {
  batch?: ReadOutboundResult | undefined;
}

export interface ReadOutboundResult extends OutboxBatch {
  /** Cumulative ack of the inbound stream, to piggyback on the response. */
  inboundAck: number;
  /**
   * Optional: the outbound stream's last sequence number when it was read
   * (0: none yet). A batch that ends there held everything queued, so a
   * WebSocket need not read again to find nothing; without it, it does.
   */
  lastSeq?: number | undefined;
}

/** readOutboundWires(): a batch as its messages' wire forms (no JSON made). */
export interface WiresRead extends OutboxWires {
  /** Cumulative ack of the inbound stream. */
  inboundAck: number;
  /** As ReadOutboundResult.lastSeq. */
  lastSeq?: number | undefined;
}

/**
 * `fence`, optional: the session's fence as the batch was judged. An owner
 * whose own fence it is not lost the session to another node (it was paused
 * past its lease): it delivers nothing and gives the session up.
 */
export type AcceptInboundResult = InboxVerdict & { ack: number; fence?: number };

export interface InboundBatch {
  /** Sequence number of messages[0]; meaningless when there are none. */
  seq: number;
  messages: StreamItem[];
  /** Optional: the session's fence as it was read (see AcceptInboundResult). */
  fence?: number;
}

/** What `claim` decided. */
export type ClaimResult =
  /** The caller owns the session now, with this fence; `took` when it took it over from a dead node. */
  | { owned: true; fence: number; took: boolean }
  /** Another live node owns it. */
  | { owned: false; owner: string };

export type StoreEvent =
  /** Outbound messages were queued. */
  | { type: 'out'; node: string }
  /**
   * The client acknowledged outbound messages up to `ack`; `bufferedBytes`
   * remain unacknowledged. The owner frees its window by `ack` alone
   * (session-send.ts, takeAck); `bufferedBytes` is still published and
   * checked because nodes of earlier versions, in a cluster being upgraded,
   * read it.
   */
  | { type: 'ack'; node: string; ack: number; bufferedBytes: number }
  /** Inbound messages were accepted: the owner delivers them. */
  | { type: 'in'; node: string }
  /**
   * A poll was taken by `node` at `at` (Date.now()): a poll held on any other
   * node since before then is answered empty (one poll per session).
   * `ws`: a poll's WebSocket count (PollRequest.ws); absent when a
   * WebSocket's hello took the session. `hello`: that hello's count (its
   * `ws`), when the client sent one: a poll counted below it was sent before
   * the hello, on any node (server/polling.ts, helloElsewhere).
   */
  | { type: 'poll'; node: string; at: number; ws?: number; hello?: number }
  /** The session was closed. */
  | { type: 'close'; node: string; reason: CloseReason }
  /**
   * Not published: the store's own word that events may have been lost (its
   * subscriber reconnected). Listeners re-read what they hold. sid '*'.
   */
  | { type: 'resync'; node: string }
  /** hl.broadcast() on `node`: every node sends `data` (a message in wire form) to the sessions it owns. Published with sid '*'. */
  | { type: 'broadcast'; node: string; data: MessageWire };

export type StoreListener = (sid: string, event: StoreEvent) => void;

export interface SessionStore {
  // ---- sessions ----

  /** Record a new session owned by `owner` (fence 1). */
  create(session: StoredSession, owner: string): Promise<void>;
  /** The session's record, or undefined when the store holds no such session. */
  get(sid: string): Promise<SessionRecord | undefined>;
  findByAttempt(attempt: string): Promise<SessionRecord | undefined>;
  /**
   * The client has used the session, so it has the open answer and will not
   * retry that open: findByAttempt need no longer find it (an idle server
   * keeps no attempt id per session).
   */
  forgetAttempt(sid: string): Promise<void>;
  count(): Promise<number>;
  /**
   * Remove the session and hand back its unacknowledged outbound messages.
   * With `tombstone`, remember why it closed for `tombstoneMs` (see
   * `tombstone()`). Deleting a session the store does not hold returns [].
   */
  delete(sid: string, tombstone?: { reason: CloseReason; ttlMs: number }): Promise<OutboxEntry[]>;
  /** Why a recently deleted session closed, or undefined. */
  tombstone(sid: string): Promise<Tombstone | undefined>;

  // ---- owner and liveness ----

  /**
   * Take or keep ownership for `node`: succeeds when `node` owns it already,
   * or when its owner's heartbeat has lapsed (then the fence grows by one and
   * `took` is true). Two nodes racing to take one session over: one wins.
   */
  claim(sid: string, node: string): Promise<ClaimResult>;
  /** Give ownership up (graceful shutdown): the next node to serve it claims it at once. No-op unless `node` owns it with `fence`. */
  release(sid: string, node: string, fence: number): Promise<void>;
  /**
   * Node `node` is alive for `ttlMs` more. A node that stops beating loses its
   * sessions to the next claim. Resolves true when the node's previous beat
   * was still there, false when there was none: a first beat, one after a
   * lapse, or a store that lost its data (Redis restarted without it, or
   * failed over to a replica that had not got it): the node then checks its
   * sessions are still held.
   */
  heartbeat(node: string, ttlMs: number): Promise<boolean>;
  /** Node `node` is gone at once (graceful shutdown). */
  forgetNode(node: string): Promise<void>;
  /** The client was seen, and is known to be there until `until` (ms, the store's clock: Date.now()). Only ever moves forward. */
  touch(sid: string, until: number): Promise<void>;
  /** Until when the client is known to be there (Date.now() ms), or undefined for no such session. */
  seenUntil(sid: string): Promise<number | undefined>;

  // ---- the outbound stream (server to client) ----

  /** Append messages to the outbound stream. */
  enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult>;
  /**
   * Optional: enqueue() done at once, for a store in this process
   * (MemoryStore). It gives what enqueue() gives, and throws what enqueue()
   * rejects with. An application that awaits each send() commits each
   * message on its own, and an asynchronous enqueue's promise hops are most
   * of that commit's cost. Without it the node awaits enqueue() (or
   * enqueueAndRead(), which a store with enqueueNow is not asked for).
   */
  enqueueNow?(sid: string, entries: readonly OutboxEntry[]): EnqueueResult;
  /** Apply the client's cumulative ack of the outbound stream. */
  ackOutbound(sid: string, ack: number): Promise<AckOutboundResult>;
  /**
   * The unacknowledged outbound messages from the first one (or from `from`,
   * if later), up to maxWireBytes and maxCount messages (at least one when
   * any is pending).
   */
  readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount?: number): Promise<ReadOutboundResult>;
  /**
   * Optional: readOutbound() done at once, for a store in this process
   * (MemoryStore): it gives what readOutbound() gives, and throws what it
   * rejects with. With it a poll held for an application's immediate reply
   * (an echo) is answered as the delivery returns, not at the end of the
   * turn (server/poll-flush.ts).
   */
  readOutboundNow?(sid: string, maxWireBytes: number, from?: number, maxCount?: number): ReadOutboundResult;
  /**
   * Optional: readOutbound() as the messages' wire forms, not their JSON:
   * the WebSocket sends each message as a frame of its own, and a store that
   * keeps entries (MemoryStore) spares it making JSON only to parse it back.
   * Without it the WebSocket parses readOutbound()'s `m`.
   */
  readOutboundWires?(sid: string, maxWireBytes: number, from: number, maxCount: number): Promise<WiresRead>;
  /**
   * Optional: readOutboundWires() done at once, for a store in this process
   * (MemoryStore): it gives what readOutboundWires() gives, and throws what
   * it rejects with. With it a WebSocket writes a message in the turn that
   * committed it, rather than after a promise hop.
   */
  readOutboundWiresNow?(sid: string, maxWireBytes: number, from: number, maxCount: number): WiresRead;
  /**
   * Optional: enqueue() and then readOutbound() as one operation (one round
   * trip with a networked store): used when a poll held on the owner waits
   * for the messages being committed. Without it the two are separate calls.
   */
  enqueueAndRead?(sid: string, entries: readonly OutboxEntry[], read: BatchAsk): Promise<EnqueueReadResult>;
  /**
   * Optional: ackOutbound() and then, unless the ack was refused or nothing
   * is pending from the read's start, readOutbound() as one operation (one
   * round trip with a networked store): used for a poll's ack, whose poll is
   * answered at once with what is pending. Without it a poll that finds
   * messages pending reads them in a second call.
   */
  ackAndRead?(sid: string, ack: number, read: BatchAsk): Promise<AckReadResult>;
  /** Number of outbound messages not yet acknowledged (numbered `from` or later, if given). */
  pendingOutbound(sid: string, from?: number): Promise<number>;

  // ---- the inbound stream (client to server) ----

  /**
   * Judge an inbound batch numbered from `seq` (the dedupe), and keep the
   * messages it accepts (the first `skip` are duplicates and are dropped)
   * until the owner has delivered them. Atomic: two nodes handed the same
   * retried batch accept it once.
   */
  acceptInbound(sid: string, seq: number, messages: readonly StreamItem[]): Promise<AcceptInboundResult>;
  /**
   * Optional: acceptInbound() done at once, for a store in this process
   * (MemoryStore): it gives what acceptInbound() gives, and throws what it
   * rejects with. With it a batch that came on a WebSocket is delivered
   * while the frame is being read, and the application's answer is written
   * before the rest of the turn's work.
   */
  acceptInboundNow?(sid: string, seq: number, messages: readonly StreamItem[]): AcceptInboundResult;
  /** Accepted messages numbered `from` or later that are not yet marked delivered (oldest first). */
  readInbound(sid: string, from: number): Promise<InboundBatch>;
  /**
   * The owner delivered inbound messages up to `seq`: drop them. Refused
   * (false, nothing changes) when `fence` is not the session's current fence:
   * a paused old owner cannot move delivery on after a takeover.
   */
  markDelivered(sid: string, seq: number, fence: number): Promise<boolean>;
  /**
   * Optional: markDelivered() done at once, for a store in this process
   * (MemoryStore): it gives what markDelivered() gives, and throws what it
   * rejects with. With it the owner marks each delivery as it makes it;
   * without it the marks wait for the node's next timer turn (so that a
   * store across the network gets them off the path of the application's
   * reply, server/delivery-marks.ts), which costs a timer per delivery.
   */
  markDeliveredNow?(sid: string, seq: number, fence: number): boolean;
  /** The highest inbound number marked delivered. */
  delivered(sid: string): Promise<number>;

  // ---- wake-ups ----

  publish(sid: string, event: StoreEvent): Promise<void>;
  /** Listen to every session's events; returns the unsubscribe. */
  subscribe(listener: StoreListener): () => void;

  close?(): Promise<void>;
}
