/**
 * One poll of the polling transport on its way (polling-transport.ts): its
 * body (the credentials, the inbound ack, the hold, and for an early poll
 * where its batch starts), its request, and what became of it: whether its
 * answer's headers came in, whether it was found dead or ended to be
 * replaced, and the early poll its headers started.
 */
import { PATHS } from '../shared/index.js';
import type { HttpExchange, Outcome, RequestControl } from './http-exchange.js';
import type { HeadListener, ResponseHead } from './platform.js';
import type { LiveSession } from './transport.js';

/** Hears a poll's answer's headers; true when it started another request (an early poll). */
export type OnHead = (p: PendingPoll, head: ResponseHead) => boolean;

/**
 * A poll's body: acknowledge the server's stream up to `ack`, hold for
 * `hold` ms, start the batch at `from` (an early poll) if given, and the
 * WebSocket hellos sent so far (`"ws"`, when not 0; see LiveSession).
 */
function pollBody(session: LiveSession, ack: number, hold: number, from: number | undefined): string {
  const ws = session.webSockets === 0 ? '' : `,"ws":${session.webSockets}`;
  return from === undefined ? `{${session.auth}"ack":${ack},"hold":${hold}${ws}}` : `{${session.auth}"ack":${ack},"hold":${hold},"from":${from}${ws}}`;
}

/** A poll on its way; it hears its own answer's headers (one object per poll, no closure). */
export class PendingPoll implements HeadListener, RequestControl {
  readonly started = Date.now();
  /** The poll sent when this one's headers came in (NEXT_HEADER), if any. */
  early: PendingPoll | undefined;
  /** Ends the request now (set by the exchange while it is in flight). */
  expire: (() => void) | undefined = undefined;
  /** Its answer's headers came in: it is alive. */
  headIn = false;
  /** A send's answer showed the server wrote more than this poll brought: being checked. */
  suspect = false;
  /** Found dead that way, and ended. */
  blackholed = false;
  /** Ended to be replaced at once (revalidate()). */
  revalidated = false;
  readonly #onHead: OnHead;
  readonly outcome: Promise<Outcome>;

  /** Sends the poll now, acknowledging the server's stream up to `ack`. */
  constructor(
    exchange: HttpExchange,
    readonly session: LiveSession,
    ack: number,
    /** Where its batch was asked to start (an early poll), else undefined. */
    readonly from: number | undefined,
    readonly hold: number,
    timeoutMs: number,
    onHead: OnHead,
  ) {
    this.#onHead = onHead;
    const body = pollBody(session, ack, hold, from);
    this.outcome = exchange.post(session.abort.signal, PATHS.poll, body, timeoutMs, session.maxAnswerBytes, this, this);
  }

  onHead(head: ResponseHead): boolean {
    this.headIn = true;
    return this.#onHead(this, head);
  }
}
