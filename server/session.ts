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
 * and no poll is held, the session reads that batch ahead (#commitNow).
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
import type { ResolvedOptions } from './options.js';
import type { ReadOutboundResult } from './store.js';

export type SessionState = 'open' | 'closed';

export interface SessionEvents {
  message: (data: Payload) => void;
  /** `unacked`: messages the client never acknowledged, in order; they will not be delivered. */
  close: (reason: CloseReason, unacked: Payload[]) => void;
  /** All sent so far has been acknowledged by the client (bufferedAmount is 0). */
  drain: () => void;
  /** Every message queued so far has been written into a poll response (queuedAmount is 0). */
  flush: () => void;
}

/** Where a poll's answer goes: the HTTP layer supplies it. */
export interface PollSink {
  /** `next`: for a large batch, the number just past it (sent as the NEXT_HEADER header). */
  respond(body: string, next?: number): void;
  /** True once the client has gone away (the request was aborted). */
  readonly gone: boolean;
}

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly options: ResolvedOptions;
  reportError(err: unknown): void;
  sessionEnded(session: Session, reason: CloseReason): void;
}

/** Send-side state, made on a session's first send. */
interface SendState {
  /** Backpressure over bytes not yet acknowledged. */
  window: SendWindow;
  /** The tally of bytes not yet written. */
  unsent: Unsent;
  /** Commits to the store so far (a batch read ahead is stale after another). */
  commits: number;
  /** Just past the last batch written: where an early poll starts. */
  nextSeq: number;
  /** The client's highest ack. */
  clientAck: number;
  /** The last answer carried NEXT_HEADER, and no poll or read-ahead has come since. */
  expectEarly: boolean;
  /** A batch read ahead for the expected early poll (see #commitNow). */
  ahead: { seq: number; commits: number; batch: Promise<ReadOutboundResult> } | undefined;
}

interface HeldPoll {
  sink: PollSink;
  deadline: number;
  /** The client is still reading the messages before this one: start the batch here. */
  from: number | undefined;
}

export class Session extends TypedEmitter<SessionEvents> {
  readonly id: string;
  readonly createdAt: number;
  #state: SessionState = 'open';
  readonly #host: SessionHost;

  /**
   * Send-side state, made on the first send (an idle session that never sent
   * holds none): backpressure over bytes not yet acknowledged, and the tally
   * of those not yet written.
   */
  #out: SendState | undefined;
  /** bufferedBytes as the store last reported it (committed, unacknowledged). */
  #storeBuffered = 0;
  #uncommitted: OutboxEntry[] | undefined;
  #commit: Promise<void> | undefined;

  #poll: HeldPoll | undefined;
  /** The flush under way, if any. */
  #flushing: Promise<void> | undefined;
  #flushAgain = false;
  /** Last time a request for this session arrived or a held poll ended. */
  lastSeen: number;

