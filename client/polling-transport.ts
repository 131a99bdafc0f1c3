/**
 * The polling transport: a long poll always outstanding for server-to-client
 * messages, and batched POSTs (one in flight) for client-to-server messages.
 * It moves batches for the session machine (see transport.ts) and knows
 * nothing of the stream's state beyond what the host tells it.
 *
 * - Hold: each poll asks the server to hold it for the hold advisor's time,
 *   which learns from polls cut at some age (a proxy's read timeout).
 * - Early polls: an answer whose head carries NEXT_HEADER starts the next poll
 *   before its body is read (PROTOCOL.md, "Early poll").
 * - Deadlines: a poll gets its hold plus pollGraceMs, a send requestTimeoutMs.
 * - Silent deaths: a poll whose answer never comes (a NAT forgot its
 *   mapping) is found at its deadline, or sooner: a send's answer says how
 *   far the server wrote its outbound stream (WRITTEN_HEADER), and when the
 *   poll brought less and still has no answer a moment later, it is replaced
 *   at once. Either way the hold advisor learns (see hold-advisor.ts).
 * - Sends: one request in flight; what is queued meanwhile rides in the next.
 *   A 413 from the path halves the body size sent from then on; a message
 *   refused alone for its size is dropped (the host reports it).
 * - After a failed poll (the state is `reconnecting`), the replacement asks
 *   for no hold: the server answers it at once, and that answer is what
 *   tells the machine the server is reachable again (a held poll would say
 *   so only when its hold ends, up to pollTimeoutMs later). The poll after
 *   it is held as usual. One lane, one request at a time, no wire change.
 * - Pacing: answers that come long before their hold ends and bring nothing
 *   new (a hole, a replay, an empty batch) are what a broken or hostile
 *   server would send in a loop; from the third in a row, the next poll
 *   waits a back-off delay (reconnect.minDelayMs doubling to maxDelayMs).
 * - Stopping: stop() ends the poll loop and the send loop without ending the
 *   session (the session moves to a WebSocket, see transport-switcher.ts):
 *   no poll or send goes out after it; the answers of requests already on
 *   their way are dropped unread (nothing in them is acknowledged, so it
 *   comes again on the other transport). start() carries the session again.
 */
import {
  decodePollResponse,
  decodeSendResponse,
  encodeBatch,
  ENVELOPE_OVERHEAD,
  MIN_HOLD_MS,
  NEXT_HEADER,
  PATHS,
  WRITTEN_HEADER,
} from '../shared/index.js';
import { Backoff } from './backoff.js';
import { HoldAdvisor } from './hold-advisor.js';
import { notePollCut, noteSilentDeath } from './client-metrics.js';
import { delay } from './pacing.js';
import { reactionOf } from '../shared/reaction.js';
import type { HttpExchange } from './http-exchange.js';
import { PendingPoll } from './pending-poll.js';
import type { HeadListener, ResponseHead } from './platform.js';
import type { LiveSession, Transport, TransportHost } from './transport.js';

export interface PollingOptions {
  /** Hold to ask for, capped by the server's pollTimeoutMs; undefined: the server's. */
  readonly holdMs: number | undefined;
  /** A poll gets its hold plus this before it is abandoned and replaced. */
  readonly pollGraceMs: number;
  /** Deadline of a send request. */
  readonly requestTimeoutMs: number;
  /** Back-off between polls when answers keep coming early with nothing new (see the top of this file). */
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
}

/** Early answers with nothing new in a row before the poll loop starts to wait between polls. */
const IDLE_ANSWERS_BEFORE_PACING = 3;

/** Batches up to this many messages are handed to the application before the next poll goes out. */
const SMALL_BATCH = 8;

const RESOLVED: Promise<void> = Promise.resolve();

/** A poll deadline that fires this much later than due ran on a frozen or throttled page's timers. */
const LATE_TIMER_MS = 2_000;

/** Waited for after a send's answer shows the poll should have brought more, before the poll is taken for dead. */
const MIN_SILENCE_MS = 50;
const MAX_SILENCE_MS = 1_000;

/** Reads WRITTEN_HEADER off a send's answer (one send in flight: one object per transport). */
class SendHead implements HeadListener {
  written = 0;

