/**
 * A handle to a session wherever it is owned (`hl.remote(id)`): on a node
 * that does not own the session, `send()` appends to its outbound stream in
 * the store and wakes whichever node holds its poll; `close()` asks the
 * owner to close it. On the owner, `hl.remote(id)` is the Session itself.
 */
import { encodeEntry, HoldlineError, isPayload, type CloseReason, type OutboxEntry, type Payload } from '../shared/index.js';

/** What both a Session and a RemoteSession offer. */
export interface SessionHandle {
  readonly id: string;
  send(data: Payload): Promise<void>;
  close(reason?: CloseReason): void;
}

/** What a RemoteSession needs from its node. */
export interface RemoteHost {
  readonly maxMessageBytes: number;
  sendRemote(sid: string, entry: OutboxEntry): Promise<void>;
  closeRemote(sid: string, reason: CloseReason): void;
}

export class RemoteSession implements SessionHandle {
  readonly id: string;
  readonly #host: RemoteHost;

  constructor(id: string, host: RemoteHost) {
    this.id = id;
    this.#host = host;
  }

  /**
   * Queue a message for the client from this node. Resolves once it is in
   * the store; rejects with `session_unknown` when the session is gone (or
   * never was). No backpressure here: the owner's maxQueuedBytes does not
   * count it.
   */
  send(data: Payload): Promise<void> {
    if (!isPayload(data)) {
      return Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`));
    }
    const entry = encodeEntry(data);
    if (entry.bytes > this.#host.maxMessageBytes) {
      return Promise.reject(new HoldlineError('message_too_large', `message of ${entry.bytes} bytes exceeds maxMessageBytes (${this.#host.maxMessageBytes})`));
    }
    return this.#host.sendRemote(this.id, entry);
  }

  /** Ask the owner to close the session (the client is told why). */
  close(reason: CloseReason = { code: 'server_closed', message: 'closed by the server' }): void {
    this.#host.closeRemote(this.id, reason);
  }
}
