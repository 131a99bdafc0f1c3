/**
 * One HTTP request to a Holdline endpoint, with a deadline, its answer
 * classified by the shared reaction table (shared/reaction.ts). The session
 * machine uses it for /open and /close, the polling transport for /poll and
 * /send. It never throws: every failure comes back as an error and the
 * client's reaction to it.
 */
import { HoldlineError, PATHS } from '../shared/index.js';
import { answerError, OPEN_STATUS_CODES, reactionOf, STATUS_CODES, type Reaction } from '../shared/reaction.js';
import { endpointUrl } from './options.js';
import type { HeadListener, HttpAnswer, HttpRequester, Lane } from './platform.js';
import { RequestDeadline } from './request-deadline.js';

export type EndpointPath = (typeof PATHS)[keyof typeof PATHS];

export type Outcome =
  | { readonly ok: true; readonly answer: HttpAnswer }
  | { readonly ok: false; readonly error: HoldlineError; readonly reaction: Reaction };

/** Filled in by post() while its request is in flight: `expire()` ends it now, as its deadline would. */
export interface RequestControl {
  expire: (() => void) | undefined;
}

/** A failed outcome, with the client's reaction to its error. */
function failure(error: HoldlineError): Outcome {
  return { ok: false, error, reaction: reactionOf(error.code) };
}

export class HttpExchange {
  readonly #requester: HttpRequester;
  /** Each endpoint's full URL, made once: the requester caches by it. */
  readonly #urls: Record<EndpointPath, string>;
  /** Polls have two: an early poll (NEXT_HEADER) overlaps the one before it. */
  readonly #deadlines: Record<Lane, RequestDeadline[]> = { poll: [new RequestDeadline(), new RequestDeadline()], send: [new RequestDeadline()] };

  constructor(baseUrl: string, requester: HttpRequester) {
    this.#requester = requester;
    const url = (p: EndpointPath) => endpointUrl(baseUrl, p);
    this.#urls = { [PATHS.open]: url(PATHS.open), [PATHS.poll]: url(PATHS.poll), [PATHS.send]: url(PATHS.send), [PATHS.close]: url(PATHS.close) };
  }

  /**
   * POST `body` to `path`; it is abandoned after `timeoutMs`, or when `cancel`
   * aborts. An answer of more than `maxBodyBytes` is `bad_response`.
   */
  async post(
    cancel: AbortSignal, path: EndpointPath, body: string, timeoutMs: number, maxBodyBytes: number,
    listener?: HeadListener, control?: RequestControl,
  ): Promise<Outcome> {
    // The open goes on the send lane, so the first poll has a connection that
    // has served no answer yet. Node keeps the cleared keep-alive timer of a
    // connection that has (about 0.2 KB of server heap as long as the
    // connection lives); a session idle since it opened is spared that.
    const lane: Lane = path === PATHS.poll ? 'poll' : 'send';
    const slots = this.#deadlines[lane];
    // A free slot; a superseded early poll still winding down (or close() behind a send) may hold one, then a new one joins.
    let deadline: RequestDeadline | undefined;
    for (const d of slots) {
      if (!d.busy) {
        deadline = d;
        break;
      }
    }
    if (!deadline) slots.push((deadline = new RequestDeadline()));
    let answer: HttpAnswer;
    const armed = deadline;
    if (control) control.expire = () => armed.expire();
    try {
      answer = await this.#requester.post(this.#urls[path], body, deadline.arm(timeoutMs, cancel), lane, maxBodyBytes, listener);
    } catch (e) {
      deadline.disarm();
      if (control) control.expire = undefined;
      return failure(e instanceof HoldlineError ? e : new HoldlineError('network_error', String(e), { cause: e }));
    }
    deadline.disarm();
    if (control) control.expire = undefined;
    if (answer.status >= 200 && answer.status < 300) return { ok: true, answer };
    // A middlebox may have replaced the body: answerError trusts the status, and reads the body only if it is ours.
    // An open has no session to be unknown: a bare 404 there is a wrong URL.
    return failure(answerError(answer.status, answer.body, path === PATHS.open ? OPEN_STATUS_CODES : STATUS_CODES));
  }

  /** Stop every timer and close the connections. */
  dispose(): void {
    for (const d of [...this.#deadlines.poll, ...this.#deadlines.send]) d.dispose();
    void this.#requester.close().catch(() => {});
  }
}
