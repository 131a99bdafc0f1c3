/**
 * One Holdline session on the server: the application's handle (send, close,
 * message/close/drain events) and the one held poll.
 *
 * Outbound messages sent in the same tick are committed to the store together
 * and share one promise; a held poll is answered as soon as they are committed.
 * `send()` applies backpressure: past maxQueuedBytes it waits, in order, for
 * the client's acks to make room, and rejects with `queue_full` after
 * sendTimeoutMs or with `session_closed` when the session ends.
 *
 * A large answer names where its batch ends (NEXT_HEADER) and the client's
 * next poll may start there (`from`, an early poll); while one is expected
 * and no poll is held, the session reads that batch ahead (commitNow).
 */
import {
  decodeEntries,
  EARLY_HOLD_MS,
  EARLY_POLL_BYTES,
  encodeBatch,
  encodeClose,
  encodeEntry,
  HoldlineError,
  isPayload,
  NO_MESSAGES,
  SendWindow,
  TypedEmitter,
  Unsent,
  type CloseReason,
  type OutboxEntry,
  type Payload,
} from '../shared/index.js';
import { batchBody } from './batch-body.js';
import { clockMs } from './clock.js';
import type { ResolvedOptions } from './options.js';
import type { ReadOutboundResult } from './store.js';

export type SessionState = 'open' | 'closed';

const CLOSED = 1;
const FLUSH_AGAIN = 2;
const FLUSHING = 4;

export interface SessionEvents {
  message: (data: Payload) => void;
  /** `unacked`: messages the client never acknowledged, in order; they will not be delivered. */
  close: (reason: CloseReason, unacked: Payload[]) => void;
  /** All sent so far has been acknowledged by the client (bufferedAmount is 0). */
  drain: () => void;
  /** Every message queued so far has been written into a poll response (queuedAmount is 0). */
  flush: () => void;
}

/** A held poll as its transport knows it (for HTTP, the ServerResponse): opaque to the session. */
export type PollHandle = object;

/**
 * How a transport answers its held polls: one object for all of them, not
 * one per poll (an idle server holds a poll per session).
 */
export interface PollAnswerer {
  /**
   * `body`: JSON text, or its UTF-8 bytes. `next`: for a large batch, the
   * number just past it (sent as the NEXT_HEADER header).
   */
  respond(poll: PollHandle, body: string | Uint8Array, next?: number): void;
  /** True once the client has gone away (the request was aborted). */
  gone(poll: PollHandle): boolean;
}

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly options: ResolvedOptions;
  /** Answers the sessions' held polls. */
  readonly answerer: PollAnswerer;
  reportError(err: unknown): void;
  sessionEnded(session: Session, reason: CloseReason): void;
}

/** Send-side state, made on a session's first send (or ack): an idle session holds none. */
interface SendState {
  /** Backpressure over bytes not yet acknowledged. */
  window: SendWindow;
  /** The tally of bytes not yet written. */
  unsent: Unsent;
  /** bufferedBytes as the store last reported it (committed, unacknowledged). */
  storeBuffered: number;
  /** Sent this turn, not yet committed to the store. */
  uncommitted: OutboxEntry[] | undefined;
  /** The commit of `uncommitted`, due at the end of this turn. */
  commit: Promise<void> | undefined;
  /** Commits to the store so far (a batch read ahead is stale after another). */
  commits: number;
  /** Just past the last batch written: where an early poll starts. */
  nextSeq: number;
  /** The client's highest ack. */
  clientAck: number;
  /** Where the held poll's batch starts, if it named one (an early poll's `from`). */
  pollFrom: number | undefined;
  /** The last answer carried NEXT_HEADER, and no poll or read-ahead has come since. */
  expectEarly: boolean;
  /** A batch read ahead for the expected early poll (see commitNow). */
  ahead: { seq: number; commits: number; batch: Promise<ReadOutboundResult> } | undefined;
  /** The flush under way, if any (for settled()). */
  flushing: Promise<void> | undefined;
}

