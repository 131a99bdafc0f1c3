/**
 * Opening a session, for the session machine (session-machine.ts): the /open
 * request tried again with the retry back-off until the server grants a
 * session (or the client closes, or the first connect() times out), its body
 * with the `auth` option's object, and the LiveSession made of the answer;
 * and, in place of a lost session, the reset back-off before a new one.
 * One attempt id per opening, the same on every try of it, so that the
 * server gives a retried open the session it already made.
 */
import { decodeOpenResponse, HoldlineError, PATHS, PROTOCOL_VERSION, type CloseReason, type OpenResponse } from '../shared/index.js';
import type { ClientStats, Emit } from './events.js';
import type { HttpExchange, Outcome } from './http-exchange.js';
import { MAX_CONTROL_ANSWER_BYTES, maxAnswerBytes, saneLimits } from './limits.js';
import { authData, type ResolvedClientOptions } from './options.js';
import type { Pacing } from './pacing.js';
import type { LiveSession } from './transport.js';
import { noteFailure, noteLost } from './client-metrics.js';

function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** A session as the client holds it, from limits already clamped (saneLimits): an open answer's, or a resumed state's. */
export function liveSession(limits: OpenResponse): LiveSession {
  const { sid, token } = limits;
  const auth = `"sid":${JSON.stringify(sid)},"token":${JSON.stringify(token)},`;
  return { sid, token, auth, limits, maxAnswerBytes: maxAnswerBytes(limits), openedAt: Date.now(), abort: new AbortController(), webSockets: 0 };
}

export interface OpenerParts {
  readonly options: Readonly<ResolvedClientOptions>;
  readonly exchange: HttpExchange;
  readonly emit: Emit;
  /** The machine's stats: failed opens are counted there. */
  readonly stats: ClientStats;
  /** The machine's back-off: `retries` paces the tries, and starts over once one succeeds. */
  readonly pacing: Pacing;
  /** The client's lifetime: aborted by close(), which ends the opening. */
  readonly lifetime: AbortSignal;
  /** A fatal error (or the time is up): the client closes with it. */
  readonly fail: (error: HoldlineError) => void;
}

export class SessionOpener {
  readonly #parts: OpenerParts;

  constructor(parts: OpenerParts) {
    this.#parts = parts;
  }

  /**
   * Open a session with retries; undefined when closed or timed out meanwhile.
   * `timeoutMs` undefined: never time out (a session lost after connect()).
   */
  async open(timeoutMs: number | undefined): Promise<LiveSession | undefined> {
    const { options, exchange, emit, stats, pacing, lifetime, fail } = this.#parts;
    const attempt = randomId();
    const giveUpAt = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (lifetime.aborted) return undefined;
      const body = await this.#body(attempt);
      if (lifetime.aborted) return undefined;
      const outcome = typeof body === 'string'
        ? await exchange.post(lifetime, PATHS.open, body, options.requestTimeoutMs, MAX_CONTROL_ANSWER_BYTES)
        : body;
      if (!outcome.ok) noteFailure(stats, outcome.error, outcome.reaction, undefined);
      let error: HoldlineError;
      if (outcome.ok) {
        const r = decodeOpenResponse(outcome.answer.body);
        if (r.ok) {
          pacing.retries.reset();
          return liveSession(saneLimits(r.value));
        }
        emit('error', r.error);
        error = r.error;
      } else if (outcome.reaction === 'fatal') {
        fail(outcome.error);
        return undefined;
      } else {
        // Anything else on an open (no session yet to lose or stop) is worth another try.
        error = outcome.error;
      }
      const wait = pacing.retries.next();
      if (Date.now() + wait > giveUpAt) {
        fail(new HoldlineError('timeout', `could not open a session within ${String(timeoutMs)} ms (last error: ${error.code}: ${error.message})`));
        return undefined;
      }
      emit('reconnecting', { attempt: pacing.retries.attempt, delayMs: wait, error });
      await pacing.wait(wait);
    }
  }

  /**
   * A new session in place of `old`, lost for `reason`: after the reset
   * back-off (Pacing.resetDelay), told as 'reconnecting', opened as open()
   * does, without a time limit. Undefined when the client closed meanwhile.
   */
  async reopen(old: LiveSession, reason: CloseReason): Promise<LiveSession | undefined> {
    const { emit, pacing } = this.#parts;
    const delayMs = pacing.resetDelay(old.openedAt);
    noteLost(old.sid, reason.code, delayMs);
    emit('reconnecting', { attempt: pacing.resets.attempt, delayMs, error: new HoldlineError('session_lost', `session lost: ${reason.code}`) });
    if (delayMs > 0) await pacing.wait(delayMs);
    // No time limit: connectTimeoutMs bounds the first connect() only. A
    // server restarting or a rolling deploy may take any time; the back-off
    // keeps the load it sees bounded meanwhile.
    return this.open(undefined);
  }

  /**
   * The open request's body, with the `auth` option's object: a function is
   * called for every try (a token may have expired meanwhile). One that
   * throws is retried like a failed open (`listener_error`); one that returns
   * something that is not a small JSON object is fatal (`invalid_argument`).
   */
  async #body(attempt: string): Promise<string | Outcome> {
    const auth = this.#parts.options.auth;
    if (auth === undefined) return `{"v":${PROTOCOL_VERSION},"attempt":${JSON.stringify(attempt)}}`;
    let value: unknown;
    try {
      value = typeof auth === 'function' ? await auth() : auth;
    } catch (e) {
      const error = new HoldlineError('listener_error', `the "auth" function failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      return { ok: false, error, reaction: 'retry' };
    }
    try {
      return `{"v":${PROTOCOL_VERSION},"attempt":${JSON.stringify(attempt)},"auth":${authData(value)}}`;
    } catch (e) {
      return { ok: false, error: e as HoldlineError, reaction: 'fatal' };
    }
  }
}
