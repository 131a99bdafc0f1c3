/**
 * HoldlineClient: one isomorphic client (browser and Node) for the polling
 * transport. It starts every HTTP request itself: a long poll always
 * outstanding for server-to-client messages, and batched POSTs (one in flight,
 * one flush loop) for client-to-server messages. Both directions
 * run the shared reliable stream, so a request lost in flight costs nothing.
 *
 *                 connect()                 request fails
 *   idle ──────▶ connecting ──▶ open ◀──────────────────▶ reconnecting
 *                     │           │   request succeeds          │
 *                     │           │ close()                     │ session gone:
 *                     ▼           ▼                             │ new session + 'reset'
 *                  closed ◀── closing                           ▼
 *                     ▲─────────────────── close frame / fatal error
 *
 * All state changes go through #setState().
 */
import {
  decodeErrorBody,
  decodeOpenResponse,
  decodeEntries,
  decodePollResponse,
  decodeSendResponse,
  encodeBatch,
  encodeEntry,
  ENVELOPE_OVERHEAD,
  HoldlineError,
  Inbox,
  isPayload,
  MIN_HOLD_MS,
  NEXT_HEADER,
  Outbox,
  PATHS,
  PROTOCOL_VERSION,
  SendWindow,
  TypedEmitter,
  Unsent,
  type CloseReason,
  type OpenResponse,
  type OutboxEntry,
  type Payload,
  type PollResponse,
} from '../shared/index.js';
import { Backoff } from './backoff.js';
import { HoldAdvisor } from './hold-advisor.js';
import { RequestDeadline } from './request-deadline.js';
import { resolveBaseUrl, resolveClientOptions, type HoldlineClientOptions, type ResolvedClientOptions } from './options.js';
import type { HeadListener, HttpAnswer, HttpRequester, Platform, ResponseHead } from './platform.js';

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

export interface ClientEvents {
  open: (e: OpenEvent) => void;
  message: (data: Payload) => void;
  reconnecting: (e: ReconnectingEvent) => void;
  reset: (e: ResetEvent) => void;
  /** `unacked`: messages the server never acknowledged (empty after a clean close). */
  close: (reason: CloseReason, unacked: Payload[]) => void;
  error: (err: HoldlineError) => void;
  /**
   * The server acknowledged more messages: `total` counts every message this
   * client has had acknowledged since it was created, across sessions. Acks
   * come in send order, so the n-th message sent is acknowledged once
   * `total + lostSoFar >= n`, where lostSoFar counts the `lost` messages of
   * every `reset` so far (those are never acknowledged).
   */
  ack: (total: number) => void;
  /** Every message queued so far has been written to the network (queuedAmount is 0). */
  flush: () => void;
}

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
  /** Smoothed round-trip time of send requests, ms. */
  rttMs: number;
}

interface Live {
  sid: string;
  token: string;
  /** `"sid":…,"token":…,` — the credentials every poll and send body starts with, encoded once. */
  auth: string;
  limits: OpenResponse;
  /** Aborts every request of this session. */
  abort: AbortController;
}

type Outcome =
  | { kind: 'ok'; answer: HttpAnswer }
  | { kind: 'transient'; error: HoldlineError }
  | { kind: 'gone'; reason: CloseReason; error: HoldlineError }
  | { kind: 'closed'; reason: CloseReason }
  | { kind: 'fatal'; error: HoldlineError };

function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

type EndpointPath = (typeof PATHS)[keyof typeof PATHS];

/** A poll on its way; it hears its own answer's headers (one object per poll, no closure). */
class PendingPoll implements HeadListener {
  /** Set right after construction, by #poll(). */
  outcome!: Promise<Outcome>;
  readonly started = Date.now();
  /** The poll sent when this one's headers came in (NEXT_HEADER), if any. */
  early: PendingPoll | undefined;
  readonly #onHead: (p: PendingPoll, head: ResponseHead) => boolean;

  constructor(
    readonly live: Live,
    /** Where its batch was asked to start (an early poll), else undefined. */
    readonly from: number | undefined,
    readonly hold: number,
    onHead: (p: PendingPoll, head: ResponseHead) => boolean,
  ) {
    this.#onHead = onHead;
  }

  onHead(head: ResponseHead): boolean {
    return this.#onHead(this, head);
  }
}