/*
 * An idle server holds one Session per client, so it has few fields (8 bytes
 * each): the held poll is its handle alone (the host's answerer answers it),
 * one time field serves as hold deadline and idle clock (whole ms, clock.ts),
 * flags are bits of one field, and everything about sending waits in
 * SendState. Its helpers are TS-private methods, not # methods: V8 gives
 * every instance of a class with # methods a hidden brand field.
 */
export class Session extends TypedEmitter<SessionEvents> {
  readonly id: string;
  /** @internal The secret the client proves the session with (the server's registry checks it). */
  readonly token: string;
  /** CLOSED, FLUSHING and FLUSH_AGAIN bits (one field for three flags: an idle server holds a Session per client). */
  #flags = 0;
  readonly #host: SessionHost;
  #out: SendState | undefined;

  /** The held poll. */
  #poll: PollHandle | undefined;
  /**
   * clockMs: while a poll is held, when its hold ends; else when the session
   * was last active (a request came, or a held poll ended). One field, as
   * an idle timeout never runs while a poll is held.
   */
  #time: number;

  constructor(id: string, token: string, host: SessionHost, now: number) {
    super();
    this.id = id;
    this.token = token;
    this.#host = host;
    this.#time = now;
  }

  get state(): SessionState {
    return this.closed ? 'closed' : 'open';
  }

  /** Payload bytes sent but not yet acknowledged by the client. */
  get bufferedAmount(): number {
    return this.#out?.window.buffered ?? 0;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#out?.unsent.bytes ?? 0;
  }

  private get closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  private get store() {
    return this.#host.options.store;
  }

