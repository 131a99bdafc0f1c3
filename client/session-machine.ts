/**
 * The session machine: everything a client keeps across requests and
 * connections, and nothing about how bytes travel (that is the transport's,
 * see transport.ts). It holds the state (the states and their transitions:
 * machine-states.ts) and the reliable stream both ways (client-stream.ts:
 * outbox, inbox, send window), opens sessions (session-opener.ts), resets
 * and closes them, backs off, and tells the application through its
 * events. It never gives up on its own once connect() has resolved: a
 * server that is away (a restart, a rolling deploy) is tried again with
 * back-off until it answers, or until the application calls close().
 */
import {
  encodeEntry,
  HoldlineError,
  isPayload,
  isRpc,
  PATHS,
  type CloseReason,
  type OutboxBatch,
  type OutboxWires,
  type OutboxEntry,
  type Payload,
  type PollResponse,
  type RpcPeer,
  type StreamItem,
} from '../shared/index.js';
import { closeReactionOf, type Reaction } from '../shared/reaction.js';
import { ClientStream } from './client-stream.js';
import type { ClientState, ClientStats, Emit } from './events.js';
import type { HttpExchange } from './http-exchange.js';
import { MAX_CONTROL_ANSWER_BYTES, saneLimits } from './limits.js';
import type { ResolvedClientOptions } from './options.js';
import { delay, Pacing } from './pacing.js';
import { liveSession, SessionOpener } from './session-opener.js';
import type { SessionState } from './session-state.js';
import { checkTransition, closedError } from './machine-states.js';
import type { LiveSession, Transport, TransportHost } from './transport.js';
import { newClientStats, noteClosed, noteFailure, noteReceived } from './client-metrics.js';

export interface MachineParts {
  readonly options: Readonly<ResolvedClientOptions>;
  /** For /open and /close (the transport has its own way for everything else). */
  readonly exchange: HttpExchange;
  /** The client's emit: listeners are already made safe there. */
  readonly emit: Emit;
  createTransport(host: TransportHost): Transport;
  /** Subscribe to "the network is back" (browsers' `online`); returns an unsubscribe. */
  readonly onNetworkBack: ((fn: () => void) => () => void) | undefined;
  /** Requests both ways: the machine hands it the frames that come in, and tells it when a session ends. */
  readonly rpc: RpcPeer;
}

export class SessionMachine implements TransportHost {
  readonly stats: Required<ClientStats> = newClientStats();
  readonly #options: Readonly<ResolvedClientOptions>;
  readonly #exchange: HttpExchange;
  readonly #emit: Emit;
  readonly #transport: Transport;
  #state: ClientState = 'idle';
  #live: LiveSession | undefined;
  /** Outbox, inbox and send window. */
  readonly #stream: ClientStream;
  /** Aborted by close(): ends every wait. */
  readonly #lifetime = new AbortController();
  /** Back-off for retries and for new sessions, and the waiting. */
  readonly #pacing: Pacing;
  readonly #opener: SessionOpener;
  #connectPromise: Promise<void> | undefined;
  /** Why the client closed, for a connect() that was still pending. */
  #closeError: HoldlineError | undefined;
  /** The close event's reason, once closed. */
  #closeReason: CloseReason | undefined;
  readonly #crashed = (e: unknown): void => this.crashed(e);
  readonly #rpc: RpcPeer;
  /** After each message queued: write it, if there is a session to write it on. */
  readonly #queued = (): void => {
    if (this.#live && this.#state !== 'closed') this.#transport.flush();
  };

