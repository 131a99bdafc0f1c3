/**
 * The long-polling transport: an adapter over the session core and the
 * store. It holds one poll per session on this node and answers it from the
 * store when there is something to read (the session's commit on this node,
 * or a store wake-up from another), when its hold ends (the heartbeat: an
 * empty batch), or when a newer poll supersedes it (here or on another node).
 *
 * Early polls: a large answer names where its batch ends (NEXT_HEADER), and
 * the client's next poll may start there (`from`) while it still reads this
 * one. While one is expected and no poll is held, the batch is read ahead
 * once, after the sends of this turn (see outboundReady).
 *
 * A held poll is the transport's handle (the HTTP layer's ServerResponse):
 * one Hold object per session that holds a poll or expects an early one, and
 * none for the others.
 */
import {
  HoldlineError,
  EARLY_HOLD_MS,
  EARLY_POLL_BYTES,
  encodeBatch,
  encodeClose,
  NO_MESSAGES,
  type CloseReason,
} from '../shared/index.js';
import { batchBody } from './batch-body.js';
import { clockMs } from './clock.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';
import type { ReadOutboundResult } from './store.js';

/** A held poll as its endpoint knows it (for HTTP, the ServerResponse): opaque here. */
export type PollHandle = object;

/**
 * How the endpoint answers held polls: one object for all of them, not one
 * per poll (an idle server holds a poll per session).
 */
export interface PollAnswerer {
  /**
   * `body`: JSON text, or its UTF-8 bytes. `next`: for a large batch, the
   * number just past it (sent as the NEXT_HEADER header).
   */
  respond(poll: PollHandle, body: string | Uint8Array, next?: number): void;
  /** True once the client has gone away (the request was aborted). */
  gone(poll: PollHandle): boolean;
  /** True while an answer written to `poll` still waits, in this process, for the client to read it. */
  unread(poll: PollHandle): boolean;
  /** Call `fn` once the answer to `poll` is read (handed to the network whole) or dropped. */
  whenRead(poll: PollHandle, fn: () => void): void;
}

/** What the transport needs from its node. */
export interface PollingHost {
  readonly options: ResolvedOptions;
  /** Shares its store with other nodes: polls of one session may come to several (see superseded()). */
  readonly clustered: boolean;
  readonly reportError: (err: unknown) => void;
  /** The session as this node owns it, or undefined (owned elsewhere). */
  owned(sid: string): Session | undefined;
  /**
   * A poll was taken here: tell the other nodes (they answer theirs), and a
   * WebSocket carrying the session closes. `ws`: the poll's WebSocket count
   * (PollRequest.ws).
   */
  pollTaken(sid: string, ws: number): void;
  /** The poll (its WebSocket count `ws`) was sent before the hello of the WebSocket carrying the session here. */
  pollPredatesWebSocket(sid: string, ws: number): boolean;
  /** Counts held polls whose client went away (server/metrics.ts). */
  readonly metrics?: { pollCut(sid: string, ageMs: number): void };
}

const FLUSHING = 1;
const FLUSH_AGAIN = 2;
const EARLY = 4;
const EXPECT_EARLY = 8;
const WAITS_FOR_READ = 16;
/** Its held poll is to be answered once this turn's commits are in (see #wakeSoon). */
const DUE = 32;

/** What a Hold keeps once it has written a batch or taken an early poll: idle sessions never need it. */
class Streaming {
  /** Where the held poll's batch starts, if it named one (an early poll's `from`). */
  from: number | undefined;
  /** Just past the last batch written: where an early poll starts. */
  nextSeq = 1;
  /** A batch read ahead for the expected early poll. */
  ahead: { seq: number; commits: number; batch: Promise<ReadOutboundResult> } | undefined;
  /** The last batch answer, while the client has not read it all: no second batch is written meanwhile. */
  unread: PollHandle | undefined;
}

/*
 * A session's polling state on this node. An idle server holds one per
 * session (its held poll), so it has few fields: flags are bits of one,
 * times are whole clockMs (small integers, not boxed numbers), and what only
 * a streaming session needs waits in Streaming. Accessors live on the
 * prototype and cost nothing per instance.
 */
