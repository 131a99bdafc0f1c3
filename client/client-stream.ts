/**
 * The reliable stream both ways, as the client keeps it for the session
 * machine (session-machine.ts): the outbox (messages numbered and kept until
 * the server acknowledges them), the inbox (the cumulative inbound ack) and
 * the send window (backpressure over unacknowledged bytes). It outlives
 * requests, connections and transports; the machine starts it over when a
 * session is lost and fills it from the state of a resumed one. It knows no
 * states and no transport: the machine checks those before it asks.
 */
import {
  decodeEntries,
  encodeEntry,
  fromStreamWire,
  HoldlineError,
  Inbox,
  isRpc,
  Outbox,
  SendWindow,
  utf8Length,
  type OutboxBatch,
  type OutboxEntry,
  type OutboxWires,
  type Payload,
  type PollResponse,
} from '../shared/index.js';
import type { ClientStats, Emit } from './events.js';
import type { SessionState } from './session-state.js';
import type { LiveSession } from './transport.js';

/** Shared by every send() that is queued at once: nothing to allocate per message. */
const RESOLVED: Promise<void> = Promise.resolve();

export class ClientStream {
  #outbox = new Outbox();
  #inbox = new Inbox();
  readonly #window: SendWindow;
  readonly #emit: Emit;
  readonly #stats: Required<ClientStats>;
  /**
   * A resumed session whose first batch has not come yet. If that batch
   * starts past our ack + 1, the client we resumed from (the page before its
   * reload, the last leader tab) acknowledged more than it told us, which it
   * did only once it had delivered those messages: go on from there.
   */
  #mayJump: LiveSession | undefined;
  /**
   * A resumed session whose outbound numbering the server has not confirmed
   * yet: the last number of the state resumed from. The client we resumed
   * from may have gone on sending after it exported that state (a page that
   * saved it when hidden and sent more, a leader tab whose last word never
   * arrived); the server took those under the numbers that follow, and would
   * take a new message under one of them as a repeat: lost without a word.
   * So nothing past this number is sent until the server's cumulative ack is
   * known; an ack past it moves the stream on from there (renumberFrom).
   */
  #unconfirmed: number | undefined;

  constructor(maxBufferedBytes: number, sendTimeoutMs: number, emit: Emit, stats: Required<ClientStats>) {
    this.#window = new SendWindow(maxBufferedBytes, sendTimeoutMs);
    this.#emit = emit;
    this.#stats = stats;
  }

  get inboundAck(): number {
    return this.#inbox.ack;
  }

  get outboundPending(): number {
    return this.#outbox.pending;
  }

  get outboundLastSeq(): number {
    return this.#outbox.lastSeq;
  }

  /** Payload bytes sent (or queued) and not yet acknowledged by the server. */
  get bufferedAmount(): number {
    return this.#window.buffered;
  }

  /** Payload bytes queued and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#outbox.unwrittenBytes;
  }

  // ---- continuity ----

  /**
   * Take over a resumed session's stream (`state`, of session `live`): its
   * inbound position, and its unacknowledged messages, queued again with
   * their numbers and counted in the window even past its size.
   */
  resume(state: SessionState, live: LiveSession): void {
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
    // What a holder queued while it waited, as this one now does, was never sent: numbered after the ack.
    this.#unconfirmed = outbox.lastSeq - (state.outboundUnsent ?? 0);
  }

  /** A resumed session's outbound numbering waits for the server's ack (see #unconfirmed). */
  get outboundUnconfirmed(): boolean {
    return this.#unconfirmed !== undefined;
  }

  /** The stream's part of a SessionState, as it stands. */
  exportState(): Pick<SessionState, 'inboundAck' | 'outboundAcked' | 'outbound' | 'outboundUnsent'> {
    const state = {
      inboundAck: this.#inbox.ack,
      outboundAcked: this.#outbox.acked,
      outbound: this.#outbox.unacked().map((e) => e.wire),
    };
    // Still waiting for the server's first ack after a resume: what was queued past the handed numbers is not numbered yet.
    const unsent = this.#unconfirmed === undefined ? 0 : this.#outbox.lastSeq - this.#unconfirmed;
    return unsent > 0 ? { ...state, outboundUnsent: unsent } : state;
  }

