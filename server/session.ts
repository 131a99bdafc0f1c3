/**
 * The session core: one session as its owner node runs it, the
 * application's handle (send, close, events) and the server side of the
 * stream state machine; it knows no transport. ARCHITECTURE.md ("Session
 * core", and "Several nodes" for takeover and redelivery) says how it
 * commits, acks and delivers; its sending side is server/session-send.ts.
 */
import { decodeEntries, encodeEntry, HoldlineError, isPayload, isRpc, RpcPeer, TypedEmitter } from '../shared/index.js';
import type { CloseReason, OutboxEntry, Payload, RequestListener, RequestOptions, StreamItem } from '../shared/index.js';
import { ackReadOutcome, type AckOutcome, type AckRead } from './ack-outcome.js';
import type { MessageInfo, SessionEvents, SessionState } from './session-events.js';
import type { SessionContext } from './session-host.js';
import type { AckReadResult, BatchAsk } from './store.js';
import { closeSends, failSends, MESSAGE_OVERHEAD, newSendState, queueSend, quiet, refusal, releaseRoom, takeAck, type SendState } from './session-send.js';

export type { MessageInfo, SessionEvents, SessionState } from './session-events.js';

const REDELIVERED: MessageInfo = Object.freeze({ redelivered: true });

/** What a node that took a session over keeps: its fence, and up to where messages are flagged redelivered. */
interface Takeover { delivered: number; fence: number; redeliverTo: number }

const CLOSED = 1;
const PUMPING = 2;
const PUMP_AGAIN = 4;

// An idle server holds one Session per client: few fields (8 bytes each), flags as bits of one, sending
// state in SendState; TS-private methods, not # methods (V8 gives a class with # methods a brand field).
/**
 * `In` and `Out` type the payloads (types only, zero cost): `In` what the
 * client sends (messages, its requests' data, the replies to this session's
 * requests), `Out` what this server sends; `Data` is what the server's
 * `authenticate` hook returns (`session.data`). Name them once on the
 * server: `new HoldlineServer<In, Out, Data>(…)`.
 */
export class Session<In extends Payload = Payload, Out extends Payload = Payload, Data = unknown> extends TypedEmitter<SessionEvents<In, Out>> {
  readonly id: string;
  /** The secret the client proves the session with: a # field, so that printing a Session never shows it. */
  readonly #token: string;
  #flags = 0;
  #out: SendState | undefined;
  /**
   * Highest inbound number delivered here; after a takeover by this node, that with the fence and
   * up to where messages are flagged redelivered (one field for both: most are never taken over).
   */
  #inbound: number | Takeover;
  /** clockMs of the last request of this session seen on this node. */
  #seen: number;
  /** Its node, and who opened it: one object for the sessions of one address with no hook data (see SessionContext). */
  readonly #context: SessionContext<Data>;
  /** @internal The polling transport's state for the session here (server/poll-holds.ts): a field, not a map entry. */
  transportSlot: object | undefined = undefined;

  constructor(
    id: string,
    token: string,
    context: SessionContext<Data>,
    now: number,
    takeover?: { fence: number; delivered: number; accepted: number },
  ) {
    super();
    this.id = id;
    this.#context = context;
    this.#token = token;
    this.#seen = now;
    this.#inbound = takeover === undefined ? 0 : { delivered: takeover.delivered, fence: takeover.fence, redeliverTo: takeover.accepted };
  }

  /**
   * What the server's `authenticate` hook returned for this session's open
   * (undefined when it returned `true`, or there is no hook). With a shared
   * store, every node that serves the session has it.
   */
  get data(): Data {
    return this.#context.data;
  }

  /** The client's address as the open request came from it (with `trustProxy`, the first X-Forwarded-For address); every node has it. */
  get remoteAddress(): string | undefined {
    return this.#context.remoteAddress;
  }

  /** True when this node took the session over from an owner that died or left. */
  get resumed(): boolean {
    return typeof this.#inbound !== 'number';
  }

  get state(): SessionState {
    return this.closed ? 'closed' : 'open';
  }