class Hold {
  /** The held poll. */
  poll: PollHandle | undefined;
  /** clockMs: when the held poll's hold ends. */
  until = 0;
  /** clockMs when the held poll came (its age when cut, for metrics; on a cluster, supersedes older than it are stale). */
  since = 0;
  flags = 0;
  streaming: Streaming | undefined;

  private flag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }

  /** The held poll is an early one (its `from` is past the client's ack + 1). */
  get early(): boolean {
    return (this.flags & EARLY) !== 0;
  }
  set early(on: boolean) {
    this.flag(EARLY, on);
  }

  /** The last answer carried NEXT_HEADER, and no poll or read-ahead has come since. */
  get expectEarly(): boolean {
    return (this.flags & EXPECT_EARLY) !== 0;
  }
  set expectEarly(on: boolean) {
    this.flag(EXPECT_EARLY, on);
  }

  /** A poll waits for `unread` to be read. */
  get waitsForRead(): boolean {
    return (this.flags & WAITS_FOR_READ) !== 0;
  }
  set waitsForRead(on: boolean) {
    this.flag(WAITS_FOR_READ, on);
  }

  get from(): number | undefined {
    return this.streaming?.from;
  }
  set from(v: number | undefined) {
    if (v !== undefined || this.streaming) (this.streaming ??= new Streaming()).from = v;
  }

  get nextSeq(): number {
    return this.streaming?.nextSeq ?? 1;
  }
  set nextSeq(v: number) {
    (this.streaming ??= new Streaming()).nextSeq = v;
  }

  get ahead(): Streaming['ahead'] {
    return this.streaming?.ahead;
  }
  set ahead(v: Streaming['ahead']) {
    if (v !== undefined || this.streaming) (this.streaming ??= new Streaming()).ahead = v;
  }

  get unread(): PollHandle | undefined {
    return this.streaming?.unread;
  }
  set unread(v: PollHandle | undefined) {
    if (v !== undefined || this.streaming) (this.streaming ??= new Streaming()).unread = v;
  }
}

export class PollingTransport {
  readonly #host: PollingHost;
  readonly #answerer: PollAnswerer;
  readonly #holds = new Map<string, Hold>();
  /** Holds to answer at the end of this event-loop turn (#wakeSoon), and when that is done. */
  #due: string[] = [];
  #dueDone: Promise<void> | undefined;
  /** The flush under way per Hold, while there is one (for settled()): not a field, idle Holds have none. */
  readonly #flushes = new Map<Hold, Promise<void>>();

  constructor(host: PollingHost, answerer: PollAnswerer) {
    this.#host = host;
    this.#answerer = answerer;
  }

