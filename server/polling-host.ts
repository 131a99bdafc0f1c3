/**
 * What the long-polling transport (server/polling.ts) is given: the
 * endpoint's handle of a held poll and how to answer it, its node, and what
 * it is told of each poll.
 */
import type { AckOutcome, AckRead } from './ack-outcome.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';
import type { BatchAsk } from './store.js';

/** A held poll as its endpoint knows it (for HTTP, the ServerResponse): opaque here. */
export type PollHandle = object;

/**
 * How the endpoint answers held polls: one object for all of them, not one
 * per poll (an idle server holds a poll per session).
 */
export interface PollAnswerer {
  /**
   * `body`: JSON text, or its UTF-8 bytes. `next`: for a large batch, the
   * number just past it (sent as the NEXT_HEADER header).
   */
  respond(poll: PollHandle, body: string | Uint8Array, next?: number): void;
  /** True once the client has gone away (the request was aborted). */
  gone(poll: PollHandle): boolean;
  /** True while an answer written to `poll` still waits, in this process, for the client to read it. */
  unread(poll: PollHandle): boolean;
  /** Call `fn` once the answer to `poll` is read (handed to the network whole) or dropped. */
  whenRead(poll: PollHandle, fn: () => void): void;
}

/** What the transport needs from its node. */
export interface PollingHost {
  readonly options: ResolvedOptions;
  /** Shares its store with other nodes: polls of one session may come to several (see superseded()). */
  readonly clustered: boolean;
  readonly reportError: (err: unknown) => void;
  /** The session as this node owns it, or undefined (owned elsewhere). */
  owned(sid: string): Session | undefined;
  /** The sessions this node owns. */
  sessions(): Iterable<Session>;
  /**
   * A poll was taken here: tell the other nodes (they answer theirs), and a
   * WebSocket carrying the session closes. `ws`: the poll's WebSocket count
   * (PollRequest.ws).
   */
  pollTaken(sid: string, ws: number): void;
  /** The poll (its WebSocket count `ws`) was sent before the hello of the WebSocket carrying the session here. */
  pollPredatesWebSocket(sid: string, ws: number): boolean;
  /** Counts held polls whose client went away (server/metrics.ts). */
  readonly metrics?: { pollCut(sid: string, ageMs: number): void };
}

/** What take() is told of a poll besides its session. */
export interface PollAsk {
  /** The poll's `from` (an early poll's start). */
  readonly from?: number | undefined;
  /** Its WebSocket count (PollRequest.ws). */
  readonly ws?: number | undefined;
  /** Its ack. */
  readonly ack?: number | undefined;
  /** Applies the ack, when there is something to apply (the registry's pollAck()); `read`: the poll's batch, read with it where the store can. */
  readonly applyAck?: ((read?: BatchAsk) => Promise<AckOutcome | AckRead>) | undefined;
}