  /** Queue a message for the client. Resolves once it is queued (see backpressure above). */
  send(data: Payload): Promise<void> {
    if (!isPayload(data)) {
      return Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`));
    }
    return this.sendEncoded(encodeEntry(data));
  }

  /** send() for a message already encoded (broadcast encodes once for every session). */
  sendEncoded(entry: OutboxEntry): Promise<void> {
    if (this.closed) {
      return Promise.reject(new HoldlineError('session_closed', `session ${this.id} is closed`));
    }
    const { maxMessageBytes } = this.#host.options;
    if (entry.bytes > maxMessageBytes) {
      return Promise.reject(
        new HoldlineError('message_too_large', `message of ${entry.bytes} bytes exceeds maxMessageBytes (${maxMessageBytes})`),
      );
    }
    const { window } = this.sendState();
    if (window.tryAcquire(entry.bytes)) return this.admit(entry);
    return window.acquire(entry.bytes, () => this.admit(entry));
  }

  private sendState(): SendState {
    const { maxQueuedBytes, sendTimeoutMs } = this.#host.options;
    return (this.#out ??= {
      window: new SendWindow(maxQueuedBytes, sendTimeoutMs),
      unsent: new Unsent(),
      storeBuffered: 0,
      uncommitted: undefined,
      commit: undefined,
      commits: 0,
      pollFrom: undefined,
      nextSeq: 1,
      clientAck: 0,
      expectEarly: false,
      ahead: undefined,
      flushing: undefined,
    });
  }

  private admit(entry: OutboxEntry): Promise<void> {
    const out = this.sendState();
    (out.uncommitted ??= []).push(entry);
    out.unsent.push(entry.bytes);
    out.commit ??= Promise.resolve().then(() => this.commitNow(out));
    return out.commit;
  }

  private async commitNow(out: SendState): Promise<void> {
    out.commit = undefined;
    // Closed meanwhile: leave the entries for close() to report as unacked.
    if (this.closed) throw new HoldlineError('session_closed', `session ${this.id} is closed`);
    const entries = out.uncommitted ?? [];
    out.uncommitted = undefined;
    const r = await this.store.enqueue(this.id, entries);
    out.storeBuffered = r.bufferedBytes;
    out.commits++;
    if (this.#poll) return this.wake();
    // No poll to answer yet, but an early poll is on its way (the last answer
    // carried NEXT_HEADER): read its batch ahead, once, after this turn's
    // sends, while the client is still busy with the last one.
    if (out.expectEarly) {
      out.expectEarly = false;
      setImmediate(() => this.readAhead(out));
    }
  }

  private readAhead(out: SendState): void {
    // A poll came first (it reads for itself), or the session ended. A read
    // ahead that turns out stale is not used: readBatch checks it.
    if (this.#poll || this.closed) return;
    const batch = this.store.readOutbound(this.id, this.#host.options.maxBatchBytes, out.nextSeq);
    batch.catch(() => undefined); // read again, and reported, when the poll comes
    out.ahead = { seq: out.nextSeq, commits: out.commits, batch };
  }

  /** The batch for the held poll: the one read ahead if it is still what the poll asks for, else read now. */
  private readBatch(): Promise<ReadOutboundResult> {
    const out = this.#out;
    const ahead = out?.ahead;
    const from = out?.pollFrom;
    if (out && ahead) {
      out.ahead = undefined;
      const start = Math.max(from ?? 0, out.clientAck + 1);
      if (ahead.seq === start && ahead.commits === out.commits) return ahead.batch;
    }
    return this.store.readOutbound(this.id, this.#host.options.maxBatchBytes, from);
  }

  /** Close the session; the client is told why (a close frame on its poll). */
  close(reason: CloseReason = { code: 'server_closed', message: 'closed by the server' }): void {
    if (this.closed) return;
    this.#flags |= CLOSED;
    this.#out?.window.fail(new HoldlineError('session_closed', `session ${this.id} closed: ${reason.code}`));
    this.#out?.unsent.reset();
    const poll = this.#poll;
    this.#poll = undefined;
    const { answerer } = this.#host;
    if (poll && !answerer.gone(poll)) answerer.respond(poll, encodeClose(0, reason));
    this.#host.sessionEnded(this, reason);
    this.store
      .delete(this.id)
      .then((rest) => {
        const out = this.#out;
        const lost = out?.uncommitted ?? [];
        if (out) out.uncommitted = undefined;
        this.emit('close', reason, decodeEntries([...rest, ...lost]));
      })
      .catch((e: unknown) => this.#host.reportError(e));
  }

  // ---- used by the HTTP layer ----

  /**
   * True when applyAck(ack, from) would change nothing and refuse nothing:
   * `ack` is the last ack applied here (the store holds it, or a later one)
   * and there is no `from` to check against the store's last message. The
   * HTTP layer then skips applyAck(), and its microtask turns through the store.
   */
  ackApplied(ack: number, from?: number): boolean {
    return from === undefined && ack === (this.#out?.clientAck ?? 0);
  }

  /**
   * The client acknowledged outbound messages up to `ack`. False when `ack`
   * is past the last message sent, or a poll's `from` more than one past it
   * (the caller answers bad_ack).
   */
  async applyAck(ack: number, from?: number): Promise<boolean> {
    const { result, bufferedBytes, lastSeq } = await this.store.ackOutbound(this.id, ack);
    if (result === 'future') return false;
    if (result === 'ok') {
      // Applied in the store: account for it here too, even if `from` is refused below.
      const out = this.sendState();
      out.clientAck = ack;
      const freed = out.storeBuffered - bufferedBytes;
      out.storeBuffered = bufferedBytes;
      out.window.release(freed);
      if (out.window.buffered === 0 && !this.closed) this.emit('drain');
    }
    return from === undefined || from <= lastSeq + 1;
  }

  /** Deliver inbound messages, in order, to 'message' listeners. */
  deliver(messages: readonly Payload[], from: number): void {
    for (let i = from; i < messages.length; i++) {
      if (this.closed) return;
      try {
        this.emit('message', messages[i]);
      } catch (e) {
        this.#host.reportError(e);
      }
    }
  }

  /**
   * Take a poll: answer at once if anything is pending (from message `from`
   * on, if given), else hold it (superseding any held one).
   */
  async poll(handle: PollHandle, holdMs: number, now: number, from?: number): Promise<void> {
    const previous = this.#poll;
    const { answerer } = this.#host;
    const out = from === undefined ? this.#out : this.sendState();
    if (out) {
      out.expectEarly = false;
      out.pollFrom = from;
    }
    // An early poll is held briefly: when the stream pauses, its answer is
    // what makes the client send a poll carrying the ack of the last batch.
    const early = from !== undefined && from > (out?.clientAck ?? 0) + 1;
    this.#poll = handle;
    this.#time = now + (early ? Math.min(holdMs, EARLY_HOLD_MS) : holdMs);
    if (previous && !answerer.gone(previous)) {
      // One poll per session: the newer one wins; the older is answered empty.
      answerer.respond(previous, await this.emptyBatch());
    }
    if ((await this.store.pendingOutbound(this.id, from)) > 0 || holdMs === 0) this.wake();
  }

  /** Called by the server's ticker. Ends an expired hold with an empty batch (the heartbeat). */
  tick(now: number): void {
    const poll = this.#poll;
    if (!poll) return;
    if (this.#host.answerer.gone(poll)) {
      this.#poll = undefined;
      this.#time = now;
    } else if (now >= this.#time) {
      this.wake();
    }
  }

  get holdingPoll(): boolean {
    return this.#poll !== undefined;
  }

  /** A request for this session arrived (clockMs). */
  touch(now: number): void {
    if (this.#poll === undefined) this.#time = now;
  }

  /** Since when (clockMs) the session has been idle: undefined while it holds a poll. */
  get idleSince(): number | undefined {
    return this.#poll === undefined ? this.#time : undefined;
  }

  private async emptyBatch(): Promise<string> {
    // Read from past the end: nothing to encode, only the inbound ack is wanted.
    const r = await this.store.readOutbound(this.id, 0, Number.MAX_SAFE_INTEGER);
    return encodeBatch(r.inboundAck, r.seq, NO_MESSAGES);
  }

  /** Answer the held poll with whatever is pending (one flush at a time). */
  private wake(): void {
    if (!this.#poll) return;
    if (this.#flags & FLUSHING) {
      this.#flags |= FLUSH_AGAIN;
      return;
    }
    this.#flags |= FLUSHING;
    const flushing: Promise<void> = this.flush()
      .catch((e: unknown) => this.#host.reportError(e))
      .finally(() => {
        this.#flags &= ~FLUSHING;
        if (this.#out?.flushing === flushing) this.#out.flushing = undefined;
        if (this.#flags & FLUSH_AGAIN) {
          this.#flags &= ~FLUSH_AGAIN;
          this.wake();
        }
      });
    // Kept only where settled() needs it: a session that has sent.
    if (this.#out) this.#out.flushing = flushing;
  }

  /**
   * Resolves once what was sent so far is committed and, if a poll is held,
   * on its way. The HTTP layer awaits it before answering a send, so that an
   * application's immediate reply (an echo) leaves on the poll first.
   */
  async settled(): Promise<void> {
    try {
      await this.#out?.commit;
    } catch {
      // The session closed meanwhile: nothing more to wait for.
    }
    await this.#out?.flushing;
  }

  private async flush(): Promise<void> {
    if (this.closed) return;
    const poll = this.#poll;
    if (!poll) return;
    const batch = await this.readBatch();
    if (this.#poll !== poll) return;
    const now = clockMs();
    if (batch.count === 0 && now < this.#time) return;
    this.#poll = undefined;
    this.#time = now;
    const { answerer } = this.#host;
    if (answerer.gone(poll)) return;
    const next = batch.wireBytes >= EARLY_POLL_BYTES ? batch.seq + batch.count : undefined;
    answerer.respond(poll, batchBody(batch), next);
    const out = this.#out;
    if (!out || batch.count === 0) return;
    out.nextSeq = batch.seq + batch.count;
    out.expectEarly = next !== undefined;
    if (out.unsent.sent(batch.seq + batch.count - 1)) this.emit('flush');
  }
}