  get #store() {
    return this.#host.options.store;
  }

  /** Polls held on this node. */
  get held(): number {
    let n = 0;
    for (const h of this.#holds.values()) if (h.poll) n++;
    return n;
  }

  /** True while this node holds a poll of `sid`. */
  holding(sid: string): boolean {
    return this.#holds.get(sid)?.poll !== undefined;
  }

  /**
   * Take a poll: answer at once if anything is pending (from message `from`
   * on, if given), else hold it (superseding any held one). A poll the
   * client sent before the hello of the WebSocket that carries the session
   * (its count `ws` below that hello's) arrived late: it is answered empty at
   * once and the WebSocket stays (the client reads no answer to it).
   */
  async take(sid: string, session: Session | undefined, handle: PollHandle, holdMs: number, now: number, from?: number, ws = 0): Promise<void> {
    if (this.#host.pollPredatesWebSocket(sid, ws)) {
      this.#answerer.respond(handle, await this.#emptyBatch(sid));
      return;
    }
    let h = this.#holds.get(sid);
    if (!h) this.#holds.set(sid, (h = new Hold()));
    const previous = h.poll;
    if (previous && this.#answerer.gone(previous)) this.#host.metrics?.pollCut(sid, now - h.since);
    h.expectEarly = false;
    h.from = from;
    // An early poll is held briefly: when the stream pauses, its answer is
    // what makes the client send a poll carrying the ack of the last batch.
    const early = from !== undefined && from > (session?.clientAck ?? 0) + 1;
    h.poll = handle;
    h.until = now + (early ? Math.min(holdMs, EARLY_HOLD_MS) : holdMs);
    h.since = now;
    h.early = early;
    // Its own timer, not the ticker's (up to tickMs late): its answer brings the client's next ack.
    if (early) setTimeout(this.#endEarly, EARLY_HOLD_MS, sid, h, handle).unref();
    this.#host.pollTaken(sid, ws);
    const answerer = this.#answerer;
    if (previous && !answerer.gone(previous)) {
      // One poll per session: the newer one wins; the older is answered empty.
      answerer.respond(previous, await this.#emptyBatch(sid));
    }
    let pending: number;
    try {
      pending = await this.#store.pendingOutbound(sid, from);
    } catch (e) {
      return this.#vanished(sid, h, handle, e);
    }
    if (holdMs === 0 || (early && session?.sendWaiting === true)) this.#wake(sid, h, early);
    // An early poll's batch is read ahead: answered at once. Any other finds
    // the stream where the ack it carried left it, and that ack may just have
    // let a waiting sender go on: its sends of this turn go in this answer.
    else if (pending > 0) {
      if (from !== undefined) this.#wake(sid, h, early);
      else this.#wakeSoon(sid, h);
    }
  }

  /**
   * The store no longer holds the session (it closed, here or on another
   * node, while this poll was on its way in): answer the poll with the close
   * frame its tombstone gives, or session_unknown, rather than hold it until
   * the client's deadline. Any other error is the caller's.
   */
  async #vanished(sid: string, h: Hold, poll: PollHandle, e: unknown): Promise<void> {
    if (!(e instanceof HoldlineError) || e.code !== 'session_unknown') throw e;
    if (h.poll === poll) h.poll = undefined;
    this.#forgetIfIdle(sid, h);
    const grave = await this.#store.tombstone(sid);
    const reason = grave?.reason ?? { code: 'session_unknown', message: 'the session is gone' };
    if (!this.#answerer.gone(poll)) this.#answerer.respond(poll, encodeClose(0, reason));
  }

  readonly #endEarly = (sid: string, h: Hold, poll: PollHandle): void => {
    if (h.poll === poll) this.#wake(sid, h, true);
  };

  /**
   * A sender waits for the client's acks. An early poll carries an ack that
   * does not cover the batch before it, so the client's next ack comes with
   * the poll after it: answer a held early poll now (what is pending, or
   * nothing) rather than at the end of its hold.
   */
  ackWanted(sid: string): void {
    const h = this.#holds.get(sid);
    if (h?.poll && h.early) this.#wake(sid, h, true);
  }

  /**
   * Outbound messages were committed (`commits`: the session's count, when
   * it is owned here): answer the held poll, or read ahead for an expected
   * early poll.
   */
  outboundReady(sid: string, commits?: number): void {
    const h = this.#holds.get(sid);
    if (!h) return;
    if (h.poll) return this.#wakeSoon(sid, h);
    // No poll to answer yet, but an early poll is on its way (the last answer
    // carried NEXT_HEADER): read its batch ahead, once, after this turn's
    // sends, while the client is still busy with the last one.
    if (h.expectEarly && commits !== undefined) {
      h.expectEarly = false;
      setImmediate(() => this.#readAhead(sid, h, commits));
    }
  }

  #readAhead(sid: string, h: Hold, commits: number): void {
    // A poll came first (it reads for itself), or the session ended. A read
    // ahead that turns out stale is not used: #readBatch checks it.
    if (h.poll || this.#holds.get(sid) !== h) return;
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    const batch = this.#store.readOutbound(sid, maxBatchBytes, h.nextSeq, maxBatchMessages);
    batch.catch(() => undefined); // read again, and reported, when the poll comes
    h.ahead = { seq: h.nextSeq, commits, batch };
  }

  /**
   * Something else took the session's stream at `at` (Date.now()): a poll on
   * another node, or a WebSocket (here or elsewhere). Answer our held poll,
   * if older, empty.
   */
  superseded(sid: string, at: number): void {
    const h = this.#holds.get(sid);
    const poll = h?.poll;
    if (!poll) return;
    // `at` is on the wall clock (it may come from another process); `since` on ours (kept only on a cluster's node).
    if (this.#host.clustered && h.since > clockMs() - (Date.now() - at)) return;
    h.poll = undefined;
    this.#forgetIfIdle(sid, h);
    if (this.#answerer.gone(poll)) return;
    this.#emptyBatch(sid).then(
      (body) => this.#answerer.respond(poll, body),
      (e: unknown) => {
        this.#host.reportError(e);
        this.#answerer.respond(poll, encodeBatch(0, 0, NO_MESSAGES));
      },
    );
  }

  /** The session ended: its held poll gets the close frame. */
  closed(sid: string, reason: CloseReason): void {
    const h = this.#holds.get(sid);
    if (!h) return;
    this.#holds.delete(sid);
    const poll = h.poll;
    h.poll = undefined;
    if (poll && !this.#answerer.gone(poll)) this.#answerer.respond(poll, encodeClose(0, reason));
  }

  /** Answer every held poll at once with what it has (the node is leaving; the client polls again, elsewhere). */
  release(): void {
    this.#holds.forEach((h, sid) => {
      h.until = 0;
      if (h.poll) this.#wake(sid, h);
    });
  }

  /** The one ticker: ends expired holds with an empty batch (the heartbeat), forgets polls whose client went. */
  tick(now: number, touch: (sid: string) => void): void {
    // forEach: the key without an entry array per session.
    this.#holds.forEach((h, sid) => {
      const poll = h.poll;
      if (!poll) return;
      if (this.#answerer.gone(poll)) {
        this.#host.metrics?.pollCut(sid, now - h.since);
        h.poll = undefined;
        this.#forgetIfIdle(sid, h);
        touch(sid);
      } else if (now >= h.until) {
        this.#wake(sid, h);
      }
    });
  }

  /**
   * Resolves once a poll held here, if any, has been answered with what is
   * committed so far (the send path awaits it before answering a send, so
   * that an application's immediate reply leaves on the poll first).
   */
  async settled(sid: string): Promise<void> {
    const h = this.#holds.get(sid);
    if (!h) return;
    if (h.flags & DUE) await this.#dueDone;
    await this.#flushes.get(h);
  }

  /**
   * Answer the held poll at the end of this event-loop turn (setImmediate),
   * with everything committed by then. A sender that awaits each send()
   * commits message by message, in microtasks of one turn, once an ack makes
   * room: answered at the first commit, the poll would carry one message and
   * the rest would wait for the next poll (measured: answers of 1 message
   * and 1,000 messages in turns, one more round trip per window). One
   * setImmediate serves every poll due in the turn (a broadcast).
   */
  #wakeSoon(sid: string, h: Hold): void {
    if (h.flags & DUE) return;
    h.flags |= DUE;
    this.#due.push(sid);
    if (this.#due.length > 1) return;
    this.#dueDone = new Promise<void>((resolve) => {
      setImmediate(() => {
        const due = this.#due;
        this.#due = [];
        this.#dueDone = undefined;
        for (const dueSid of due) {
          const d = this.#holds.get(dueSid);
          if (d === undefined || !(d.flags & DUE)) continue;
          d.flags &= ~DUE;
          // Answered meanwhile (superseded, the session closed): nothing to wake, maybe nothing to keep.
          if (d.poll) this.#wake(dueSid, d);
          else this.#forgetIfIdle(dueSid, d);
        }
        resolve();
      });
    });
  }

  async #emptyBatch(sid: string): Promise<string> {
    // Read from past the end: nothing to encode, only the inbound ack is wanted.
    const r = await this.#store.readOutbound(sid, 0, Number.MAX_SAFE_INTEGER);
    return encodeBatch(r.inboundAck, r.seq, NO_MESSAGES);
  }

  /** Answer the held poll with whatever is pending (one flush at a time); `now`: even if that is nothing. */
  #wake(sid: string, h: Hold, now = false): void {
    if (!h.poll) return;
    if (now) h.until = 0;
    if (h.flags & FLUSHING) {
      h.flags |= FLUSH_AGAIN;
      return;
    }
    h.flags |= FLUSHING;
    const flushing: Promise<void> = this.#flush(sid, h)
      .catch((e: unknown) => this.#host.reportError(e))
      .finally(() => {
        h.flags &= ~FLUSHING;
        if (this.#flushes.get(h) === flushing) this.#flushes.delete(h);
        if (h.flags & FLUSH_AGAIN) {
          h.flags &= ~FLUSH_AGAIN;
          this.#wake(sid, h);
        } else {
          this.#forgetIfIdle(sid, h);
        }
      });
    this.#flushes.set(h, flushing);
  }

  /** The client has read the answer to `poll` (or it was dropped): a poll waiting for that may be answered. */
  #read(sid: string, h: Hold, poll: PollHandle): void {
    if (h.unread !== poll) return;
    h.unread = undefined;
    if (h.waitsForRead) {
      h.waitsForRead = false;
      this.#wake(sid, h);
    } else {
      this.#forgetIfIdle(sid, h);
    }
  }

  /** Drop a Hold that holds nothing (an idle server keeps one only per held poll). */
  #forgetIfIdle(sid: string, h: Hold): void {
    if (!h.poll && !h.expectEarly && !(h.flags & DUE) && h.unread === undefined && !this.#flushes.has(h) && this.#holds.get(sid) === h) {
      this.#holds.delete(sid);
    }
  }

  /** The batch for the held poll: the one read ahead if it is still what the poll asks for, else read now. */
  #readBatch(sid: string, h: Hold, session: Session | undefined): Promise<ReadOutboundResult> {
    const ahead = h.ahead;
    if (ahead) {
      h.ahead = undefined;
      if (session) {
        const start = Math.max(h.from ?? 0, session.clientAck + 1);
        if (ahead.seq === start && ahead.commits === session.commits) return ahead.batch;
      }
    }
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    return this.#store.readOutbound(sid, maxBatchBytes, h.from, maxBatchMessages);
  }

  async #flush(sid: string, h: Hold): Promise<void> {
    const poll = h.poll;
    if (!poll) return;
    const session = this.#host.owned(sid);
    // Slow reader: one batch answer at most waits unread per session. The
    // held poll waits for it (woken when it is read), or at the end of its
    // hold is answered empty: a client that does not read cannot make the
    // server hold more and more answers for it.
    const answerer = this.#answerer;
    if (h.unread !== undefined) {
      if (clockMs() < h.until) {
        h.waitsForRead = true;
        return;
      }
      h.poll = undefined;
      if (!answerer.gone(poll)) answerer.respond(poll, await this.#emptyBatch(sid));
      return;
    }
    let batch: ReadOutboundResult;
    try {
      batch = await this.#readBatch(sid, h, session);
    } catch (e) {
      return this.#vanished(sid, h, poll, e);
    }
    if (h.poll !== poll) return;
    if (batch.count === 0 && clockMs() < h.until) return;
    h.poll = undefined;
    session?.touch(clockMs());
    if (answerer.gone(poll)) return;
    // No early poll while the application waits for acks to send more: it
    // would carry an ack short of this batch and get an empty answer. The
    // client's poll after this body, with the ack, is what brings more.
    const next = batch.wireBytes >= EARLY_POLL_BYTES && session?.sendWaiting !== true ? batch.seq + batch.count : undefined;
    answerer.respond(poll, batchBody(batch), next);
    if (batch.count === 0) return;
    if (answerer.unread(poll)) {
      h.unread = poll;
      answerer.whenRead(poll, () => this.#read(sid, h, poll));
    }
    h.nextSeq = batch.seq + batch.count;
    h.expectEarly = next !== undefined;
    session?.written(batch.seq + batch.count - 1);
  }
}
