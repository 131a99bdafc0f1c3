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
 *
 * Answering a held poll (waking it now or at the end of the turn, reading
 * its batch, one unread answer per session) is server/poll-flush.ts; this
 * file takes polls and decides when they are to be answered.
 */
import { EARLY_HOLD_MS, encodeBatch, encodeClose, NO_MESSAGES, type CloseReason } from '../shared/index.js';
import { clockMs } from './clock.js';
import type { AckOutcome, AckRead } from './ack-outcome.js';
import { PollFlusher } from './poll-flush.js';
import { ACKING, alreadyRead, FLUSHING, Hold, READING_AHEAD, WOKEN_ACKING } from './poll-hold.js';
import { Holds } from './poll-holds.js';
import type { PollAnswerer, PollAsk, PollHandle, PollingHost } from './polling-host.js';
import type { Session } from './session.js';
import type { BatchAsk, ReadOutboundResult } from './store.js';

export class PollingTransport {
  readonly #host: PollingHost;
  readonly #answerer: PollAnswerer;
  readonly #holds: Holds;
  /** Answers the held polls (server/poll-flush.ts): wakes, flushes, forgets idle Holds. */
  readonly #flusher: PollFlusher;
  /** Sessions owned here whose WebSocket said hello on another node: the highest such hello's count (helloElsewhere). */
  readonly #hellos = new Map<string, number>();

  constructor(host: PollingHost, answerer: PollAnswerer) {
    this.#host = host;
    this.#answerer = answerer;
    this.#holds = new Holds(host);
    this.#flusher = new PollFlusher(host, answerer, this.#holds);
  }