  /**
   * The session is lost: start both ways over, numbered from 1. Returns the
   * messages that were not acknowledged (the 'reset' event's `lost`) and
   * their bytes, which the window keeps until release(): sends waiting for
   * room must not overtake what a reset listener sends again.
   */
  restart(): { lost: Payload[]; bytes: number } {
    const bytes = this.#outbox.bufferedBytes;
    const lost = decodeEntries(this.#outbox.takeAll());
    this.#outbox = new Outbox();
    this.#inbox = new Inbox();
    this.#unconfirmed = undefined;
    return { lost, bytes };
  }

  /** Give the window back `bytes` (restart()'s), admitting sends that wait for room. */
  release(bytes: number): void {
    this.#window.release(bytes);
  }

  /** The client closed: every send still waiting fails with `error`. Returns the messages never acknowledged. */
  end(error: HoldlineError): Payload[] {
    const unacked = decodeEntries(this.#outbox.takeAll());
    this.#window.fail(error);
    return unacked;
  }

  // ---- outbound ----

  /** Queue `entry` once the window has room (at once, nothing allocated, when it has); `queued` runs after each. */
  queue(entry: OutboxEntry, queued: () => void): Promise<void> {
    if (this.#window.tryAcquire(entry.bytes)) return this.#push(entry, queued);
    return this.#window.acquire(entry.bytes, () => this.#push(entry, queued));
  }

  #push(entry: OutboxEntry, queued: () => void): Promise<void> {
    this.#outbox.pushEntry(entry);
    this.#stats.messagesSent++;
    this.#stats.bytesSent += entry.bytes;
    queued();
    return RESOLVED;
  }

  /**
   * Messages queued while no limits were known (before the first open
   * answer, or between sessions) that are over this session's
   * maxMessageBytes (`max`): send() would have refused them, so they are
   * refused now, each reported through 'error', and the stream goes on
   * without them. None of them has been written, so the outbox renumbers
   * what follows.
   */
  refuseOversized(max: number): void {
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

  nextBatch(maxWireBytes: number, maxCount: number | undefined, from?: number): OutboxBatch {
    return this.#outbox.batch(maxWireBytes, this.#sendable(maxCount, from), from);
  }

  nextWires(maxWireBytes: number, maxCount: number | undefined, from?: number): OutboxWires {
    return this.#outbox.wires(maxWireBytes, this.#sendable(maxCount, from), from);
  }

  /** How many messages a batch from `from` may hold: none past an unconfirmed resumed numbering. */
  #sendable(maxCount: number | undefined, from: number | undefined): number | undefined {
    const last = this.#unconfirmed;
    if (last === undefined) return maxCount;
    const room = Math.max(0, last - Math.max(from ?? 0, this.#outbox.acked + 1) + 1);
    return maxCount === undefined ? room : Math.min(maxCount, room);
  }

  written(lastSeq: number): void {
    if (this.#outbox.written(lastSeq)) this.#emit('flush');
  }

  /** Message `seq` can never pass (`error`): drop it, report it, renumber the messages after it. */
  refused(seq: number, error: HoldlineError): void {
    const outbox = this.#outbox;
    if (seq <= outbox.acked) return;
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
    const last = this.#unconfirmed;
    if (last !== undefined) {
      // The server's first word on the resumed session: where its count of our stream stands.
      this.#unconfirmed = undefined;
      if (ack > last) {
        outbox.renumberFrom(last, ack);
        this.#window.release(before - outbox.bufferedBytes);
        this.#stats.messagesAcked += Math.max(0, last - ackedBefore);
        this.#emit('ack', this.#stats.messagesAcked);
        return;
      }
    }
    if (outbox.ack(ack) !== 'ok') return;
    this.#window.release(before - outbox.bufferedBytes);
    this.#stats.messagesAcked += outbox.acked - ackedBefore;
    this.#emit('ack', this.#stats.messagesAcked);
  }

  // ---- inbound ----

  /**
   * The numbering of an inbound batch of `session` (its ack and close frame
   * are the machine's): the index in `batch.m` of the first message to
   * deliver, `m.length` for none.
   */
  accept(session: LiveSession, batch: PollResponse): number {
    if (this.#mayJump === session && batch.m.length > 0) {
      this.#mayJump = undefined;
      if (batch.seq > this.#inbox.ack + 1) this.#inbox = new Inbox(batch.seq - 1);
    }
    const v = this.#inbox.accept(batch.seq, batch.m.length);
    // A hole (never sent by a correct server): deliver nothing, the next request asks again from our ack.
    return v.ok ? v.skip : batch.m.length;
  }
}
