/**
 * What the application sees of a session besides the Session class itself
 * (server/session.ts): its state, its events, and what a `message` listener
 * is told of a message that may have been delivered before.
 */
import type { CloseReason, Payload, Reply } from '../shared/index.js';

export type SessionState = 'open' | 'closed';

/** Second argument of `message` listeners for a message that may have been delivered before (an owner died). */
export interface MessageInfo {
  redelivered: boolean;
}

/**
 * A session's events. `In` types what the client sends (messages, its
 * requests' data), `Out` what this server sends (see Session<In, Out, Data>).
 * Types only: nothing is checked at run time.
 */
export interface SessionEvents<In extends Payload = Payload, Out extends Payload = Payload> {
  /** `info` is given only for a message a dead owner may have delivered already (see README, "Several nodes"). */
  message: (data: In, info?: MessageInfo) => void;
  /** `unacked`: messages the client never acknowledged, in order; they will not be delivered. */
  close: (reason: CloseReason, unacked: Out[]) => void;
  /**
   * With a shared store: this node gave the session up, and it goes on on
   * another node (this one left, was cut off from its store, or was paused
   * past its lease and another took the session over). Not a close: nothing
   * is lost, and the client sees nothing. This object is done (`state` is
   * `'closed'`, sends reject with `session_closed`); the node that serves the
   * session next emits `session` for it (resumed). No `close` follows here.
   */
  moved: () => void;
  /**
   * The client asks (`client.request()`): answer with `reply(data)`, or
   * `reply(error)`, or return the reply (or a promise of it). A listener that
   * throws or rejects answers with an error (`handler_error`, or the error's
   * string `code`); with no listener the client gets `no_handler`.
   */
  request: (data: In, reply: Reply<Out>) => Out | undefined | void | Promise<Out | undefined | void>;
  /** All sent so far has been acknowledged by the client (bufferedAmount is 0). */
  drain: () => void;
  /** Every message queued so far has been written to the client (queuedAmount is 0). */
  flush: () => void;
}
