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
import type { AckOutcome } from './ack-outcome.js';
import { ACKING, DUE, FLUSH_AGAIN, FLUSHING, Hold, WOKEN_ACKING } from './poll-hold.js';
import type { PollAnswerer, PollAsk, PollHandle, PollingHost } from './polling-host.js';
import type { Session } from './session.js';
import type { BatchAsk, ReadOutboundResult } from './store.js';

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
  async take(sid: string, session: Session | undefined, handle: PollHandle, holdMs: number, now: number, poll: PollAsk = {}): Promise<boolean> {
    const { from, ws = 0, ack = 0, applyAck } = poll;
    if (this.#host.pollPredatesWebSocket(sid, ws)) {
      if (applyAck && (await applyAck()) === false) return false;
      this.#answerer.respond(handle, await this.#emptyBatch(sid));
      return true;
    }
    let h = this.#holds.get(sid);
    if (!h) this.#holds.set(sid, (h = new Hold()));
    const previous = h.poll;
    if (previous && this.#answerer.gone(previous)) this.#host.metrics?.pollCut(sid, now - h.since);
    h.expectEarly = false;
    h.from = from;
    // An early poll is held briefly: when the stream pauses, its answer is
    // what makes the client send a poll carrying the ack of the last batch.
    const early = from !== undefined && from > Math.max(session?.clientAck ?? 0, ack) + 1;
    h.poll = handle;
    h.until = now + (early ? Math.min(holdMs, EARLY_HOLD_MS) : holdMs);
    h.since = now;
    h.early = early;
    // Its own timer, not the ticker's (up to tickMs late): its answer brings the client's next ack.
    if (early) setTimeout(this.#endEarly, EARLY_HOLD_MS, sid, h, handle).unref();
    this.#host.pollTaken(sid, ws);
    const answerer = this.#answerer;
    // The poll's ack is applied now that the poll is held: the store's
    // answer says what is pending, and whatever commits after it wakes this
    // poll. Until it is in, the poll is not answered (it may be refused).
    const acking = applyAck?.();
    // The flags are the held poll's: a poll before it that is still acking no longer counts.
    h.flags &= ~(ACKING | WOKEN_ACKING);
    if (acking) h.flags |= ACKING;
    if (previous && !answerer.gone(previous)) {
      // One poll per session: the newer one wins; the older is answered empty.
      answerer.respond(previous, await this.#emptyBatch(sid));
    }
    let pending: number | undefined;
    if (acking) {
      let outcome: AckOutcome;
      try {
        outcome = await acking;
      } catch (e) {
        // The endpoint answers it (the session may have gone), unless that was done meanwhile.
        const mine = this.#acked(sid, h, handle, false);
        if (mine) throw e;
        return true;
      }
      if (outcome === false) return !this.#acked(sid, h, handle, false);
      if (!this.#acked(sid, h, handle, true)) return true;
      pending = outcome;
    }
    if (pending === undefined) {
      try {
        pending = await this.#store.pendingOutbound(sid, from);
      } catch (e) {
        await this.#vanished(sid, h, handle, e);
        return true;
      }
    }
    if (holdMs === 0 || (early && session?.sendWaiting === true)) this.#wake(sid, h, early);
    // An early poll's batch is read ahead: answered at once. Any other finds
    // the stream where the ack it carried left it, and that ack may just have
    // let a waiting sender go on: its sends of this turn go in this answer.
    else if (pending > 0) {
      if (from !== undefined) this.#wake(sid, h, early);
      else this.#wakeSoon(sid, h);
    }
    return true;
  }

  /**
   * The held poll's ack is in. `ok`: applied; else refused or failed, and
   * the poll, still held, is let go for the endpoint to answer. True while
   * `poll` is still the one held; a wake that came while the ack was in
   * flight then runs.
   */
  #acked(sid: string, h: Hold, poll: PollHandle, ok: boolean): boolean {
    // Answered meanwhile (superseded, closed): the flags, if set, are a later poll's.
    if (h.poll !== poll) return false;
    const woken = (h.flags & WOKEN_ACKING) !== 0;
    h.flags &= ~(ACKING | WOKEN_ACKING);
    if (!ok) {
      h.poll = undefined;
      this.#forgetIfIdle(sid, h);
    } else if (woken) {
      this.#wake(sid, h);
    }
    return true;
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
  outboundReady(sid: string, commits?: number, batch?: ReadOutboundResult): void {
    const h = this.#holds.get(sid);
    if (!h) return;
    // The held poll's batch, read with the commit (heldRead()): #readBatch uses it if nothing changed since.
    if (batch !== undefined && commits !== undefined && h.poll) h.ahead = { seq: batch.seq, commits, batch: Promise.resolve(batch) };
    // Another node's messages: a batch read ahead of them would lack them.
    else if (commits === undefined) h.ahead = undefined;
    if (h.poll) return this.#wakeSoon(sid, h);
    // No poll to answer yet, but an early poll is on its way (the last answer
    // carried NEXT_HEADER): read its batch ahead, once, after this turn's
    // sends, while the client is still busy with the last one.
    if (h.expectEarly && commits !== undefined) {
      h.expectEarly = false;
      setImmediate(() => this.#readAhead(sid, h, commits));
    }
  }

  /**
   * What the owner's next commit should read with it (Store.enqueueAndRead):
   * the batch of the poll held here, if one is and could be answered now.
   */
  heldRead(sid: string): BatchAsk | undefined {
    const h = this.#holds.get(sid);
    if (!h?.poll || h.flags & (ACKING | FLUSHING) || h.unread !== undefined) return undefined;
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    return { maxWireBytes: maxBatchBytes, from: h.from, maxCount: maxBatchMessages };
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
