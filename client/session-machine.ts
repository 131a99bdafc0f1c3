/**
 * The session machine: everything a client keeps across requests and
 * connections, and nothing about how bytes travel (that is the transport's,
 * see transport.ts). It holds the state, the reliable stream both ways
 * (outbox, inbox, send window, unsent tally), opens, resets and closes
 * sessions, backs off, and tells the application through its events. It
 * never gives up on its own once connect() has resolved: a server that is
 * away (a restart, a rolling deploy) is tried again with back-off until it
 * answers, or until the application calls close().
 *
 *                 connect()                 request fails
 *   idle ──────▶ connecting ──▶ open ◀──────────────────▶ reconnecting
 *                     │           │   request succeeds       │    ▲
 *                     │           │ close()                  │    │ session gone: back-off,
 *                     ▼           ▼                          │    │ new session + 'reset'
 *                  closed ◀── closing                        └────┘
 *                     ▲─────────────────── close frame / fatal error
 *
 * Every state change goes through #setState(), which refuses a transition
 * the diagram does not have. Reactions to failures come from one table,
 * shared/reaction.ts.
 */
import {
  decodeEntries,
  decodeOpenResponse,
  encodeEntry,
  fromStreamWire,
  HoldlineError,
  Inbox,
  isPayload,
  isRpc,
  Outbox,
  PATHS,
  PROTOCOL_VERSION,
  SendWindow,
  utf8Length,
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
import type { ClientState, ClientStats, Emit } from './events.js';
import type { HttpExchange, Outcome } from './http-exchange.js';
import { MAX_CONTROL_ANSWER_BYTES, maxAnswerBytes, saneLimits } from './limits.js';
import { authData, type ResolvedClientOptions } from './options.js';
import { delay, Pacing } from './pacing.js';
import type { SessionState } from './session-state.js';
import type { LiveSession, Transport, TransportHost } from './transport.js';
import { noteClosed, noteFailure, noteLost, noteState, payloadBytes } from './client-metrics.js';

/** The transitions #setState() allows, from each state. */
const NEXT: { readonly [S in ClientState]: readonly ClientState[] } = {
  idle: ['connecting', 'closing'],
  connecting: ['open', 'closing', 'closed'],
  open: ['reconnecting', 'closing', 'closed'],
  reconnecting: ['open', 'reconnecting', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** Shared by every send() that is queued at once: nothing to allocate per message. */
const RESOLVED: Promise<void> = Promise.resolve();

function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

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
  readonly stats: Required<ClientStats> = {
    polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: 0,
    reconnects: 0, resets: 0, holdMs: 0, rttMs: 0, transportSwitches: 0, silentDeaths: 0, holdCeilingMs: 0,
    bytesSent: 0, bytesReceived: 0, acksPending: 0, errors: {}, pollCutAgesMs: [],
  };
  readonly #options: Readonly<ResolvedClientOptions>;
  readonly #exchange: HttpExchange;
  readonly #emit: Emit;
  readonly #transport: Transport;
  #state: ClientState = 'idle';
  #live: LiveSession | undefined;
  #outbox = new Outbox();
  #inbox = new Inbox();
  readonly #window: SendWindow;
  /** Aborted by close(): ends every wait. */
  readonly #lifetime = new AbortController();
  /** Back-off for retries and for new sessions, and the waiting. */
  readonly #pacing: Pacing;
  #connectPromise: Promise<void> | undefined;
  /** Why the client closed, for a connect() that was still pending. */
  #closeError: HoldlineError | undefined;
  /** The close event's reason, once closed. */
  #closeReason: CloseReason | undefined;
  readonly #crashed = (e: unknown): void => this.crashed(e);
  readonly #rpc: RpcPeer;
  /**
   * A resumed session whose first batch has not come yet. If that batch
   * starts past our ack + 1, the client we resumed from (the page before its
   * reload, the last leader tab) acknowledged more than it told us, which it
   * did only once it had delivered those messages: go on from there.
   */
  #mayJump: LiveSession | undefined;

  constructor(parts: MachineParts) {
    this.#options = parts.options;
    this.#exchange = parts.exchange;
    this.#emit = parts.emit;
    const { maxBufferedBytes, sendTimeoutMs, minDelayMs, maxDelayMs } = parts.options;
    this.#window = new SendWindow(maxBufferedBytes, sendTimeoutMs);
    this.#pacing = new Pacing(minDelayMs, maxDelayMs, this.#lifetime.signal, parts.onNetworkBack);
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
    return this.#inbox.ack;
  }

  get outboundPending(): number {
    return this.#outbox.pending;
  }

  /** Payload bytes sent (or queued) and not yet acknowledged by the server. */
  get bufferedAmount(): number {
    return this.#window.buffered;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#outbox.unwrittenBytes;
  }

  #setState(next: ClientState): void {
    if (!NEXT[this.#state].includes(next)) throw new HoldlineError('invalid_state', `no transition from ${this.#state} to ${next}`);
    noteState(this.#state, next, this.#live?.sid);
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
    this.#connectPromise = this.#openSession(this.#options.connectTimeoutMs).then((live) => {
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
    const limits = saneLimits(state.limits);
    const { sid, token } = limits;
    const auth = `"sid":${JSON.stringify(sid)},"token":${JSON.stringify(token)},`;
    const live: LiveSession = { sid, token, auth, limits, maxAnswerBytes: maxAnswerBytes(limits), openedAt: Date.now(), abort: new AbortController(), webSockets: 0 };
    this.#inbox = new Inbox(state.inboundAck);
    this.#mayJump = live;
    const outbox = (this.#outbox = new Outbox(state.outboundAcked));
    let bytes = 0;
    for (const wire of state.outbound) {
      const p = fromStreamWire(wire);
      if (p === undefined) continue; // checked when stored; never renumbered around
      // A request or reply frame goes again as it was (a reply still answers; a request's answer finds no caller).
      const entry: OutboxEntry = isRpc(p) ? { wire: p, bytes: utf8Length(p.r) } : encodeEntry(p);
      outbox.pushEntry(entry);
      bytes += entry.bytes;
    }
    this.#window.take(bytes);
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
    return {
      v: 1,
      url,
      limits: live.limits,
      inboundAck: this.#inbox.ack,
      outboundAcked: this.#outbox.acked,
      outbound: this.#outbox.unacked().map((e) => e.wire),
    };
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
    if (this.#window.tryAcquire(bytes)) return this.#enqueue(entry);
    return this.#window.acquire(bytes, () => this.#enqueue(entry));
  }

  /**
   * Why `what` cannot be done on a closing or closed client: `server_closed`
   * when the server closed the session, the fatal error's code when one
   * closed it, else `client_closed`.
   */
  closedError(what: string): HoldlineError {
    const reason = this.#closeReason;
    if (this.#state === 'closed' && reason?.code === 'server_closed') {
      return new HoldlineError('server_closed', `${what} after the server closed the session: ${reason.message}`);
    }
    const fatal = this.#state === 'closed' && reason?.code === 'transport_error' ? this.#closeError : undefined;
    if (fatal) return new HoldlineError(fatal.code, `${what} on a client closed by an error: ${fatal.message}`, { status: fatal.status, cause: fatal });
    return new HoldlineError('client_closed', `${what} on a ${this.#state} client`);
  }

  /** Queue a request or reply frame on the stream, as send() queues a message (the same window, the same order). */
  sendFrame(entry: OutboxEntry): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(this.closedError('request()'));
    const { bytes } = entry;
    const max = this.#live?.limits.maxMessageBytes;
    if (max !== undefined && bytes > max) {
      return Promise.reject(new HoldlineError('message_too_large', `a request or reply of ${bytes} bytes as a frame exceeds the server's maxMessageBytes (${max})`));
    }
    if (this.#window.tryAcquire(bytes)) return this.#enqueue(entry);
    return this.#window.acquire(bytes, () => this.#enqueue(entry));
  }

  #enqueue(entry: OutboxEntry): Promise<void> {
    this.#outbox.pushEntry(entry);
    this.stats.messagesSent++;
    this.stats.bytesSent += entry.bytes;
    if (this.#live && this.#state !== 'closed') this.#transport.flush();
    return RESOLVED;
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
      const body = JSON.stringify({ sid: live.sid, token: live.token, ack: this.#inbox.ack });
      await this.#exchange.post(live.abort.signal, PATHS.close, body, this.#options.requestTimeoutMs, MAX_CONTROL_ANSWER_BYTES);
    }
    this.#finish({ code: 'client_closed', message: 'closed by the client' }, new HoldlineError('client_closed', 'the client was closed'));
  }

  // ---- session life ----

  /**
   * Open a session with retries; undefined when closed or timed out meanwhile.
   * `timeoutMs` undefined: never time out (a session lost after connect()).
   */
  async #openSession(timeoutMs: number | undefined): Promise<LiveSession | undefined> {
    const attempt = randomId();
    const giveUpAt = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this.#lifetime.signal.aborted) return undefined;
      const body = await this.#openBody(attempt);
      if (this.#lifetime.signal.aborted) return undefined;
      const outcome = typeof body === 'string'
        ? await this.#exchange.post(this.#lifetime.signal, PATHS.open, body, this.#options.requestTimeoutMs, MAX_CONTROL_ANSWER_BYTES)
        : body;
      if (!outcome.ok) noteFailure(this.stats, outcome.error, outcome.reaction, undefined);
      let error: HoldlineError;
      if (outcome.ok) {
        const r = decodeOpenResponse(outcome.answer.body);
        if (r.ok) {
          this.#pacing.retries.reset();
          const limits = saneLimits(r.value);
          const { sid, token } = limits;
          const auth = `"sid":${JSON.stringify(sid)},"token":${JSON.stringify(token)},`;
          return { sid, token, auth, limits, maxAnswerBytes: maxAnswerBytes(limits), openedAt: Date.now(), abort: new AbortController(), webSockets: 0 };
        }
        this.#emit('error', r.error);
        error = r.error;
      } else if (outcome.reaction === 'fatal') {
        this.#fail(outcome.error);
        return undefined;
      } else {
        // Anything else on an open (no session yet to lose or stop) is worth another try.
        error = outcome.error;
      }
      const wait = this.#pacing.retries.next();
      if (Date.now() + wait > giveUpAt) {
        this.#fail(new HoldlineError('timeout', `could not open a session within ${String(timeoutMs)} ms (last error: ${error.code}: ${error.message})`));
        return undefined;
      }
      this.#emit('reconnecting', { attempt: this.#pacing.retries.attempt, delayMs: wait, error });
      await this.#pacing.wait(wait);
    }
  }

  /**
   * The open request's body, with the `auth` option's object: a function is
   * called for every try (a token may have expired meanwhile). One that
   * throws is retried like a failed open (`listener_error`); one that returns
   * something that is not a small JSON object is fatal (`invalid_argument`).
   */
  async #openBody(attempt: string): Promise<string | Outcome> {
    const auth = this.#options.auth;
    if (auth === undefined) return `{"v":${PROTOCOL_VERSION},"attempt":${JSON.stringify(attempt)}}`;
    let value: unknown;
    try {
      value = typeof auth === 'function' ? await auth() : auth;
    } catch (e) {
      const error = new HoldlineError('listener_error', `the "auth" function failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      return { ok: false, error, reaction: 'retry' };
    }
    try {
      return `{"v":${PROTOCOL_VERSION},"attempt":${JSON.stringify(attempt)},"auth":${authData(value)}}`;
    } catch (e) {
      return { ok: false, error: e as HoldlineError, reaction: 'fatal' };
    }
  }

  #start(live: LiveSession, resumed: boolean): void {
    // A listener may have closed the client while the session opened.
    if (this.#state !== 'connecting' && this.#state !== 'reconnecting') return;
    this.#live = live;
    this.#refuseOversized(live);
    this.#setState('open');
    this.#emit('open', { sessionId: live.sid, resumed });
    // (An 'open' listener may have closed the client: the state is read again.)
    if (this.#live === live && (this.#state as ClientState) === 'open') this.#transport.start(live);
  }

  /**
   * Messages queued while no limits were known (before the first open
   * answer, or between sessions) that are over this session's
   * maxMessageBytes: send() would have refused them, so they are refused
   * now, each reported through 'error', and the stream goes on without them.
   * None of them has been written, so the outbox renumbers what follows.
   */
  #refuseOversized(live: LiveSession): void {
    const max = live.limits.maxMessageBytes;
    const outbox = this.#outbox;
    if (outbox.pending === 0) return;
    const hadUnwritten = outbox.unwritten > 0;
    const refused = outbox.remove(outbox.acked + 1, (e) => e.bytes > max);
    for (const e of refused) {
      this.#window.release(e.bytes);
      this.#emit('error', new HoldlineError('message_too_large', `a message of ${e.bytes} bytes, queued before the server's limits were known, exceeds its maxMessageBytes (${max}): refused, not sent`));
    }
    if (refused.length > 0 && hadUnwritten && outbox.unwritten === 0) this.#emit('flush');
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
    const lostBytes = this.#outbox.bufferedBytes;
    const lost = decodeEntries(this.#outbox.takeAll());
    this.#outbox = new Outbox();
    this.#inbox = new Inbox();
    this.#setState('reconnecting');
    const delayMs = this.#pacing.resetDelay(old.openedAt);
    noteLost(old.sid, reason.code, delayMs);
    this.#emit('reconnecting', { attempt: this.#pacing.resets.attempt, delayMs, error: new HoldlineError('session_lost', `session lost: ${reason.code}`) });
    if (delayMs > 0) await this.#pacing.wait(delayMs);
    // No time limit: connectTimeoutMs bounds the first connect() only. A
    // server restarting or a rolling deploy may take any time; the back-off
    // keeps the load it sees bounded meanwhile.
    const live = await this.#openSession(undefined);
    if (!live || this.#state !== 'reconnecting') return;
    this.stats.resets++;
    // Before anything of the new session is written (a reset listener's send() flushes at once).
    this.#refuseOversized(live);
    this.#live = live; // so that reset listeners see the new sessionId
    this.#emit('reset', { previousSessionId: old.sid, sessionId: live.sid, reason, lost });
    // Only now does the room the lost messages held admit sends that were waiting for it,
    // so that what a reset listener re-sends is not overtaken by them (unless it must wait too).
    this.#window.release(lostBytes);
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
    const unacked = decodeEntries(this.#outbox.takeAll());
    this.#window.fail(error);
    this.#rpc.failAll(this.closedError('request()'));
    this.#pacing.dispose();
    this.#transport.dispose();
    this.#exchange.dispose();
    noteClosed(reason);
    this.#emit('close', reason, unacked);
  }

  // ---- the transport's side (TransportHost) ----

  get outboundLastSeq(): number {
    return this.#outbox.lastSeq;
  }

  nextBatch(maxWireBytes: number, from?: number): OutboxBatch {
    return this.#outbox.batch(maxWireBytes, this.#live?.limits.maxBatchMessages, from);
  }

  nextWires(maxWireBytes: number, from?: number): OutboxWires {
    return this.#outbox.wires(maxWireBytes, this.#live?.limits.maxBatchMessages, from);
  }

  written(lastSeq: number): void {
    if (this.#outbox.written(lastSeq)) this.#emit('flush');
  }

  refused(session: LiveSession, seq: number, error: HoldlineError): void {
    const outbox = this.#outbox;
    if (this.#live !== session || seq <= outbox.acked) return;
    const hadUnwritten = outbox.unwritten > 0;
    const [entry] = outbox.remove(seq, (_e, n) => n === seq);
    if (!entry) return;
    this.#window.release(entry.bytes);
    const by = error.code === 'message_too_large' ? 'the server' : `the path (${error.code})`;
    this.#emit('error', new HoldlineError('message_too_large', `a message of ${entry.bytes} bytes was refused by ${by}: ${error.message}; it is dropped, the messages after it go on`, { cause: error }));
    if (hadUnwritten && outbox.unwritten === 0) this.#emit('flush');
  }

  acked(ack: number): void {
    const outbox = this.#outbox;
    const before = outbox.bufferedBytes;
    const ackedBefore = outbox.acked;
    if (outbox.ack(ack) !== 'ok') return;
    this.#window.release(before - outbox.bufferedBytes);
    this.stats.messagesAcked += outbox.acked - ackedBefore;
    this.#emit('ack', this.stats.messagesAcked);
  }

  accept(session: LiveSession, batch: PollResponse): number {
    this.acked(batch.ack);
    const reason = batch.close;
    if (reason) {
      if (closeReactionOf(reason.code) === 'new_session') this.#lose(session, reason).catch(this.#crashed);
      else this.#finish(reason, new HoldlineError('session_closed', reason.message));
      return -1;
    }
    if (this.#mayJump === session && batch.m.length > 0) {
      this.#mayJump = undefined;
      if (batch.seq > this.#inbox.ack + 1) this.#inbox = new Inbox(batch.seq - 1);
    }
    const v = this.#inbox.accept(batch.seq, batch.m.length);
    // A hole (never sent by a correct server): deliver nothing, the next request asks again from our ack.
    return v.ok ? v.skip : batch.m.length;
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
      stats.messagesReceived++;
      stats.bytesReceived += payloadBytes(p);
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