  /** Payload bytes sent but not yet acknowledged by the client. */
  get bufferedAmount(): number {
    const out = this.#out;
    return out === undefined ? 0 : Math.max(0, out.window.buffered - out.pending * MESSAGE_OVERHEAD);
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#out?.unsent.bytes ?? 0;
  }

  private get closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  private get store() {
    return this.#context.host.options.store;
  }

  /**
   * Queue a message for the client. Resolves once it is queued (committed to
   * the store); past maxQueuedBytes of unacknowledged messages it waits for
   * the client's acks, and rejects with `queue_full` after sendTimeoutMs, or
   * at once when another maxQueuedBytes already wait. A message sent before
   * the session closes and never acknowledged is in the `close` event's
   * `unacked` (a send still waiting then also rejects, `session_closed`).
   * The promise may be ignored: a rejection nobody handles is never an
   * unhandled rejection.
   */
  send(data: Out): Promise<void> {
    if (!isPayload(data)) {
      return quiet(Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`)));
    }
    return this.sendEncoded(encodeEntry(data));
  }

  /** send() for a message already encoded (broadcast encodes once for every session). */
  sendEncoded(entry: OutboxEntry): Promise<void> {
    return refusal(this, this.#context.host.options, entry) ?? queueSend(this, this.#context.host, this.sendState(), entry);
  }

  /** The send side's state (server/session-send.ts), made on first use. */
  private sendState(): SendState {
    return (this.#out ??= newSendState(this.#context.host.options));
  }

  /** Resolves once what was sent so far is committed to the store. */
  async committed(): Promise<void> {
    try {
      await this.#out?.commit;
    } catch {
      // Closed meanwhile: nothing more will be committed.
    }
  }

  /** A send() waits for room (for the client's acks). */
  get sendWaiting(): boolean {
    return (this.#out?.waiting.length ?? 0) > 0;
  }

  /** The application waits for acks (a send() waits for room, or a 'drain' listener): polling hurries them (polling.ts). */
  get awaitsAcks(): boolean {
    return this.sendWaiting || this.listenerCount('drain') > 0;
  }

  /** on() (and once()): a 'drain' listener set while an early poll is held has it answered, so the ack comes. */
  override on<K extends keyof SessionEvents<In, Out>>(event: K, fn: SessionEvents<In, Out>[K]): this {
    super.on(event, fn);
    if (event === 'drain') this.#context.host.ackWanted(this);
    return this;
  }

  /** @internal Sends of this turn not yet committed to the store (a held poll then waits for the end of the turn). */
  get uncommitted(): boolean {
    return this.#out?.uncommitted !== undefined;
  }

  /** Commits to the store so far (transports use it to tell a stale read-ahead). */
  get commits(): number {
    return this.#out?.commits ?? 0;
  }

  /** Messages sent and not yet acknowledged by the client. */
  get pendingAcks(): number {
    return this.#out?.pending ?? 0;
  }

  /** The last outbound message written to the client so far (0: none), for send answers (WRITTEN_HEADER). */
  get writtenSeq(): number {
    return this.#out?.unsent.sentUpTo ?? 0;
  }

  /** The client's highest ack seen here. */
  get clientAck(): number {
    return this.#out?.clientAck ?? 0;
  }

  /**
   * Ask the client and wait for its reply: `client.on('request', …)` answers
   * it. Rides the session's stream like send() (exactly once, across
   * reconnects). Rejects with `timeout` (options.timeoutMs, default 30 s),
   * `aborted` (options.signal), `request_failed` (the client's listener
   * failed, or there is none: see `replyCode`), or `session_lost` when the
   * session ends first.
   */
  request(data: Out, options?: RequestOptions): Promise<In> {
    const refuse = this.closed ? new HoldlineError('session_closed', `session ${this.id} is closed`) : undefined;
    return this.rpc().request(data, options, refuse) as Promise<In>;
  }

  /** The session's requests both ways, made on first use. */
  private rpc(): RpcPeer {
    // In the send state: a session that makes or answers requests sends on its stream.
    return (this.sendState().rpc ??= new RpcPeer({
      send: (entry) => this.sendEncoded(entry),
      listeners: () => this.listeners('request') as RequestListener[],
      report: this.#context.host.reportError,
    }));
  }

  /** Close the session; the client is told why (a close frame on its poll). */
  close(reason: CloseReason = { code: 'server_closed', message: 'closed by the server' }): void {
    if (this.closed) return;
    this.#flags |= CLOSED;
    const out = this.#out;
    out?.rpc?.failAll(new HoldlineError('session_lost', `session ${this.id} closed (${reason.code}) before the reply came`));
    // Still waiting for room: reported as unacked with the rest (ended()), and the send()s reject.
    if (out) closeSends(this.#context.host, out, new HoldlineError('session_closed', `session ${this.id} closed: ${reason.code}`));
    this.#context.host.sessionEnded(this, reason);
  }

  /**
   * @internal This node gives the session up (it leaves, is fenced, or another took it over):
   * it goes on on another node, so `moved` here, no `close`; waiting sends reject with `session_closed`.
   */
  detach(): void {
    if (this.closed) return;
    this.#flags |= CLOSED;
    const out = this.#out;
    out?.rpc?.failAll(new HoldlineError('session_lost', `session ${this.id} moved to another node before the reply came`));
    if (out) failSends(this.#context.host, out, new HoldlineError('session_closed', `session ${this.id} moved to another node`));
    this.emitSafely('moved');
  }

  /** @internal The node removed the session from the store: report what the client never got. */
  ended(reason: CloseReason, rest: readonly OutboxEntry[]): void {
    const out = this.#out;
    const lost = out?.uncommitted ?? [];
    if (out) out.uncommitted = undefined;
    this.#flags |= CLOSED;
    this.emitSafely('close', reason, decodeEntries([...rest, ...lost]));
  }

  // ---- used by the node and its transports ----

  /** The fence this node owns the session with. */
  get fence(): number {
    const i = this.#inbound;
    return typeof i === 'number' ? 1 : i.fence;
  }

  /** applyAck(ack, from) would change and refuse nothing (`ack` is the last applied here, no `from` to check): the transport skips it. */
  ackApplied(ack: number, from?: number): boolean {
    return from === undefined && ack === (this.#out?.clientAck ?? 0);
  }

  /** The client acknowledged outbound messages up to `ack`. False (bad_ack) when `ack`, or a poll's `from` - 1, is past the last message sent. */
  async applyAck(ack: number, from?: number): Promise<boolean> {
    return (await this.ackOutbound(ack, from)) !== false;
  }

  /** applyAck(), with what the store said (see AckOutcome); with a poll's `read`, its batch too if the store can (ackAndRead). */
  async ackOutbound(ack: number, from?: number, read?: BatchAsk): Promise<AckOutcome | AckRead> {
    const { store } = this;
    const commits = this.commits;
    const r: AckReadResult = read !== undefined && store.ackAndRead !== undefined ? await store.ackAndRead(this.id, ack, read) : await store.ackOutbound(this.id, ack);
    if (r.result === 'ok') this.acked(ack);
    return ackReadOutcome(r, ack, from, commits);
  }

  /** The store holds an ack up to `ack` (applied here or on another node; again, once messages it covers are committed here). */
  acked(ack: number): void {
    const out = this.sendState();
    const freed = takeAck(out, ack);
    if (freed < 0) return;
    if (out.unsent.sent(ack) && !this.closed) this.emitSafely('flush');
    releaseRoom(this.#context.host, out, freed);
    if (out.window.buffered === 0 && !this.closed) this.emitSafely('drain');
  }

  /** A transport wrote outbound messages up to `lastSeq` to the client ('flush' from within send(), a commit at once, waits for a microtask). */
  written(lastSeq: number): void {
    const out = this.#out;
    if (!out || !out.unsent.sent(lastSeq) || this.closed) return;
    if (out.inCommit) queueMicrotask(() => { if (!this.closed) this.emitSafely('flush'); });
    else this.emitSafely('flush');
  }

  /**
   * This node accepted inbound messages numbered from `seq` into the store
   * (`messages`, of which the first `skip` were duplicates): deliver them,
   * in order, to 'message' listeners. True when they are done (none returned
   * a promise: it may send more), false when not or when read via pump().
   */
  receive(messages: readonly StreamItem[], skip: number, seq: number): boolean {
    const first = seq + skip;
    const last = seq + messages.length - 1;
    if (last < first) return true;
    if ((this.#flags & PUMPING) !== 0 || first !== this.delivered + 1) {
      this.pump();
      return false;
    }
    const atWork = this.deliver(messages, skip, first);
    this.markDelivered(last);
    return !atWork;
  }

  /** Another node accepted inbound messages (or this one took the session over): deliver what the store holds. */
  pump(): void {
    if (this.closed) return;
    if (this.#flags & PUMPING) {
      this.#flags |= PUMP_AGAIN;
      return;
    }
    this.#flags |= PUMPING;
    this.pumpNow()
      .catch((e: unknown) => {
        if (!this.closed) this.#context.host.reportError(e);
      })
      .finally(() => {
        this.#flags &= ~PUMPING;
        if (this.#flags & PUMP_AGAIN) {
          this.#flags &= ~PUMP_AGAIN;
          this.pump();
        }
      });
  }

  private async pumpNow(): Promise<void> {
    for (;;) {
      const batch = await this.store.readInbound(this.id, this.delivered + 1);
      if (this.closed) return;
      // Another node took the session over meanwhile (this one was paused past its lease): that one delivers.
      if (batch.fence !== undefined && batch.fence !== this.fence) return this.#context.host.disown([this]);
      if (batch.messages.length === 0) return;
      const last = batch.seq + batch.messages.length - 1;
      this.deliver(batch.messages, 0, batch.seq);
      this.markDelivered(last);
      if (this.#flags & PUMP_AGAIN) this.#flags &= ~PUMP_AGAIN;
      else return;
    }
  }

  /** Highest inbound number delivered here. */
  private get delivered(): number {
    const i = this.#inbound;
    return typeof i === 'number' ? i : i.delivered;
  }

  /** True when a listener may still be at work (it returned a promise, or a request came: its handler may be async). */
  private deliver(messages: readonly StreamItem[], from: number, firstSeq: number): boolean {
    let seq = firstSeq;
    let atWork = false;
    for (const m of from === 0 ? messages : messages.slice(from)) {
      if (this.closed) return atWork;
      const i = this.#inbound;
      if (typeof i === 'number') this.#inbound = seq;
      else i.delivered = seq;
      if (isRpc(m)) this.rpc().receive(m);
      else if (typeof i !== 'number' && seq <= i.redeliverTo) atWork = this.emitSafely('message', m, REDELIVERED) || atWork;
      else atWork = this.emitSafely('message', m) || atWork;
      atWork ||= isRpc(m); // a request's handler may be async
      seq++;
    }
    return atWork;
  }

  /** Mark inbound messages up to `seq` delivered in the store: soon, by the node (server/delivery-marks.ts). */
  private markDelivered(seq: number): void {
    if (!this.closed) this.#context.host.markDelivered(this, seq);
  }

  /** Emit to application listeners: one that throws (or an async one that rejects) is reported, never stops delivery; true when one returned a promise. */
  private emitSafely<K extends keyof SessionEvents>(event: K, ...args: Parameters<SessionEvents[K]>): boolean {
    // The payloads are what came off the wire; In and Out only name them for the application.
    return this.emitGuarded(this.#context.host.reportError, event, ...(args as Parameters<SessionEvents<In, Out>[K]>));
  }

  /** @internal The session's credential (the node checks requests against it). Never logged. */
  get token(): string {
    return this.#token;
  }

  /** True while this node holds a poll of the session, ready to answer it. */
  get holdingPoll(): boolean {
    return this.#context.host.holding(this.id);
  }

  /** A request of this session came to this node (clockMs). */
  touch(now: number): void {
    this.#seen = now;
  }

  /** clockMs of the last request seen here. */
  get seen(): number {
    return this.#seen;
  }
}