  get #store() {
    return this.#host.options.store;
  }

  /** Polls held on this node. */
  get held(): number {
    let n = 0;
    this.#holds.forEach((h) => {
      if (h.poll) n++;
    });
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
   * (its count `ws` below that hello's, here or, for a session owned here,
   * on another node) arrived late: it is answered empty at once and the
   * WebSocket stays (the client reads no answer to it).
   */
  async take(sid: string, session: Session | undefined, handle: PollHandle, holdMs: number, now: number, poll: PollAsk = {}): Promise<boolean> {
    const { from, ws = 0, ack = 0, applyAck } = poll;
    if (this.#host.pollPredatesWebSocket(sid, ws) || ws < (this.#hellos.get(sid) ?? 0)) {
      if (applyAck && (await applyAck()) === false) return false;
      this.#answerer.respond(handle, await this.#flusher.emptyBatch(sid));
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
    // answer says what is pending (and, where it can, reads the batch), and
    // whatever commits after it wakes this poll. Until it is in, the poll is
    // not answered (it may be refused).
    // The read is asked only of a store that can make it with the ack (no object per poll otherwise).
    const acking = applyAck?.(this.#store.ackAndRead === undefined ? undefined : this.#batchAsk(from));
    // The flags are the held poll's: a poll before it that is still acking no
    // longer counts, and a batch read ahead is this poll's to use or not.
    h.flags &= ~(ACKING | WOKEN_ACKING | READING_AHEAD);
    if (acking) h.flags |= ACKING;
    if (previous && !answerer.gone(previous)) {
      // One poll per session: the newer one wins; the older is answered empty.
      answerer.respond(previous, await this.#flusher.emptyBatch(sid));
    }
    let pending: number | undefined;
    if (acking) {
      let outcome: AckOutcome | AckRead;
      try {
        outcome = await acking;
      } catch (e) {
        // The endpoint answers it (the session may have gone), unless that was done meanwhile.
        const mine = this.#acked(sid, h, handle, false);
        if (mine) throw e;
        return true;
      }
      if (outcome === false) return !this.#acked(sid, h, handle, false);
      if (typeof outcome === 'object') {
        // Read with the ack: the flush answers with it unless the session committed more since.
        if (h.poll === handle) h.ahead = alreadyRead(outcome.batch, outcome.commits);
        pending = outcome.pending;
      } else {
        pending = outcome;
      }
      if (!this.#acked(sid, h, handle, true)) return true;
    }
    if (pending === undefined) {
      try {
        pending = await this.#store.pendingOutbound(sid, from);
      } catch (e) {
        await this.#flusher.vanished(sid, h, handle, e);
        return true;
      }
    }
    if (holdMs === 0 || (early && session?.awaitsAcks === true)) this.#flusher.wake(sid, h, early);
    // An early poll's batch is read ahead: answered at once. Any other finds
    // the stream where the ack it carried left it, and that ack may just have
    // let a waiting sender go on: its sends of this turn go in this answer.
    else if (pending > 0) {
      if (from !== undefined) this.#flusher.wake(sid, h, early);
      else this.#flusher.wakeSoon(sid, h);
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
      this.#flusher.forgetIfIdle(sid, h);
    } else if (woken) {
      this.#flusher.wake(sid, h);
    }
    return true;
  }

  readonly #endEarly = (sid: string, h: Hold, poll: PollHandle): void => {
    if (h.poll === poll) this.#flusher.wake(sid, h, true);
  };

  /**
   * The application waits for the client's acks (a send() waiting for room,
   * or a 'drain' listener: Session.awaitsAcks). An early poll carries an ack that
   * does not cover the batch before it, so the client's next ack comes with
   * the poll after it: answer a held early poll now (what is pending, or
   * nothing) rather than at the end of its hold.
   */
  ackWanted(sid: string): void {
    const h = this.#holds.get(sid);
    if (h?.poll && h.early) this.#flusher.wake(sid, h, true);
  }

  /**
   * Outbound messages were committed (`commits`: the session's count, when
   * it is owned here): answer the held poll, or read ahead for an expected
   * early poll.
   */
  outboundReady(sid: string, commits?: number, batch?: ReadOutboundResult): void {
    const h = this.#holds.get(sid);
    if (!h) return;
    // The held poll's batch, read with the commit (heldRead()): the flush uses it if nothing changed since (poll-flush.ts).
    if (batch !== undefined && commits !== undefined && h.poll) h.ahead = alreadyRead(batch, commits);
    // Another node's messages: a batch read ahead of them would lack them.
    else if (commits === undefined) h.ahead = undefined;
    if (h.poll) return this.#flusher.wakeSoon(sid, h);
    // No poll to answer yet, but an early poll is on its way (the last answer
    // carried NEXT_HEADER): read its batch ahead, once, after this turn's
    // sends, while the client is still busy with the last one.
    // The flag keeps the Hold (nothing else may hold it now), with what it
    // reads, until the next poll comes (take() clears it).
    if (h.expectEarly && commits !== undefined) {
      h.expectEarly = false;
      h.flags |= READING_AHEAD;
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
    return this.#batchAsk(h.from);
  }

  /** The batch a held poll starting at `from` is answered with, as the store reads it. */
  #batchAsk(from: number | undefined): BatchAsk {
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    return { maxWireBytes: maxBatchBytes, from, maxCount: maxBatchMessages };
  }

  #readAhead(sid: string, h: Hold, commits: number): void {
    // A poll came first (it reads for itself), or the session ended. A read
    // ahead that turns out stale is not used: the flush checks it (poll-flush.ts).
    if (h.poll || this.#holds.get(sid) !== h) {
      h.flags &= ~READING_AHEAD;
      return;
    }
    const { maxBatchBytes, maxBatchMessages } = this.#host.options;
    const batch = this.#store.readOutbound(sid, maxBatchBytes, h.nextSeq, maxBatchMessages);
    batch.catch(() => undefined); // read again, and reported, when the poll comes
    // Read after the turn's commits: fresh as of the last one (a turn's first send is committed on its own, the rest after it).
    h.ahead = { seq: h.nextSeq, commits: this.#host.owned(sid)?.commits ?? commits, batch };
  }

  /**
   * Something else took the session's stream at `at` (Date.now()): a poll on
   * another node, or a WebSocket (here or elsewhere). Answer our held poll,
   * if older, empty.
   */
  superseded(sid: string, at: number): void {
    const h = this.#holds.get(sid);
    // `at` is on the wall clock (it may come from another process); `since` on ours (kept only on a cluster's node).
    if (!h?.poll || (this.#host.clustered && h.since > clockMs() - (Date.now() - at))) return;
    this.#answerEmpty(sid, h);
  }

  /**
   * A WebSocket on another node took the session with its hello, counted
   * `hello` by the client. A poll the client sent before that hello may
   * reach this node after it, and a poll held here is where the owner's
   * commits go (it wakes no other node then: session-registry.ts,
   * outboundReady), so the WebSocket would wait for them. So: a poll held
   * here is answered empty, whatever its age (to one the client sent after
   * the hello, its WebSocket having failed, it polls again); and a session
   * owned here keeps the count, so that a poll counted below it, when it
   * comes, is answered empty at once and never held (take()).
   */
  helloElsewhere(sid: string, hello: number): void {
    if (this.#host.owned(sid) !== undefined && hello > (this.#hellos.get(sid) ?? 0)) this.#hellos.set(sid, hello);
    const h = this.#holds.get(sid);
    if (h?.poll) this.#answerEmpty(sid, h);
  }

  /** Answer the poll `h` holds with an empty batch (it was superseded). */
  #answerEmpty(sid: string, h: Hold): void {
    const poll = h.poll;
    if (!poll) return;
    h.poll = undefined;
    this.#flusher.forgetIfIdle(sid, h);
    if (this.#answerer.gone(poll)) return;
    this.#flusher.emptyBatch(sid).then(
      (body) => this.#answerer.respond(poll, body),
      (e: unknown) => {
        this.#host.reportError(e);
        this.#answerer.respond(poll, encodeBatch(0, 0, NO_MESSAGES));
      },
    );
  }

  /** `session` is now this node's (opened here, or taken over). */
  own(session: Session): void {
    this.#holds.own(session);
  }

  /**
   * `session` stops being this node's (it ended, or is handed over): what is
   * held for it stays, but not a batch read ahead by it as owner (the flush
   * uses one only for an owned session) nor the Hold kept only for that.
   */
  disown(session: Session): void {
    this.#hellos.delete(session.id);
    const h = this.#holds.get(session.id);
    this.#holds.disown(session);
    if (h === undefined || !(h.flags & READING_AHEAD)) return;
    h.flags &= ~READING_AHEAD;
    h.ahead = undefined;
    this.#flusher.forgetIfIdle(session.id, h);
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
      if (h.poll) this.#flusher.wake(sid, h);
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
        this.#flusher.forgetIfIdle(sid, h);
        touch(sid);
      } else if (now >= h.until) {
        this.#flusher.wake(sid, h);
      }
    });
  }

  /** Answer the held poll of `sid` now, if due, with what the listeners of a delivery sent (PollFlusher.answerNow). */
  answerNow(sid: string): void {
    this.#flusher.answerNow(sid);
  }

  /**
   * Resolves once a poll held here, if any, has been answered with what is
   * committed so far (the send path awaits it before answering a send, so
   * that an application's immediate reply leaves on the poll first).
   */
  settled(sid: string): Promise<void> {
    return this.#flusher.settled(sid);
  }
}