  onHead(head: ResponseHead): boolean {
    const n = Number(head.header(WRITTEN_HEADER));
    this.written = Number.isSafeInteger(n) && n > 0 ? n : 0;
    return false;
  }
}

export class PollingTransport implements Transport {
  readonly name = 'polling';
  readonly #host: TransportHost;
  readonly #exchange: HttpExchange;
  readonly #options: PollingOptions;
  /** Made at the first start(); what it learned carries over to later sessions. */
  #advisor: HoldAdvisor | undefined;
  /** The poll the poll loop is waiting for: the only one whose headers may start an early poll. */
  #awaitedPoll: PendingPoll | undefined;
  /** The flush loop runs: it sends until nothing is pending, so a flush() meanwhile needs no more. */
  #flushing = false;
  /** Called once the flush loop ends (idle() waits for it). */
  #flushEnded: (() => void) | undefined;
  /** Largest send body to try: lowered when a 413 shows a proxy allows less than the server. */
  #sendBodyLimit = Infinity;
  /** Early answers with nothing new, in a row, and the back-off between polls they bring on. */
  #idleAnswers = 0;
  readonly #pace: Backoff;
  readonly #crashed: (e: unknown) => void;
  /** Carrying the session: false after stop(), until the next start(). */
  #active = false;
  /** The running poll loop's token: a loop goes on only while it is this one. */
  #run: object | undefined;
  readonly #sendHead = new SendHead();

  constructor(host: TransportHost, exchange: HttpExchange, options: PollingOptions) {
    this.#host = host;
    this.#exchange = exchange;
    this.#options = options;
    this.#pace = new Backoff(options.minDelayMs, options.maxDelayMs);
    this.#crashed = (e) => host.crashed(e);
  }