  constructor(id: string, host: SessionHost, now: number) {
    super();
    this.id = id;
    this.#host = host;
    this.createdAt = now;
    this.lastSeen = now;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Payload bytes sent but not yet acknowledged by the client. */
  get bufferedAmount(): number {
    return this.#out?.window.buffered ?? 0;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#out?.unsent.bytes ?? 0;
  }

  get #store() {
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
    if (this.#state !== 'open') {
      return Promise.reject(new HoldlineError('session_closed', `session ${this.id} is closed`));
    }
    const { maxMessageBytes } = this.#host.options;
    if (entry.bytes > maxMessageBytes) {
      return Promise.reject(
        new HoldlineError('message_too_large', `message of ${entry.bytes} bytes exceeds maxMessageBytes (${maxMessageBytes})`),
      );
    }
    const { window } = this.#sendState();
    if (window.tryAcquire(entry.bytes)) return this.#admit(entry);
    return window.acquire(entry.bytes, () => this.#admit(entry));
  }

  #sendState(): SendState {
    const { maxQueuedBytes, sendTimeoutMs } = this.#host.options;
    return (this.#out ??= { window: new SendWindow(maxQueuedBytes, sendTimeoutMs), unsent: new Unsent(), commits: 0, nextSeq: 1, clientAck: 0, expectEarly: false, ahead: undefined });
  }

  #admit(entry: OutboxEntry): Promise<void> {
    (this.#uncommitted ??= []).push(entry);
    this.#sendState().unsent.push(entry.bytes);
    this.#commit ??= Promise.resolve().then(() => this.#commitNow());
    return this.#commit;
  }

  async #commitNow(): Promise<void> {
    this.#commit = undefined;
    // Closed meanwhile: leave the entries for close() to report as unacked.
    if (this.#state !== 'open') throw new HoldlineError('session_closed', `session ${this.id} is closed`);
    const entries = this.#uncommitted ?? [];
    this.#uncommitted = undefined;
    const r = await this.#store.enqueue(this.id, entries);
    this.#storeBuffered = r.bufferedBytes;
    const out = this.#sendState();
    out.commits++;
    if (this.#poll) return this.#wake();
    // No poll to answer yet, but an early poll is on its way (the last answer
    // carried NEXT_HEADER): read its batch ahead, once, after this turn's
    // sends, while the client is still busy with the last one.
    if (out.expectEarly) {
      out.expectEarly = false;
      setImmediate(() => this.#readAhead(out));
    }
  }

  #readAhead(out: SendState): void {
    // A poll came first (it reads for itself), or the session ended. A read
    // ahead that turns out stale is not used: #readBatch checks it.
    if (this.#poll || this.#state !== 'open') return;
    const batch = this.#store.readOutbound(this.id, this.#host.options.maxBatchBytes, out.nextSeq);
    batch.catch(() => undefined); // read again, and reported, when the poll comes
    out.ahead = { seq: out.nextSeq, commits: out.commits, batch };
  }

  /** The batch for a poll: the one read ahead if it is still what the poll asks for, else read now. */
  #readBatch(poll: HeldPoll): Promise<ReadOutboundResult> {
    const out = this.#out;
    const ahead = out?.ahead;
    if (out && ahead) {
      out.ahead = undefined;
      const start = Math.max(poll.from ?? 0, out.clientAck + 1);
      if (ahead.seq === start && ahead.commits === out.commits) return ahead.batch;
    }
    return this.#store.readOutbound(this.id, this.#host.options.maxBatchBytes, poll.from);
  }

  /** Close the session; the client is told why (a close frame on its poll). */
  close(reason: CloseReason = { code: 'server_closed', message: 'closed by the server' }): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#out?.window.fail(new HoldlineError('session_closed', `session ${this.id} closed: ${reason.code}`));
    this.#out?.unsent.reset();
    const poll = this.#poll;
    this.#poll = undefined;
    if (poll && !poll.sink.gone) poll.sink.respond(encodeClose(0, reason));
    this.#host.sessionEnded(this, reason);
    this.#store
      .delete(this.id)
      .then((rest) => {
        const lost = this.#uncommitted ?? [];
        this.#uncommitted = undefined;
        this.emit('close', reason, decodeEntries([...rest, ...lost]));
      })
      .catch((e: unknown) => this.#host.reportError(e));
  }

  // ---- used by the HTTP layer ----

  /**
   * The client acknowledged outbound messages up to `ack`. False when `ack`
   * is past the last message sent, or a poll's `from` more than one past it
   * (the caller answers bad_ack).
   */
  async applyAck(ack: number, from?: number): Promise<boolean> {
    const { result, bufferedBytes, lastSeq } = await this.#store.ackOutbound(this.id, ack);
    if (result === 'future') return false;
    if (result === 'ok') {
      // Applied in the store: account for it here too, even if `from` is refused below.
      const out = this.#sendState();
      out.clientAck = ack;
      const freed = this.#storeBuffered - bufferedBytes;
      this.#storeBuffered = bufferedBytes;
      out.window.release(freed);
      if (out.window.buffered === 0 && this.#state === 'open') this.emit('drain');
    }
    return from === undefined || from <= lastSeq + 1;
  }

  /** Deliver inbound messages, in order, to 'message' listeners. */
  deliver(messages: readonly Payload[], from: number): void {
    for (let i = from; i < messages.length; i++) {
      if (this.#state !== 'open') return;
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
  async poll(sink: PollSink, holdMs: number, now: number, from?: number): Promise<void> {
    this.lastSeen = now;
    const previous = this.#poll;
    const out = this.#out;
    if (out) out.expectEarly = false;
    // An early poll is held briefly: when the stream pauses, its answer is
    // what makes the client send a poll carrying the ack of the last batch.
    const early = from !== undefined && from > (out?.clientAck ?? 0) + 1;
    this.#poll = { sink, deadline: now + (early ? Math.min(holdMs, EARLY_HOLD_MS) : holdMs), from };
    if (previous && !previous.sink.gone) {
      // One poll per session: the newer one wins; the older is answered empty.
      previous.sink.respond(await this.#emptyBatch());
    }
    if ((await this.#store.pendingOutbound(this.id, from)) > 0 || holdMs === 0) this.#wake();
  }

  /** Called by the server's ticker. Ends an expired hold with an empty batch (the heartbeat). */
  tick(now: number): void {
    const poll = this.#poll;
    if (!poll) return;
    if (poll.sink.gone) {
      this.#poll = undefined;
      this.lastSeen = now;
    } else if (now >= poll.deadline) {
      this.#wake();
    }
  }

  get holdingPoll(): boolean {
    return this.#poll !== undefined;
  }

  async #emptyBatch(): Promise<string> {
    // Read from past the end: nothing to encode, only the inbound ack is wanted.
    const r = await this.#store.readOutbound(this.id, 0, Number.MAX_SAFE_INTEGER);
    return encodeBatch(r.inboundAck, r.seq, NO_MESSAGES);
  }

  /** Answer the held poll with whatever is pending (one flush at a time). */
  #wake(): void {
    if (!this.#poll) return;
    if (this.#flushing) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = this.#flush()
      .catch((e: unknown) => this.#host.reportError(e))
      .finally(() => {
        this.#flushing = undefined;
        if (this.#flushAgain) {
          this.#flushAgain = false;
          this.#wake();
        }
      });
  }

  /**
   * Resolves once what was sent so far is committed and, if a poll is held,
   * on its way. The HTTP layer awaits it before answering a send, so that an
   * application's immediate reply (an echo) leaves on the poll first.
   */
  async settled(): Promise<void> {
    try {
      await this.#commit;
    } catch {
      // The session closed meanwhile: nothing more to wait for.
    }
    await this.#flushing;
  }

  async #flush(): Promise<void> {
    if (this.#state !== 'open') return;
    const poll = this.#poll;
    if (!poll) return;
    const batch = await this.#readBatch(poll);
    if (this.#poll !== poll) return;
    if (batch.count === 0 && Date.now() < poll.deadline) return;
    this.#poll = undefined;
    this.lastSeen = Date.now();
    if (poll.sink.gone) return;
    const next = batch.wireBytes >= EARLY_POLL_BYTES ? batch.seq + batch.count : undefined;
    poll.sink.respond(encodeBatch(batch.inboundAck, batch.seq, batch.m), next);
    const out = this.#out;
    if (!out || batch.count === 0) return;
    out.nextSeq = batch.seq + batch.count;
    out.expectEarly = next !== undefined;
    if (out.unsent.sent(batch.seq + batch.count - 1)) this.emit('flush');
  }
}
