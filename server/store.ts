/**
 * The session store: where session state lives. The server's session logic
 * talks to it only through this interface, so a shared store (Redis) can
 * replace the in-memory default and let several nodes serve one session.
 *
 * Every operation is atomic for one session and returns a Promise. Stream
 * operations have the semantics of shared/outbox.ts and shared/inbox.ts:
 * a store that keeps its state elsewhere must reproduce them exactly.
 */
import type { AckResult, InboxVerdict, OutboxBatch, OutboxEntry } from '../shared/index.js';

export interface StoredSession {
  readonly sid: string;
  readonly token: string;
  /**
   * The client's open-attempt id: a retried open returns this session.
   * Empty once forgotten (forgetAttempt).
   */
  readonly attempt: string;
}

export interface EnqueueResult {
  /** Sequence number of the last message appended. */
  lastSeq: number;
  /** Payload bytes queued and not yet acknowledged, after the append. */
  bufferedBytes: number;
}

export interface AckOutboundResult {
  result: AckResult;
  bufferedBytes: number;
  /** Sequence number of the last message appended (0 when none yet). */
  lastSeq: number;
}

export interface ReadOutboundResult extends OutboxBatch {
  /** Cumulative ack of the inbound stream, to piggyback on the response. */
  inboundAck: number;
}

export type AcceptInboundResult = InboxVerdict & { ack: number };

export interface SessionStore {
  create(session: StoredSession): Promise<void>;
  get(sid: string): Promise<StoredSession | undefined>;
  findByAttempt(attempt: string): Promise<StoredSession | undefined>;
  /**
   * The client has used the session, so it has the open answer and will not
   * retry that open: findByAttempt need no longer find it (an idle server
   * keeps no attempt id per session).
   */
  forgetAttempt(sid: string): Promise<void>;
  count(): Promise<number>;
  /** Remove the session and hand back its unacknowledged outbound messages. */
  delete(sid: string): Promise<OutboxEntry[]>;

  /** Append messages to the outbound (server-to-client) stream. */
  enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult>;
  /** Apply the client's cumulative ack of the outbound stream. */
  ackOutbound(sid: string, ack: number): Promise<AckOutboundResult>;
  /** The unacknowledged outbound messages from the first one (or from `from`, if later), up to maxWireBytes. */
  readOutbound(sid: string, maxWireBytes: number, from?: number): Promise<ReadOutboundResult>;
  /** Number of outbound messages not yet acknowledged (numbered `from` or later, if given). */
  pendingOutbound(sid: string, from?: number): Promise<number>;
  /** Judge an inbound batch and record what is accepted. */
  acceptInbound(sid: string, seq: number, count: number): Promise<AcceptInboundResult>;

  close?(): Promise<void>;
}