/** Shared by every send() that is queued at once: nothing to allocate per message. */
const RESOLVED: Promise<void> = Promise.resolve();

/** Batches up to this many messages are handed to the application before the next poll goes out. */
const SMALL_BATCH = 8;

/** Codes after which the session cannot go on: the client opens a new one. */
const SESSION_GONE = new Set(['session_unknown', 'bad_credential', 'bad_sequence', 'bad_ack', 'malformed_request', 'bad_encoding']);
/** Codes that retrying cannot fix. */
const FATAL = new Set(['unauthorized', 'origin_not_allowed', 'unsupported_version', 'proxy_auth_required', 'not_found', 'method_not_allowed', 'unsupported_content_type']);

export class HoldlineClientCore extends TypedEmitter<ClientEvents> {
  readonly url: string;
  /** Each endpoint's full URL, made once: the requester caches by it. */
  readonly #urls: Record<EndpointPath, string>;
  readonly options: Readonly<ResolvedClientOptions>;
  readonly #requester: HttpRequester;
  #state: ClientState = 'idle';
  #live: Live | undefined;
  #outbox = new Outbox();
  #inbox = new Inbox();
  readonly #window: SendWindow;
  /** Messages of the current session not yet written in any send request. */
  readonly #unsent = new Unsent();
  /** The flush loop runs: it sends until nothing is pending, so a send() meanwhile needs no more. */
  #flushing = false;
  /** Called once the flush loop ends: close() waits for it. */
  #flushEnded: (() => void) | undefined;
  /** Largest send body to try: lowered when a 413 shows a proxy allows less than the server. */
  #sendBodyLimit = Infinity;
  /** Aborted by close(): ends every wait. */
  readonly #lifetime = new AbortController();
  readonly #backoff: Backoff;
  /** Polls have two: an early poll (NEXT_HEADER) overlaps the one before it. */
  readonly #deadlines = { poll: [new RequestDeadline(), new RequestDeadline()], send: [new RequestDeadline()] };
  /** The poll the poll loop is waiting for: the only one whose headers may start an early poll. */
  #awaitedPoll: PendingPoll | undefined;
  /** Aborted to end the current back-off wait early (the network came back). */
  #wake = new AbortController();
  readonly #unsubscribeNetwork: () => void;
  #connectPromise: Promise<void> | undefined;
  /** Why the client closed, for a connect() that was still pending. */
  #closeError: HoldlineError | undefined;
  #hold: HoldAdvisor | undefined;
  #stats: ClientStats = {
    polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: 0,
    reconnects: 0, resets: 0, holdMs: 0, rttMs: 0,
  };

  constructor(url: string, options: HoldlineClientOptions | undefined, platform: Platform) {
    super();
    this.url = resolveBaseUrl(url, 'HoldlineClient');
    this.#urls = Object.fromEntries(Object.values(PATHS).map((p) => [p, this.url + p])) as Record<EndpointPath, string>;
    this.options = resolveClientOptions(options);
    this.#window = new SendWindow(this.options.maxBufferedBytes, this.options.sendTimeoutMs);
    this.#backoff = new Backoff(this.options.minDelayMs, this.options.maxDelayMs);
    this.#requester = platform.createRequester({ keepAlive: this.options.keepAlive, proxy: this.options.proxy });
    this.#unsubscribeNetwork = platform.onNetworkBack?.(() => this.#wake.abort()) ?? (() => {});
  }

  /** Wait out a back-off delay; ends early on close() or when the network comes back. */
  async #backoffDelay(ms: number): Promise<void> {
    if (this.#wake.signal.aborted) this.#wake = new AbortController();
    const wake = this.#wake.signal;
    const onClose = () => this.#wake.abort();
    this.#lifetime.signal.addEventListener('abort', onClose, { once: true });
    await delay(ms, wake);
    this.#lifetime.signal.removeEventListener('abort', onClose);
    if (wake.aborted) this.#backoff.reset();
  }

  get state(): ClientState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#live?.sid;
  }

  /** Payload bytes sent (or queued) and not yet acknowledged by the server. */
  get bufferedAmount(): number {
    return this.#window.buffered;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#unsent.bytes;
  }

  get stats(): Readonly<ClientStats> {
    return { ...this.#stats, holdMs: this.#hold?.holdMs ?? 0 };
  }

  #setState(next: ClientState): void {
    this.#state = next;
  }

  /** Open a session. Resolves once open; rejects on a fatal error, close(), or connectTimeoutMs. */
  connect(): Promise<void> {
    if (this.#connectPromise) return this.#connectPromise;
    if (this.#state !== 'idle') {
      return Promise.reject(new HoldlineError('invalid_state', `connect() needs state idle, not ${this.#state}`));
    }
    this.#setState('connecting');
    this.#connectPromise = this.#openSession(this.options.connectTimeoutMs).then((live) => {
      if (!live) throw this.#closeError ?? new HoldlineError('client_closed', 'closed before the session opened');
      this.#start(live, false);
    });
    return this.#connectPromise;
  }

  /** Queue a message. Resolves once queued (waits while bufferedAmount is over maxBufferedBytes). */
  send(data: Payload): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(new HoldlineError('client_closed', `send() on a ${this.#state} client`));
    }
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

  #enqueue(entry: OutboxEntry): Promise<void> {
    this.#outbox.pushEntry(entry);
    this.#unsent.push(entry.bytes);
    this.#stats.messagesSent++;
    this.#scheduleFlush();
    return RESOLVED;
  }

  /** Send what is queued (briefly), tell the server, and close. Unacknowledged messages go to the 'close' event. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const live = this.#live;
    const wasOpen = this.#state === 'open';
    this.#setState('closing');
    if (live && wasOpen) {
      const drained = this.#flushing ? new Promise<void>((resolve) => (this.#flushEnded = resolve)) : RESOLVED;
      await Promise.race([drained, delay(Math.min(2_000, this.options.requestTimeoutMs), this.#lifetime.signal)]);
      await this.#exchange(live.abort.signal, PATHS.close, JSON.stringify({ sid: live.sid, token: live.token }), this.options.requestTimeoutMs);
    }
    this.#finish({ code: 'client_closed', message: 'closed by the client' }, new HoldlineError('client_closed', 'the client was closed'));
  }

  // ---- session life ----

  /** Open a session with retries; undefined when closed or timed out meanwhile. */
  async #openSession(timeoutMs: number): Promise<Live | undefined> {
    const attempt = randomId();
    const body = JSON.stringify({ v: PROTOCOL_VERSION, attempt });
    const giveUpAt = Date.now() + timeoutMs;
    const abort = new AbortController();
    for (;;) {
      if (this.#lifetime.signal.aborted) return undefined;
      const outcome = await this.#exchange(this.#lifetime.signal, PATHS.open, body, this.options.requestTimeoutMs);
      if (outcome.kind === 'ok') {
        const r = decodeOpenResponse(outcome.answer.body);
        if (r.ok) {
          this.#backoff.reset();
          const { sid, token } = r.value;
          return { abort, sid, token, auth: `"sid":${JSON.stringify(sid)},"token":${JSON.stringify(token)},`, limits: r.value };
        }
        this.emit('error', r.error);
      } else if (outcome.kind === 'fatal') {
        this.#fail(outcome.error);
        return undefined;
      }
      const error = outcome.kind === 'ok' ? new HoldlineError('bad_response', 'open: unexpected answer') : outcome.kind === 'closed' ? new HoldlineError('session_closed', outcome.reason.message) : outcome.error;
      const wait = this.#backoff.next();
      if (Date.now() + wait > giveUpAt) {
        this.#fail(new HoldlineError('timeout', `could not open a session within ${timeoutMs} ms (last error: ${error.code}: ${error.message})`));
        return undefined;
      }
      this.emit('reconnecting', { attempt: this.#backoff.attempt, delayMs: wait, error });
      await this.#backoffDelay(wait);
    }
  }

  #start(live: Live, resumed: boolean): void {
    this.#live = live;
    const configured = Math.min(this.options.holdMs ?? live.limits.pollTimeoutMs, live.limits.pollTimeoutMs);
    if (this.#hold) this.#hold.reconfigure(configured);
    else this.#hold = new HoldAdvisor(configured);
    this.#setState('open');
    this.emit('open', { sessionId: live.sid, resumed });
    void this.#pollLoop(live);
    if (this.#outbox.pending > 0) this.#scheduleFlush();
  }

  /** The server no longer has our session: open a new one and tell the application. */
  async #sessionLost(old: Live, reason: CloseReason): Promise<void> {
    if (this.#live !== old) return;
    this.#live = undefined;
    old.abort.abort();
    const lostBytes = this.#outbox.bufferedBytes;
    const lost = decodeEntries(this.#outbox.takeAll());
    this.#outbox = new Outbox();
    this.#inbox = new Inbox();
    this.#unsent.reset();
    this.#setState('reconnecting');
    this.emit('reconnecting', { attempt: 0, delayMs: 0, error: new HoldlineError('session_lost', `session lost: ${reason.code}`) });
    const live = await this.#openSession(Math.max(this.options.connectTimeoutMs, 60_000));
    if (!live) return;
    this.#stats.resets++;
    this.#live = live; // so that reset listeners see the new sessionId
    this.emit('reset', { previousSessionId: old.sid, sessionId: live.sid, reason, lost });
    // Only now does the room the lost messages held admit sends that were waiting for it,
    // so that what a reset listener re-sends is not overtaken by them (unless it must wait too).
    this.#window.release(lostBytes);
    this.#start(live, false);
  }

  #fail(error: HoldlineError): void {
    this.emit('error', error);
    this.#finish({ code: 'transport_error', message: `${error.code}: ${error.message}` }, error);
  }

  #finish(reason: CloseReason, error: HoldlineError): void {
    if (this.#state === 'closed') return;
    this.#closeError = error;
    this.#setState('closed');
    this.#lifetime.abort();
    this.#live?.abort.abort();
    this.#live = undefined;
    const unacked = decodeEntries(this.#outbox.takeAll());
    this.#unsent.reset();
    this.#window.fail(error);
    this.#unsubscribeNetwork();
    for (const d of [...this.#deadlines.poll, ...this.#deadlines.send]) d.dispose();
    void this.#requester.close();
    this.emit('close', reason, unacked);
  }

  // ---- requests ----

  /** POST to `path` with a deadline (`cancel` aborts it early), its answer classified. Never throws. */
  async #exchange(cancel: AbortSignal, path: EndpointPath, body: string, timeoutMs: number, listener?: HeadListener): Promise<Outcome> {
    // The open goes on the send lane, so the first poll has a connection that
    // has served no answer yet. Node keeps the cleared keep-alive timer of a
    // connection that has (about 0.2 KB of server heap as long as the
    // connection lives); a session idle since it opened is spared that.
    const lane = path === PATHS.poll ? 'poll' : 'send';
    const slots = this.#deadlines[lane];
    // A free slot; a superseded early poll still winding down (or close() behind a send) may hold one, then a new one joins.
    let deadline: RequestDeadline | undefined;
    for (const d of slots) {
      if (!d.busy) {
        deadline = d;
        break;
      }
    }
    if (!deadline) slots.push((deadline = new RequestDeadline()));
    let answer: HttpAnswer;
    try {
      answer = await this.#requester.post(this.#urls[path], body, deadline.arm(timeoutMs, cancel), lane, listener);
    } catch (e) {
      deadline.disarm();
      const err = e instanceof HoldlineError ? e : new HoldlineError('network_error', String(e), { cause: e });
      return FATAL.has(err.code) ? { kind: 'fatal', error: err } : { kind: 'transient', error: err };
    }
    deadline.disarm();
    if (answer.status >= 200 && answer.status < 300) return { kind: 'ok', answer };
    // A middlebox may have replaced the body: trust the status, read the body only if it is ours.
    const wire = decodeErrorBody(answer.body);
    const code = wire?.code ?? statusCode(answer.status);
    const error = new HoldlineError(code as HoldlineError['code'], wire?.message ?? `HTTP ${answer.status}`, { status: answer.status });
    if (answer.status === 410 || code === 'session_closed') {
      return { kind: 'closed', reason: { code: 'server_closed', message: wire?.message ?? 'the session was closed' } };
    }
    if (SESSION_GONE.has(code)) return { kind: 'gone', reason: { code: 'session_unknown', message: error.message }, error };
    if (FATAL.has(code)) return { kind: 'fatal', error };
    return { kind: 'transient', error };
  }

  /** A request failed in a way a retry may fix: mark the client reconnecting and wait. */
  async #retryAfter(error: HoldlineError): Promise<void> {
    const wait = this.#backoff.next();
    if (this.#state === 'open') {
      this.#setState('reconnecting');
      this.#stats.reconnects++;
    }
    this.emit('reconnecting', { attempt: this.#backoff.attempt, delayMs: wait, error });
    await this.#backoffDelay(wait);
  }

  #succeeded(live: Live): void {
    this.#backoff.reset();
    if (this.#state === 'reconnecting' && this.#live === live) {
      this.#setState('open');
      this.emit('open', { sessionId: live.sid, resumed: true });
    }
  }

  /** Handle a non-ok outcome for `live`; returns false when the session loop must stop. */
  async #handleFailure(live: Live, outcome: Exclude<Outcome, { kind: 'ok' }>): Promise<boolean> {
    switch (outcome.kind) {
      case 'transient':
        await this.#retryAfter(outcome.error);
        return this.#live === live;
      case 'gone':
        void this.#sessionLost(live, outcome.reason);
        return false;
      case 'closed':
        this.#finish(outcome.reason, new HoldlineError('session_closed', outcome.reason.message));
        return false;
      case 'fatal':
        this.#fail(outcome.error);
        return false;
    }
  }

  // ---- server-to-client: the poll loop ----

  /**
   * Send one poll now. `from`: start the batch there (an early poll, sent
   * while the answer before it is still being read). If this poll is the one
   * the loop waits for and its answer names where its batch ends
   * (NEXT_HEADER), the next poll goes out as soon as the headers are in.
   */
  #poll(live: Live, hold: number, from?: number): PendingPoll {
    const ack = this.#inbox.ack;
    const body = from === undefined ? `{${live.auth}"ack":${ack},"hold":${hold}}` : `{${live.auth}"ack":${ack},"hold":${hold},"from":${from}}`;
    this.#stats.polls++;
    const pending = new PendingPoll(live, from, hold, this.#onPollHead);
    pending.outcome = this.#exchange(live.abort.signal, PATHS.poll, body, hold + this.options.pollGraceMs, pending);
    return pending;
  }

  /** A poll's answer has its headers in: send the next poll now if it names where its batch ends. */
  readonly #onPollHead = (pending: PendingPoll, head: ResponseHead): boolean => {
    const live = pending.live;
    if (head.status !== 200 || this.#awaitedPoll !== pending || this.#live !== live) return false;
    const next = Number(head.header(NEXT_HEADER));
    if (!Number.isSafeInteger(next) || next <= this.#inbox.ack + 1) return false;
    pending.early = this.#poll(live, (this.#hold as HoldAdvisor).holdMs, next);
    return true;
  };

  async #pollLoop(live: Live): Promise<void> {
    const advisor = this.#hold as HoldAdvisor;
    let current = this.#poll(live, advisor.holdMs);
    while (this.#live === live) {
      this.#awaitedPoll = current;
      const outcome = await current.outcome;
      this.#awaitedPoll = undefined;
      const { started, hold, early } = current;
      // Each poll names the next: unlinked once taken, or a stale reference
      // to any one of them would keep every later answer (body and all) alive.
      current.early = undefined;
      if (this.#live !== live) return;
      // From here on a new poll that is not `early` supersedes it: the server
      // answers it at once, and nobody reads that answer (not acknowledged,
      // its messages come again).
      if (outcome.kind !== 'ok') {
        const age = Date.now() - started;
        if (outcome.kind === 'transient' && age >= MIN_HOLD_MS) {
          // Held a while, then cut (a proxy's read timeout answering 504, a NAT
          // forgetting us, our own deadline): replace it at once, and learn.
          this.#stats.pollCuts++;
          advisor.cut(age, hold);
        } else if (!(await this.#handleFailure(live, outcome))) return;
        current = this.#poll(live, advisor.holdMs);
        continue;
      }
      const r = decodePollResponse(outcome.answer.body);
      if (!r.ok) {
        if (!(await this.#handleFailure(live, { kind: 'transient', error: r.error }))) return;
        current = this.#poll(live, advisor.holdMs);
        continue;
      }
      this.#succeeded(live);
      if (r.value.m.length === 0 && !r.value.close && Date.now() - started >= hold) advisor.fullHold();
      const fresh = this.#accept(live, r.value);
      if (!fresh) return;
      // The early poll is good only if this batch brought the stream right up to where it starts.
      let next = early !== undefined && early.from === this.#inbox.ack + 1 ? early : undefined;
      // A large batch: the next poll (acking it) goes out first, so the server
      // refills while the application works through it. A small one: the
      // application gets it first, as sending a poll costs more than handing it over.
      if (!next && fresh.m.length - fresh.from > SMALL_BATCH) next = this.#poll(live, advisor.holdMs);
      for (let i = fresh.from; i < fresh.m.length && this.#live === live; i++) {
        this.#stats.messagesReceived++;
        this.emit('message', fresh.m[i]);
      }
      if (this.#live !== live) return;
      current = next ?? this.#poll(live, advisor.holdMs);
    }
  }

  /**
   * Apply a poll answer to the stream state: its ack, its close frame, and its
   * batch. Returns the batch and where its new messages start, or undefined
   * when the session ended.
   */
  #accept(live: Live, res: PollResponse): { m: Payload[]; from: number } | undefined {
    this.#applyAck(res.ack);
    if (res.close) {
      const reason = res.close;
      if (reason.code === 'idle_timeout' || reason.code === 'server_shutdown') void this.#sessionLost(live, reason);
      else this.#finish(reason, new HoldlineError('session_closed', reason.message));
      return undefined;
    }
    const v = this.#inbox.accept(res.seq, res.m.length);
    // A hole (never sent by a correct server): deliver nothing, the next poll asks again from our ack.
    return v.ok ? { m: res.m, from: v.skip } : { m: [], from: 0 };
  }

  #applyAck(ack: number): void {
    const before = this.#outbox.bufferedBytes;
    const ackedBefore = this.#outbox.acked;
    if (this.#outbox.ack(ack) !== 'ok') return;
    this.#window.release(before - this.#outbox.bufferedBytes);
    this.#stats.messagesAcked += this.#outbox.acked - ackedBefore;
    this.emit('ack', this.#stats.messagesAcked);
  }

  // ---- client-to-server: batched sends, one request in flight ----

  #scheduleFlush(): void {
    if (this.#flushing || !this.#live || this.#state === 'closed') return;
    this.#flushing = true;
    // Started at once (no queue in between): the request goes out before send() returns.
    void this.#flush();
  }

  /**
   * Send what is pending, one request at a time, until nothing is. It stops
   * when there is no session; the next one's #start() calls it again.
   */
  async #flush(): Promise<void> {
    try {
      for (;;) {
        const live = this.#live;
        if (!live || this.#outbox.pending === 0) return;
        const batch = this.#outbox.batch(Math.min(live.limits.maxBatchBytes, this.#sendBodyLimit) - ENVELOPE_OVERHEAD);
        const started = Date.now();
        const pending = this.#exchange(live.abort.signal, PATHS.send, encodeBatch(this.#inbox.ack, batch.seq, batch.m, live.auth), this.options.requestTimeoutMs);
        this.#stats.sendRequests++;
        if (this.#unsent.sent(batch.seq + batch.count - 1)) this.emit('flush');
        const outcome = await pending;
        // The session changed meanwhile: go on with the new one, if it is open yet.
        if (this.#live !== live) continue;
        if (outcome.kind !== 'ok') {
          if (outcome.kind === 'transient' && outcome.error.status === 413 && batch.count > 1) {
            // Something on the path (a proxy's body limit) refused the size the
            // server allows: send at most half of it from now on, at once.
            this.#sendBodyLimit = Math.floor(batch.wireBytes / 2) + ENVELOPE_OVERHEAD;
            continue;
          }
          // false: this session is over; the loop goes on only with a newer one (whose #start() found it running).
          if (!(await this.#handleFailure(live, outcome)) && this.#live === live) return;
          continue;
        }
        const r = decodeSendResponse(outcome.answer.body);
        if (!r.ok) {
          if (!(await this.#handleFailure(live, { kind: 'transient', error: r.error })) && this.#live === live) return;
          continue;
        }
        const rtt = Date.now() - started;
        this.#stats.rttMs = this.#stats.rttMs === 0 ? rtt : this.#stats.rttMs * 0.8 + rtt * 0.2;
        this.#succeeded(live);
        this.#applyAck(r.value.ack);
      }
    } finally {
      this.#flushing = false;
      const ended = this.#flushEnded;
      this.#flushEnded = undefined;
      ended?.();
    }
  }
}

function statusCode(status: number): string {
  if (status === 404) return 'session_unknown';
  if (status === 403) return 'bad_credential';
  if (status === 407) return 'proxy_auth_required';
  if (status === 410) return 'session_closed';
  if (status === 413) return 'batch_too_large';
  return 'bad_response';
}
