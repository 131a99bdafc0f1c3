/**
 * What a session (server/session.ts) is given by the node that owns it
 * (server/session-registry.ts): its options and store, where to report, and
 * what it tells the node and its transports (something to read, an ack
 * wanted, its end), with the node's count of unacknowledged bytes.
 */
import type { CloseReason } from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';
import type { BatchAsk, ReadOutboundResult } from './store.js';

/** What a session needs from the node that owns it. */
export interface SessionHost {
  readonly options: ResolvedOptions;
  readonly reportError: (err: unknown) => void;
  /** Counts what is sent (server/metrics.ts). */
  readonly metrics?: { sent(bytes: number): void };
  /**
   * Outbound messages were committed to the store (`commits` so far):
   * something to read. `batch`: what heldRead() asked, read with them.
   */
  outboundReady(session: Session, commits: number, batch?: ReadOutboundResult): void;
  /** What to read with a commit for a poll held, or a WebSocket idle, on this node that waits for it, if there is one. */
  heldRead(session: Session): BatchAsk | undefined;
  sessionEnded(session: Session, reason: CloseReason): void;
  /** Another node took these sessions over (the store's fence is not theirs): the node gives them up, no close. */
  disown(sessions: readonly Session[]): void;
  /** The session delivered inbound messages up to `seq`: the node marks it in the store, soon (server/delivery-marks.ts). */
  markDelivered(session: Session, seq: number): void;
  /** Bytes (payload + overhead) unacknowledged across this node's sessions: the memory budget. */
  readonly queuedTotal: number;
  /** This session's unacknowledged bytes grew (or shrank) by `delta`. */
  queued(delta: number): void;
  /** The application waits for the client's acks (a send waits for room, or a 'drain' listener came): a transport holding an early poll answers it, so the client's next poll brings them. */
  ackWanted(session: Session): void;
  /** A transport on this node holds a request of the session open, ready to answer (a held poll). */
  holding(sid: string): boolean;
}

/**
 * Who opened a session: what the `authenticate` hook returned, and the
 * client's address. Sessions from one address with no hook data share one
 * (clients behind one NAT or proxy, or every client behind a reverse proxy
 * without `trustProxy`): an idle server keeps one per session otherwise.
 */
export interface SessionIdentity<Data = unknown> {
  readonly data: Data;
  readonly remoteAddress: string | undefined;
}

/**
 * What a Session is given besides its id and token: its node, and who opened
 * it. The node gives the sessions that follow one another from one address
 * with no hook data the same object: an idle server keeps one per session
 * otherwise.
 */
export interface SessionContext<Data = unknown> extends SessionIdentity<Data> {
  readonly host: SessionHost;
}

