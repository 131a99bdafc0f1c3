/**
 * How the long-polling transport (server/polling.ts) answers a held poll:
 * woken at once, as a delivery returns (answerNow) or once the turn's
 * microtasks are done, one flush at a time per session, with the batch read
 * ahead for it or read now, and at most one unread answer per session (a
 * slow reader's next answer waits for it). Also
 * the answers that carry no batch: empty (superseded, the end of a hold) and
 * the close frame of a session the store no longer holds.
 *
 * One per transport, sharing its Holds (not an object per session): it
 * drops a Hold once it holds nothing (#forgetIfIdle), and keeps what only a
 * flush under way needs (the flush's promise, the turn's due holds) in maps
 * and arrays of its own, never as fields of Hold.
 */
import { HoldlineError, EARLY_POLL_BYTES, encodeBatch, encodeClose, NO_MESSAGES } from '../shared/index.js';
import { batchBody } from './batch-body.js';
import { clockMs } from './clock.js';
import { ACKING, DUE, FLUSH_AGAIN, FLUSHING, READING_AHEAD, WOKEN_ACKING, type Hold } from './poll-hold.js';
import type { Holds } from './poll-holds.js';
import type { PollAnswerer, PollHandle, PollingHost } from './polling-host.js';
import type { Session } from './session.js';
import type { ReadOutboundResult } from './store.js';

export class PollFlusher {
  readonly #host: PollingHost;
  readonly #answerer: PollAnswerer;
  /** The transport's Holds, by sid. */
  readonly #holds: Holds;
  /** Holds to answer at the end of this event-loop turn (wakeSoon), and when that is done. */
  #due: string[] = [];
  #dueDone: Promise<void> | undefined;
  /** The flush under way per Hold, while there is one (for settled()): not a field, idle Holds have none. */
  readonly #flushes = new Map<Hold, Promise<void>>();

  constructor(host: PollingHost, answerer: PollAnswerer, holds: Holds) {
    this.#host = host;
    this.#answerer = answerer;
    this.#holds = holds;
  }

