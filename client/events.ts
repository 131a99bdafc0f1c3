/** What a client tells its application: events, and the figures in `stats`. */
import type { CloseReason, HoldlineError, Payload, Reply } from '../shared/index.js';

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

export interface OpenEvent {
  sessionId: string;
  /** true when an existing session was resumed after a network failure. */
  resumed: boolean;
}
export interface ReconnectingEvent {
  attempt: number;
  delayMs: number;
  error: HoldlineError;
}
export interface ResetEvent {
  previousSessionId: string;
  sessionId: string;
  /** Why the old session is gone. */
  reason: CloseReason;
  /** Messages sent on the old session that it never acknowledged; they were not re-sent. */
  lost: Payload[];
}

/** What carries a session: HTTP long polling, or a WebSocket. */
export type TransportName = 'polling' | 'websocket';

export interface TransportEvent {
  /** The transport the session is on now. */
  transport: TransportName;
  /** The one it was on. */
  previous: TransportName;
  /**
   * On a move down from the WebSocket to polling: what ended the WebSocket
   * (`network_error` for a connection closed or gone silent, `bad_response`
   * for a frame the client could not read, or the code of the server's error
   * frame). Absent on a move up, and in a follower tab (HoldlineTabClient).
   */
  reason?: HoldlineError;
}

/**
 * The client's events. `In` types what the server sends (messages, and the
 * data of its requests), `Out` what this client sends (sends, requests,
 * replies): see HoldlineClient<In, Out>. Types only: nothing is checked at
 * run time.
 */
export interface ClientEvents<In extends Payload = Payload, Out extends Payload = Payload> {
  open: (e: OpenEvent) => void;
  message: (data: In) => void;
  reconnecting: (e: ReconnectingEvent) => void;
  reset: (e: ResetEvent) => void;
  /** `unacked`: messages the server never acknowledged (empty after a clean close). */
  close: (reason: CloseReason, unacked: Out[]) => void;
  /**
   * A failure the client reports without stopping: a listener that threw or
   * rejected (`listener_error`, the thrown value as `cause`), a bad answer, a
   * queued message refused for its size (`message_too_large`: it is dropped,
   * the messages after it go on), and the fatal error the client closes with. Without an `error` listener these
   * go to console.error.
   */
  error: (err: HoldlineError) => void;
  /**
   * The server acknowledged more messages: `total` counts every message this
   * client has had acknowledged since it was created, across sessions. Acks
   * come in send order, so the n-th message sent is acknowledged once
   * `total + lostSoFar >= n`, where lostSoFar counts the `lost` messages of
   * every `reset` so far and the messages refused for their size (an `error`
   * with code message_too_large each): those are never acknowledged.
   */
  ack: (total: number) => void;
  /** Every message queued so far has been written to the network (queuedAmount is 0). */
  flush: () => void;
  /**
   * The server asks (`session.request()`): answer with `reply(data)`, or
   * `reply(error)`, or return the reply (or a promise of it). A listener
   * that throws or rejects answers with an error (`handler_error`, or the
   * error's string `code`); with no listener the server gets `no_handler`.
   */
  request: (data: In, reply: Reply<Out>) => Out | undefined | void | Promise<Out | undefined | void>;
  /**
   * The session moved to another transport (a WebSocket came up, or it died
   * and polling took over). Nothing is lost or repeated by a switch.
   */
  transport: (e: TransportEvent) => void;
}

/** Emit one of the client's events (the client's own emit, bound: listeners are already made safe). */
export type Emit = <K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>) => unknown;

export interface ClientStats {
  polls: number;
  /** Polls that died after being held a while (a middlebox cut them). */
  pollCuts: number;
  sendRequests: number;
  messagesSent: number;
  messagesReceived: number;
  /** Messages the server has acknowledged (see the 'ack' event). */
  messagesAcked: number;
  reconnects: number;
  resets: number;
  /** Hold asked of the server on the next poll. */
  holdMs: number;
  /**
   * Polls that died without a sound (a NAT forgot the mapping): found at
   * their deadline, or sooner when a send's answer showed the server had
   * written what they never brought. Each lowers the hold (holdCeilingMs).
   * Optional only so that stats made elsewhere (client/tabs) need not know it.
   */
  silentDeaths?: number;
  /** A poll died silently below this age (ms): holds stay under it for a while (0: none known). */
  holdCeilingMs?: number;
  /**
   * Smoothed round-trip time, ms: of send requests on polling; on a WebSocket,
   * of the hello until its answer and of a batch until the ack that covers it.
   */
  rttMs: number;
  /**
   * Moves from one transport to the other (each 'transport' event). Optional
   * only so that stats made elsewhere (client/tabs) need not know it yet.
   */
  transportSwitches?: number;
  /*
   * The figures below are optional for the same reason (client/tabs makes
   * stats of its own); HoldlineClient always fills them in.
   */
  /** Payload bytes of the messages sent (queued by send()). */
  bytesSent?: number;
  /** Payload bytes of the messages received. */
  bytesReceived?: number;
  /** Messages sent (queued) that the server has not acknowledged yet. */
  acksPending?: number;
  /** Failed requests (retried or not) and errors reported through 'error', by code. */
  errors?: Record<string, number>;
  /** How long the last polls that were cut had been held, ms (the latest last; at most 16). */
  pollCutAgesMs?: number[];
}
