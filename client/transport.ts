/**
 * The seam between the session machine (session-machine.ts) and a transport.
 *
 * The machine owns everything that outlives a connection: the state, both
 * halves of the reliable stream (outbox, inbox, send window, unsent tally),
 * opening, resetting and closing sessions, back-off, and the application's
 * events. A transport only moves batches: it is started for a session, writes
 * what the machine's outbox has pending (with the inbound ack riding along),
 * hands every inbound batch (with its ack and any close frame) back to the
 * machine, and reports each failure with the reaction shared/reaction.ts
 * gives it. Polling (polling-transport.ts) is one; the WebSocket transport
 * (websocket-transport.ts) is the same contract over one connection, messages
 * and acks both ways on it; transport-switcher.ts moves a session between
 * the two and is what the machine sees as its transport.
 *
 * Hot path: a transport calls the host per batch, never per message, except
 * for deliver(), whose loop is the machine's.
 */
import type { HoldlineError, OpenResponse, OutboxBatch, OutboxWires, PollResponse, StreamItem } from '../shared/index.js';
import type { Reaction } from '../shared/reaction.js';
import type { ClientStats } from './events.js';

/** A session as the server granted it; one object per session, shared by the machine and its transport. */
export interface LiveSession {
  readonly sid: string;
  readonly token: string;
  /** `"sid":…,"token":…,` — the credentials every body on this session starts with, encoded once. */
  readonly auth: string;
  /** The open answer, clamped to sane ranges (limits.ts). */
  readonly limits: OpenResponse;
  /** The largest answer read on this session; past it: `bad_response`, the connection dropped. */
  readonly maxAnswerBytes: number;
  /** When the open answer came (Date.now()). */
  readonly openedAt: number;
  /** Aborted when the session ends for this client: every request of it stops. */
  readonly abort: AbortController;
  /**
   * WebSocket first frames (hellos) sent for this session so far. Every poll
   * carries it (`"ws"`, when not 0) and every hello its own count: the server
   * tells a poll sent before a hello (it arrived late; the WebSocket stays)
   * from one sent after it (the client fell back; the WebSocket goes).
   */
  webSockets: number;
}

/** The session machine, as a transport sees it. */
export interface TransportHost {
  /** The session being served, or undefined (between sessions, or closed). A transport drops work for any other. */
  readonly current: LiveSession | undefined;
  /** Counters a transport adds to (polls, sendRequests, pollCuts, holdMs, rttMs). */
  readonly stats: ClientStats;
  /** The cumulative ack of server-to-client messages: put it on everything written. */
  readonly inboundAck: number;
  /** Client-to-server messages not yet acknowledged (0: nothing to write). */
  readonly outboundPending: number;
  /** A resumed session's outbound numbering waits for the server's first ack: ask for it at once (a poll held for no time). */
  readonly outboundUnconfirmed: boolean;
  /** Number of the last client-to-server message queued (0: none yet). */
  readonly outboundLastSeq: number;
  /**
   * The next outbound batch, from the first unacknowledged message (or from
   * message `from`, if later: a transport that pipelines batches on one
   * connection), `m` at most `maxWireBytes`.
   */
  nextBatch(maxWireBytes: number, from?: number): OutboxBatch;
  /** nextBatch() as the messages' wire forms, no JSON (a transport that frames each message: the WebSocket). */
  nextWires(maxWireBytes: number, from?: number): OutboxWires;
  /** Every message up to `lastSeq` has now been written at least once. */
  written(lastSeq: number): void;
  /**
   * The server (or the path) refused message `seq`, sent alone, for its size
   * (`error`): it can never pass. The machine drops it, reports it through
   * 'error', and renumbers the messages after it; the stream goes on.
   */
  refused(session: LiveSession, seq: number, error: HoldlineError): void;
  /** The server acknowledged client-to-server messages up to `ack`. */
  acked(ack: number): void;
  /**
   * An inbound batch for `session`: applies its ack, its close frame and its
   * numbering. Returns the index in `batch.m` of the first message to deliver
   * (`m.length`: none), or -1 when the session ended (a close frame).
   */
  accept(session: LiveSession, batch: PollResponse): number;
  /** Deliver `m[from..]` to the application, in order. False when the session ended meanwhile. */
  deliver(session: LiveSession, m: readonly StreamItem[], from: number): boolean;
  /** A request of `session` succeeded: back-off starts over, reconnecting becomes open. */
  succeeded(session: LiveSession): void;
  /**
   * A request of `session` failed: the machine acts on `reaction` (waits out
   * a back-off for `retry`). Resolves true when the transport should go on
   * with this session, false when it is over.
   */
  failed(session: LiveSession, error: HoldlineError, reaction: Reaction): Promise<boolean>;
  /** A transport's own loop threw (a bug): the client closes with it rather than going deaf. */
  crashed(error: unknown): void;
}

export interface Transport {
  readonly name: string;
  /** Carry `session` (host.current): receive from now on, and write what is pending. */
  start(session: LiveSession): void;
  /** Outbound messages are pending: write them (the transport decides when and how many at once). */
  flush(): void;
  /** The page came back from a freeze: replace a request that may have died meanwhile, now. */
  revalidate?(): void;
  /** Resolves once nothing is being written (close() waits for it, briefly). */
  idle(): Promise<void>;
  /** The client is closed: release timers and connections. */
  dispose(): void;
}