  get #store() {
    return this.#host.options.store;
  }

  /** Resolves once the poll held for `sid`, if any, has been answered with what is committed so far (PollingTransport.settled). */
  async settled(sid: string): Promise<void> {
    const h = this.#holds.get(sid);
    if (!h) return;
    if (h.flags & DUE) await this.#dueDone;
    await this.#flushes.get(h);
  }

  /**
   * Answer the held poll once this turn's microtasks are done, with
   * everything committed by then. A sender that awaits each send() commits
   * message by message, in microtasks of one turn, once an ack makes room:
   * answered at the first commit, the poll would carry one message and the
   * rest would wait for the next poll (measured: answers of 1 message and
   * 1,000 messages in turns, one more round trip per window). Commits run
   * in microtasks (after an await), and a process.nextTick queued from a
   * microtask runs only once the microtask queue is empty: the end of the
   * turn's work, without waiting for the rest of the loop's phase as a
   * setImmediate would (10-15 us less from the commit to the answer, on a
   * 2-core VM, bench/README.md). One tick serves every poll due in the turn
   * (a broadcast). The tick is queued from a microtask: a commit at once
   * (the turn's first send, session-send.ts) runs outside them, and a tick
   * queued there would run before the turn's other commits.
   */
  wakeSoon(sid: string, h: Hold): void {
    if (h.flags & DUE) return;
    h.flags |= DUE;
    this.#due.push(sid);
    if (this.#due.length > 1) return;
    this.#dueDone = new Promise<void>((resolve) => {
      queueMicrotask(() => process.nextTick(() => {
        const due = this.#due;
        this.#due = [];
        this.#dueDone = undefined;
        for (const dueSid of due) {
          const d = this.#holds.get(dueSid);
          if (d === undefined || !(d.flags & DUE)) continue;
          d.flags &= ~DUE;
          // Answered meanwhile (superseded, the session closed): nothing to wake, maybe nothing to keep.
          if (d.poll) this.wake(dueSid, d);
          else this.forgetIfIdle(dueSid, d);
        }
        resolve();
      }));
    });
  }

  /**
   * Answer the held poll of `sid` now, not at the end of the turn, when it
   * is due with what the listeners of a delivery sent, and they are done
   * (SessionRegistry.deliver()): the application's immediate reply (an
   * echo) leaves without waiting for the rest of the turn's work. Only with
   * a store that reads at once (readOutboundNow), and when the session's
   * sends of the turn are all committed: one still to commit (a listener
   * that sent twice) keeps the turn's sends in one answer, at the end of
   * the turn, as does an async listener (it may send more in the turn).
   * Other sessions' polls are left to the end of the turn: a sender of
   * theirs that awaits each send() may be between two.
   */
  answerNow(sid: string): void {
    const store = this.#store;
    const h = this.#holds.get(sid);
    const poll = h?.poll;
    if (h === undefined || poll === undefined || !(h.flags & DUE) || h.flags & (ACKING | FLUSHING) || h.unread !== undefined || store.readOutboundNow === undefined) return;
    const session = this.#host.owned(sid);
    if (session === undefined || session.uncommitted) return;
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    let batch: ReadOutboundResult;
    try {
      batch = store.readOutboundNow(sid, maxBatchBytes, h.from, maxBatchMessages);
    } catch {
      return; // the end of the turn reads it again, and answers whatever that finds
    }
    if (batch.count === 0) return;
    h.flags &= ~DUE;
    h.ahead = undefined;
    this.#answer(sid, h, poll, session, batch);
    this.forgetIfIdle(sid, h);
  }

  /** Answer the held poll with whatever is pending (one flush at a time); `now`: even if that is nothing. */
  wake(sid: string, h: Hold, now = false): void {
    if (!h.poll) return;
    if (now) h.until = 0;
    if (h.flags & ACKING) {
      h.flags |= WOKEN_ACKING;
      return;
    }
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
          this.wake(sid, h);
        } else {
          this.forgetIfIdle(sid, h);
        }
      });
    this.#flushes.set(h, flushing);
  }

  /** An empty batch for `sid`, with its inbound ack: the answer to a superseded poll or a hold that ended. */
  async emptyBatch(sid: string): Promise<string> {
    // Read from past the end: nothing to encode, only the inbound ack is wanted.
    const r = await this.#store.readOutbound(sid, 0, Number.MAX_SAFE_INTEGER);
    return encodeBatch(r.inboundAck, r.seq, NO_MESSAGES);
  }

  /**
   * The store no longer holds the session (it closed, here or on another
   * node, while this poll was on its way in): answer the poll with the close
   * frame its tombstone gives, or session_unknown, rather than hold it until
   * the client's deadline. Any other error is the caller's.
   */
  async vanished(sid: string, h: Hold, poll: PollHandle, e: unknown): Promise<void> {
    if (!(e instanceof HoldlineError) || e.code !== 'session_unknown') throw e;
    if (h.poll === poll) h.poll = undefined;
    this.forgetIfIdle(sid, h);
    const grave = await this.#store.tombstone(sid);
    const reason = grave?.reason ?? { code: 'session_unknown', message: 'the session is gone' };
    if (!this.#answerer.gone(poll)) this.#answerer.respond(poll, encodeClose(0, reason));
  }

  /**
   * Drop a Hold that holds nothing (an idle server keeps one only per held
   * poll). A batch read ahead, or to be read, for the expected early poll is
   * something: that poll is on its way (its arrival clears the flag).
   */
  forgetIfIdle(sid: string, h: Hold): void {
    if (!h.poll && !h.expectEarly && !(h.flags & (DUE | READING_AHEAD)) && h.unread === undefined && !this.#flushes.has(h) && this.#holds.get(sid) === h) {
      this.#holds.delete(sid);
    }
  }

  /** The client has read the answer to `poll` (or it was dropped): a poll waiting for that may be answered. */
  #read(sid: string, h: Hold, poll: PollHandle): void {
    if (h.unread !== poll) return;
    h.unread = undefined;
    if (h.waitsForRead) {
      h.waitsForRead = false;
      this.wake(sid, h);
    } else {
      this.forgetIfIdle(sid, h);
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
      if (!answerer.gone(poll)) answerer.respond(poll, await this.emptyBatch(sid));
      return;
    }
    let batch: ReadOutboundResult;
    try {
      batch = await this.#readBatch(sid, h, session);
    } catch (e) {
      if (e instanceof HoldlineError && e.code === 'session_unknown') return this.vanished(sid, h, poll, e);
      return this.#unreadable(sid, h, poll, e);
    }
    if (h.poll !== poll) return;
    if (batch.count === 0 && clockMs() < h.until) return;
    this.#answer(sid, h, poll, session, batch);
  }

  /**
   * The store failed to give the held poll its batch (unreachable, or its
   * calls failing): at the end of its hold (or at once, when the node is
   * leaving or fenced), answer it empty, with no ack of the store's (0,
   * below any the client knows, so it is ignored), rather than hold it
   * until the client's deadline. The client polls again, perhaps through
   * another node; a read that keeps failing costs one poll per hold, not a
   * loop of polls answered at once.
   */
  #unreadable(sid: string, h: Hold, poll: PollHandle, e: unknown): void {
    this.#host.reportError(e);
    if (h.poll !== poll || clockMs() < h.until) return;
    h.poll = undefined;
    this.forgetIfIdle(sid, h);
    if (!this.#answerer.gone(poll)) this.#answerer.respond(poll, encodeBatch(0, 0, NO_MESSAGES));
  }

  /** Answer the held `poll` with `batch` (empty: its hold is over). */
  #answer(sid: string, h: Hold, poll: PollHandle, session: Session | undefined, batch: ReadOutboundResult): void {
    h.poll = undefined;
    session?.touch(clockMs());
    const answerer = this.#answerer;
    if (answerer.gone(poll)) return;
    // No early poll while the application waits for acks to send more (a
    // send() waiting for room, or a 'drain' listener): it
    // would carry an ack short of this batch and get an empty answer. The
    // client's poll after this body, with the ack, is what brings more.
    const next = batch.wireBytes >= EARLY_POLL_BYTES && session?.awaitsAcks !== true ? batch.seq + batch.count : undefined;
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