  constructor(parts: MachineParts) {
    this.#options = parts.options;
    this.#exchange = parts.exchange;
    this.#emit = parts.emit;
    const { maxBufferedBytes, sendTimeoutMs, minDelayMs, maxDelayMs } = parts.options;
    this.#stream = new ClientStream(maxBufferedBytes, sendTimeoutMs, parts.emit, this.stats);
    this.#pacing = new Pacing(minDelayMs, maxDelayMs, this.#lifetime.signal, parts.onNetworkBack);
    this.#opener = new SessionOpener({
      options: parts.options, exchange: parts.exchange, emit: parts.emit, stats: this.stats,
      pacing: this.#pacing, lifetime: this.#lifetime.signal, fail: (e) => this.#fail(e),
    });
    this.#transport = parts.createTransport(this);
    this.#rpc = parts.rpc;
  }

  get state(): ClientState {
    return this.#state;
  }

  get current(): LiveSession | undefined {
    return this.#live;
  }

  get inboundAck(): number {
    return this.#stream.inboundAck;
  }

  get outboundPending(): number {
    return this.#stream.outboundPending;
  }

  /** Payload bytes sent (or queued) and not yet acknowledged by the server. */
  get bufferedAmount(): number {
    return this.#stream.bufferedAmount;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#stream.queuedAmount;
  }

  #setState(next: ClientState): void {
    checkTransition(this.#state, next, this.#live?.sid);
    this.#state = next;
  }

  // ---- the application's side ----

  /** Open a session. Resolves once open; rejects on a fatal error, close(), or connectTimeoutMs. */
  connect(): Promise<void> {
    if (this.#connectPromise) return this.#connectPromise;
    if (this.#state !== 'idle') {
      return Promise.reject(new HoldlineError('invalid_state', `connect() needs state idle, not ${this.#state}`));
    }
    this.#setState('connecting');
    this.#connectPromise = this.#opener.open(this.#options.connectTimeoutMs).then((live) => {
      if (!live) throw this.#closeError ?? new HoldlineError('client_closed', 'closed before the session opened');
      this.#start(live, false);
    });
    return this.#connectPromise;
  }

  /**
   * Go on with a session another client had (`state`, see session-state.ts)
   * instead of opening one: its inbound position, and its unacknowledged
   * messages, sent again first with their numbers (the server drops what it
   * already has). 'open' comes with `resumed: true`. If the server no longer
   * has the session, the usual 'reset' follows, its `lost` listing exactly
   * those messages.
   */
  resume(state: SessionState): Promise<void> {
    if (this.#connectPromise) return this.#connectPromise;
    if (this.#state !== 'idle') {
      return Promise.reject(new HoldlineError('invalid_state', `resume() needs state idle, not ${this.#state}`));
    }
    this.#setState('connecting');
    const live = liveSession(saneLimits(state.limits));
    this.#stream.resume(state, live);
    this.#connectPromise = Promise.resolve().then(() => {
      if (this.#state !== 'connecting') throw this.#closeError ?? new HoldlineError('client_closed', 'closed before the session resumed');
      this.#start(live, true);
    });
    return this.#connectPromise;
  }

  /** The session as it stands, for another client to resume (undefined: no session). */
  exportState(url: string): SessionState | undefined {
    const live = this.#live;
    if (!live) return undefined;
    return { v: 1, url, limits: live.limits, ...this.#stream.exportState() };
  }

  /**
   * Stop here without ending the session on the server (no /close): another
   * client resumes it (a tab taking over, the reloaded page). Returns its
   * state as it stands once nothing more is received or acknowledged; the
   * client is closed ('close' with client_closed and the unacknowledged
   * messages, which the state carries on).
   */
  detach(url: string): SessionState | undefined {
    if (this.#state === 'closed') return undefined;
    const state = this.exportState(url);
    this.#finish({ code: 'client_closed', message: 'detached: the session goes on elsewhere' }, new HoldlineError('client_closed', 'the client was detached'));
    return state;
  }

  /** The page came back from a freeze or the background: check the transport now rather than at its deadlines. */
  revalidate(): void {
    if (this.#live && this.#state !== 'closed' && this.#state !== 'closing') this.#transport.revalidate?.();
  }

  /** Queue a message. Resolves once queued (waits while bufferedAmount is over maxBufferedBytes). */
  send(data: Payload): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(this.closedError('send()'));
    if (!isPayload(data)) {
      return Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`));
    }
    const entry = encodeEntry(data);
    const { bytes } = entry;
    const max = this.#live?.limits.maxMessageBytes;
    if (max !== undefined && bytes > max) {
      return Promise.reject(new HoldlineError('message_too_large', `message of ${bytes} bytes exceeds the server's maxMessageBytes (${max})`));
    }
    return this.#stream.queue(entry, this.#queued);
  }

  /** Why `what` cannot be done on a closing or closed client (machine-states.ts). */
  closedError(what: string): HoldlineError {
    return closedError(what, this.#state, this.#closeReason, this.#closeError);
  }

  /** Queue a request or reply frame on the stream, as send() queues a message (the same window, the same order). */
  sendFrame(entry: OutboxEntry): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(this.closedError('request()'));
    const { bytes } = entry;
    const max = this.#live?.limits.maxMessageBytes;
    if (max !== undefined && bytes > max) {
      return Promise.reject(new HoldlineError('message_too_large', `a request or reply of ${bytes} bytes as a frame exceeds the server's maxMessageBytes (${max})`));
    }
    return this.#stream.queue(entry, this.#queued);
  }

  /** Send what is queued (briefly), tell the server, and close. Unacknowledged messages go to the 'close' event. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const live = this.#live;
    const wasOpen = this.#state === 'open';
    this.#setState('closing');
    if (live && wasOpen) {
      await Promise.race([this.#transport.idle(), delay(Math.min(2_000, this.#options.requestTimeoutMs), this.#lifetime.signal)]);
      // With our ack: the server then reports as unacked exactly what we did not receive.
      const body = JSON.stringify({ sid: live.sid, token: live.token, ack: this.#stream.inboundAck });
      await this.#exchange.post(live.abort.signal, PATHS.close, body, this.#options.requestTimeoutMs, MAX_CONTROL_ANSWER_BYTES);
    }
    this.#finish({ code: 'client_closed', message: 'closed by the client' }, new HoldlineError('client_closed', 'the client was closed'));
  }

  // ---- session life ----

  #start(live: LiveSession, resumed: boolean): void {
    // A listener may have closed the client while the session opened.
    if (this.#state !== 'connecting' && this.#state !== 'reconnecting') return;
    this.#live = live;
    this.#stream.refuseOversized(live.limits.maxMessageBytes);
    this.#setState('open');
    this.#emit('open', { sessionId: live.sid, resumed });
    // (An 'open' listener may have closed the client: the state is read again.)
    if (this.#live === live && (this.#state as ClientState) === 'open') this.#transport.start(live);
  }

  /** The server no longer has our session: after a back-off, open a new one and tell the application. */
  async #lose(old: LiveSession, reason: CloseReason): Promise<void> {
    if (this.#live !== old) return;
    if (this.#state === 'closing') {
      // close() is under way: no new session, the loss is why the client closed.
      this.#finish(reason, new HoldlineError('session_lost', `session lost: ${reason.code}`));
      return;
    }
    this.#live = undefined;
    old.abort.abort();
    // Requests on the old session: the new one knows nothing of them, nor of their replies.
    this.#rpc.failAll(new HoldlineError('session_lost', `session lost (${reason.code}) before the reply came`));
    const { lost, bytes: lostBytes } = this.#stream.restart();
    this.#setState('reconnecting');
    const live = await this.#opener.reopen(old, reason);
    if (!live || this.#state !== 'reconnecting') return;
    this.stats.resets++;
    // Before anything of the new session is written (a reset listener's send() flushes at once).
    this.#stream.refuseOversized(live.limits.maxMessageBytes);
    this.#live = live; // so that reset listeners see the new sessionId
    this.#emit('reset', { previousSessionId: old.sid, sessionId: live.sid, reason, lost });
    // Only now does the room the lost messages held admit sends that were waiting for it,
    // so that what a reset listener re-sends is not overtaken by them (unless it must wait too).
    this.#stream.release(lostBytes);
    this.#start(live, false);
  }

  #fail(error: HoldlineError): void {
    this.#emit('error', error);
    this.#finish({ code: 'transport_error', message: `${error.code}: ${error.message}` }, error);
  }

  #finish(reason: CloseReason, error: HoldlineError): void {
    if (this.#state === 'closed') return;
    this.#closeError = error;
    this.#closeReason = reason;
    this.#setState('closed');
    this.#lifetime.abort();
    this.#live?.abort.abort();
    this.#live = undefined;
    const unacked = this.#stream.end(error);
    this.#rpc.failAll(this.closedError('request()'));
    this.#pacing.dispose();
    this.#transport.dispose();
    this.#exchange.dispose();
    noteClosed(reason);
    this.#emit('close', reason, unacked);
  }

  // ---- the transport's side (TransportHost) ----

  get outboundLastSeq(): number {
    return this.#stream.outboundLastSeq;
  }

  get outboundUnconfirmed(): boolean {
    return this.#stream.outboundUnconfirmed;
  }

  nextBatch(maxWireBytes: number, from?: number): OutboxBatch {
    return this.#stream.nextBatch(maxWireBytes, this.#live?.limits.maxBatchMessages, from);
  }

  nextWires(maxWireBytes: number, from?: number): OutboxWires {
    return this.#stream.nextWires(maxWireBytes, this.#live?.limits.maxBatchMessages, from);
  }

  written(lastSeq: number): void {
    this.#stream.written(lastSeq);
  }

  refused(session: LiveSession, seq: number, error: HoldlineError): void {
    if (this.#live === session) this.#stream.refused(seq, error);
  }

  acked(ack: number): void {
    const unconfirmed = this.#stream.outboundUnconfirmed;
    this.#stream.acked(ack);
    // What waited for the server's count of our stream (a resumed session) goes now.
    if (unconfirmed && this.#stream.outboundPending > 0 && this.#live && this.#state !== 'closed') this.#transport.flush();
  }

  accept(session: LiveSession, batch: PollResponse): number {
    this.acked(batch.ack);
    const reason = batch.close;
    if (reason) {
      if (closeReactionOf(reason.code) === 'new_session') this.#lose(session, reason).catch(this.#crashed);
      else this.#finish(reason, new HoldlineError('session_closed', reason.message));
      return -1;
    }
    return this.#stream.accept(session, batch);
  }

  deliver(session: LiveSession, m: readonly StreamItem[], from: number): boolean {
    const emit = this.#emit;
    const stats = this.stats;
    for (let i = from; i < m.length; i++) {
      const p = m[i];
      if (this.#live !== session || p === undefined) return false;
      if (isRpc(p)) {
        this.#rpc.receive(p);
        continue;
      }
      noteReceived(stats, p);
      emit('message', p);
    }
    return this.#live === session;
  }

  succeeded(session: LiveSession): void {
    this.#pacing.retries.reset();
    if (this.#state === 'reconnecting' && this.#live === session) {
      this.#setState('open');
      this.#emit('open', { sessionId: session.sid, resumed: true });
    }
  }

  async failed(session: LiveSession, error: HoldlineError, reaction: Reaction): Promise<boolean> {
    noteFailure(this.stats, error, reaction, session.sid);
    switch (reaction) {
      case 'retry': {
        const wait = this.#pacing.retries.next();
        if (this.#state === 'open') {
          this.#setState('reconnecting');
          this.stats.reconnects++;
        }
        this.#emit('reconnecting', { attempt: this.#pacing.retries.attempt, delayMs: wait, error });
        await this.#pacing.wait(wait);
        return this.#live === session;
      }
      case 'stop':
        this.#finish({ code: 'server_closed', message: error.message }, new HoldlineError('session_closed', error.message, { status: error.status }));
        return false;
      case 'fatal':
        this.#fail(error);
        return false;
      // smaller_batches here: the transport could not make the batch smaller
      // (one message the path refuses), so it can never pass.
      case 'new_session':
      case 'smaller_batches':
        this.#lose(session, { code: 'session_unknown', message: error.message }).catch(this.#crashed);
        return false;
    }
  }

  crashed(error: unknown): void {
    if (this.#state === 'closed') return;
    this.#fail(new HoldlineError('internal_error', `the client failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
  }
}