  start(session: LiveSession): void {
    const { pollTimeoutMs } = session.limits;
    const configured = Math.min(this.#options.holdMs ?? pollTimeoutMs, pollTimeoutMs);
    let advisor = this.#advisor;
    if (advisor) advisor.reconfigure(configured);
    else advisor = this.#advisor = new HoldAdvisor(configured);
    this.#host.stats.holdMs = advisor.holdMs;
    this.#active = true;
    const run = (this.#run = {});
    this.#pollLoop(session, advisor, run).catch(this.#crashed);
    if (this.#host.outboundPending > 0) this.flush();
  }

  /** Send no more polls or sends (the session goes on elsewhere); start() resumes. */
  stop(): void {
    this.#active = false;
    this.#run = undefined;
    this.#awaitedPoll = undefined;
  }

  /**
   * The page came back (from a freeze, or from the background): whatever
   * the poll we wait for was doing meanwhile, it may be dead. End it, and
   * the poll loop sends a new one at once (nothing in it was acknowledged).
   */
  revalidate(): void {
    const poll = this.#awaitedPoll;
    if (!this.#active || !poll || poll.headIn) return;
    poll.revalidated = true;
    poll.expire?.();
  }

  flush(): void {
    if (this.#flushing || !this.#active || this.#host.current === undefined) return;
    this.#flushing = true;
    // Started at once (no queue in between): the request goes out before send() returns.
    this.#flushLoop().catch(this.#crashed);
  }

  idle(): Promise<void> {
    if (!this.#flushing) return RESOLVED;
    return new Promise<void>((resolve) => {
      const before = this.#flushEnded;
      this.#flushEnded = before ? () => (before(), resolve()) : resolve;
    });
  }

  dispose(): void {
    this.stop();
  }

  // ---- server-to-client: the poll loop ----

  /**
   * Send one poll now. `from`: start the batch there (an early poll, sent
   * while the answer before it is still being read). If this poll is the one
   * the loop waits for and its answer names where its batch ends
   * (NEXT_HEADER), the next poll goes out as soon as the headers are in.
   */
  #poll(session: LiveSession, hold: number, from?: number): PendingPoll {
    this.#host.stats.polls++;
    return new PendingPoll(this.#exchange, session, this.#host.inboundAck, from, hold, hold + this.#options.pollGraceMs, this.#onPollHead);
  }

  /** A poll's answer has its headers in: send the next poll now if it names where its batch ends. */
  readonly #onPollHead = (pending: PendingPoll, head: ResponseHead): boolean => {
    const { session } = pending;
    const advisor = this.#advisor;
    if (head.status !== 200 || this.#awaitedPoll !== pending || this.#host.current !== session || !advisor) return false;
    const next = Number(head.header(NEXT_HEADER));
    if (!Number.isSafeInteger(next) || next <= this.#host.inboundAck + 1) return false;
    pending.early = this.#poll(session, advisor.holdMs, next);
    return true;
  };

  async #pollLoop(session: LiveSession, advisor: HoldAdvisor, run: object): Promise<void> {
    const host = this.#host;
    const going = () => host.current === session && this.#run === run;
    // A resumed session's first poll is answered at once: its ack says where the server's count of our stream stands.
    let current = this.#poll(session, host.outboundUnconfirmed ? 0 : advisor.holdMs);
    while (going()) {
      this.#awaitedPoll = current;
      const outcome = await current.outcome;
      if (this.#awaitedPoll === current) this.#awaitedPoll = undefined;
      const { started, hold, early } = current;
      // Each poll names the next: unlinked once taken, or a stale reference
      // to any one of them would keep every later answer (body and all) alive.
      current.early = undefined;
      // Stopped meanwhile: the answer is dropped unread (not acknowledged, it comes again).
      if (!going()) return;
      // From here on a new poll that is not `early` supersedes it: the server
      // answers it at once, and nobody reads that answer (not acknowledged,
      // its messages come again).
      if (!outcome.ok) {
        const age = Date.now() - started;
        if (current.revalidated || (outcome.error.code === 'timeout' && age > hold + this.#options.pollGraceMs + LATE_TIMER_MS)) {
          // Ended to be checked again (the page came back from a freeze), or
          // its deadline fired long after it was due (a frozen or throttled
          // page's timers): nothing is known about the path. A new poll, now.
          current = this.#poll(session, advisor.holdMs);
          continue;
        }
        if (hold > 0 && (current.blackholed || (outcome.error.code === 'timeout' && age >= hold))) {
          // Died without a sound: found dead by a send's answer (below the
          // age it had then), or at its deadline (below its hold). Replace
          // it at once, and hold for less from now on.
          advisor.silentDeath(current.blackholed ? Math.min(age, hold) : hold);
          noteSilentDeath(host.stats, age, current.blackholed === true, advisor.holdMs, advisor.ceilingMs);
          current = this.#poll(session, advisor.holdMs);
          continue;
        }
        if (outcome.reaction === 'retry' && age >= MIN_HOLD_MS && hold > 0) {
          // Held a while, then cut (a proxy's read timeout answering 504, a NAT
          // forgetting us, our own deadline): replace it at once, and learn.
          advisor.cut(age, hold);
          host.stats.holdMs = advisor.holdMs;
          notePollCut(host.stats, age, advisor.holdMs);
          current = this.#poll(session, advisor.holdMs);
          continue;
        }
        if (!(await host.failed(session, outcome.error, outcome.reaction)) || !going()) return;
        // Unheld: its answer, at once, is what ends `reconnecting`.
        current = this.#poll(session, 0);
        continue;
      }
      const r = decodePollResponse(outcome.answer.body);
      if (!r.ok) {
        if (!(await host.failed(session, r.error, reactionOf(r.error.code))) || !going()) return;
        current = this.#poll(session, 0);
        continue;
      }
      const batch = r.value;
      host.succeeded(session);
      const age = Date.now() - started;
      if (hold > 0 && batch.m.length === 0 && !batch.close && age >= hold) {
        advisor.fullHold();
        host.stats.holdMs = advisor.holdMs;
        host.stats.holdCeilingMs = advisor.ceilingMs;
      }
      const from = host.accept(session, batch);
      if (from < 0) return;
      // The early poll is good only if this batch brought the stream right up to where it starts.
      let next = early !== undefined && early.from === host.inboundAck + 1 ? early : undefined;
      // A large batch: the next poll (acking it) goes out first, so the server
      // refills while the application works through it. A small one: the
      // application gets it first, as sending a poll costs more than handing it over.
      if (!next && batch.m.length - from > SMALL_BATCH) next = this.#poll(session, advisor.holdMs);
      if (!host.deliver(session, batch.m, from) || !going()) return;
      if (from < batch.m.length || age >= hold / 2) {
        this.#idleAnswers = 0;
        this.#pace.reset();
      } else if (++this.#idleAnswers >= IDLE_ANSWERS_BEFORE_PACING) {
        await delay(this.#pace.next(), session.abort.signal);
        if (!going()) return;
      }
      current = next ?? this.#poll(session, advisor.holdMs);
    }
  }

  /**
   * A send's answer says the server wrote messages up to `written`, which
   * our poll has not brought. If the poll we wait for still has no answer a
   * moment later (about a round trip: the server wrote the poll's answer
   * before the send's), it died on its way: end it, and the poll loop
   * replaces it (see the silent deaths in #pollLoop).
   */
  #pollShouldHave(session: LiveSession, written: number): void {
    const poll = this.#awaitedPoll;
    if (!poll || poll.session !== session || poll.headIn || poll.suspect) return;
    poll.suspect = true;
    const wait = Math.max(MIN_SILENCE_MS, Math.min(MAX_SILENCE_MS, Math.round(this.#host.stats.rttMs)));
    setTimeout(() => {
      if (this.#awaitedPoll !== poll || poll.headIn || this.#host.inboundAck >= written) return;
      poll.blackholed = true;
      poll.expire?.();
    }, wait);
  }

  // ---- client-to-server: batched sends, one request in flight ----

  /**
   * Send what is pending, one request at a time, until nothing is. It stops
   * when there is no session; the next one's start() calls flush() again.
   */
  async #flushLoop(): Promise<void> {
    const host = this.#host;
    try {
      for (;;) {
        const session = host.current;
        if (!session || !this.#active || host.outboundPending === 0) return;
        const batch = host.nextBatch(Math.min(session.limits.maxBatchBytes, this.#sendBodyLimit) - ENVELOPE_OVERHEAD);
        if (batch.count === 0) return; // held back until the server's first ack (a resumed session)
        const started = Date.now();
        const body = encodeBatch(host.inboundAck, batch.seq, batch.m, session.auth);
        const head = this.#sendHead;
        head.written = 0;
        const pending = this.#exchange.post(session.abort.signal, PATHS.send, body, this.#options.requestTimeoutMs, session.maxAnswerBytes, head);
        host.stats.sendRequests++;
        host.written(batch.seq + batch.count - 1);
        const outcome = await pending;
        // The session changed meanwhile: go on with the new one, if it is open yet.
        // Stopped: the answer is dropped (the other transport sends what it did not acknowledge).
        if (host.current !== session || !this.#active) continue;
        if (!outcome.ok) {
          if (outcome.reaction === 'smaller_batches' && batch.count > 1) {
            // Something on the path (a proxy's body limit) refused the size the
            // server allows: send at most half of it from now on, at once.
            this.#sendBodyLimit = Math.floor(batch.wireBytes / 2) + ENVELOPE_OVERHEAD;
            continue;
          }
          if (outcome.reaction === 'smaller_batches' && batch.count === 1) {
            // One message, refused for its size (by the server, or a proxy's
            // body limit): it can never pass. It is dropped and reported; the
            // stream goes on with the next.
            host.refused(session, batch.seq, outcome.error);
            continue;
          }
          // false: this session is over; the loop goes on only with a newer one (whose start() found it running).
          if (!(await host.failed(session, outcome.error, outcome.reaction)) && host.current === session) return;
          continue;
        }
        const r = decodeSendResponse(outcome.answer.body);
        if (!r.ok) {
          if (!(await host.failed(session, r.error, reactionOf(r.error.code))) && host.current === session) return;
          continue;
        }
        const rtt = Date.now() - started;
        const { stats } = host;
        stats.rttMs = stats.rttMs === 0 ? rtt : stats.rttMs * 0.8 + rtt * 0.2;
        host.succeeded(session);
        host.acked(r.value.ack);
        if (head.written > host.inboundAck) this.#pollShouldHave(session, head.written);
      }
    } finally {
      this.#flushing = false;
      const ended = this.#flushEnded;
      this.#flushEnded = undefined;
      ended?.();
    }
  }
}
