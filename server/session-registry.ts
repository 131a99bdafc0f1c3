/**
 * The server core: opens sessions, finds and authenticates them for each
 * request, remembers recently closed ones (so a client learns why), and runs
 * the one periodic tick that ends poll holds and expires idle sessions
 * (one timer for all sessions, not one per session).
 */
import type { IncomingMessage } from 'node:http';
import { nanoid } from 'nanoid';
import {
  HoldlineError,
  PROTOCOL_VERSION,
  wireError,
  type CloseReason,
  type OpenRequest,
  type OpenResponse,
  type Result,
  type SessionAuth,
} from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import { clockMs } from './clock.js';
import { Session, type PollAnswerer, type SessionHost } from './session.js';

interface Tombstone {
  reason: CloseReason;
  token: string;
  at: number;
}

/** Compare two tokens in time that depends only on their length. */
function sameToken(given: string, expected: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

const MAX_TOMBSTONES = 10_000;

export type AuthResult =
  | { ok: true; value: Session }
  | { ok: false; error: HoldlineError; closed?: CloseReason };

export interface RegistryEvents {
  session(session: Session): void;
  error(err: unknown): void;
}

export class SessionRegistry implements SessionHost {
  readonly options: ResolvedOptions;
  /** Set by the server once its HTTP handler exists (the handler needs the registry first). */
  answerer!: PollAnswerer;
  readonly #live = new Map<string, Session>();
  /**
   * Sessions opened and not yet used: their open may still be retried (the
   * answer lost), so the store keeps their attempt id until the first use.
   */
  readonly #unused = new Set<string>();
  readonly #opening = new Map<string, Promise<Result<OpenResponse>>>();
  readonly #closed = new Map<string, Tombstone>();
  readonly #events: RegistryEvents;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  /** Opens past the maxSessions check whose store.create() has not finished. */
  #reserved = 0;

  constructor(options: ResolvedOptions, events: RegistryEvents) {
    this.options = options;
    this.#events = events;
  }

  get size(): number {
    return this.#live.size;
  }

  get(sid: string): Session | undefined {
    return this.#live.get(sid);
  }

  sessions(): IterableIterator<Session> {
    return this.#live.values();
  }

  reportError(err: unknown): void {
    this.#events.error(err);
  }

  /** Open a session, or return the one this attempt already opened (a retried open). */
  open(req: OpenRequest, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    const pending = this.#opening.get(req.attempt);
    if (pending) return pending;
    const p = this.#open(req, httpReq).finally(() => this.#opening.delete(req.attempt));
    this.#opening.set(req.attempt, p);
    return p;
  }

  async #open(req: OpenRequest, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    if (this.#closing) return { ok: false, error: wireError('server_closing') };
    if (req.v !== PROTOCOL_VERSION) {
      return { ok: false, error: wireError('unsupported_version', `this server speaks version ${PROTOCOL_VERSION}, not ${req.v}`) };
    }
    const existing = await this.options.store.findByAttempt(req.attempt);
    const live = existing === undefined ? undefined : this.#live.get(existing.sid);
    if (live) return { ok: true, value: this.#openResponse(live.id, live.token) };

    if (this.options.authenticate) {
      let allowed = false;
      try {
        allowed = (await this.options.authenticate(httpReq)) === true;
      } catch (e) {
        this.reportError(e);
      }
      if (!allowed) return { ok: false, error: wireError('unauthorized') };
    }
    if (this.#live.size + this.#reserved >= this.options.maxSessions) {
      return { ok: false, error: wireError('too_many_sessions', `the server holds maxSessions (${this.options.maxSessions}) sessions`) };
    }
    // An id, not a secret (the token is): 96 random bits keep ids unique.
    const sid = nanoid(16);
    // 22 characters: 132 random bits, as many as most session tokens carry and
    // fewer bytes held per idle session than 32.
    const token = nanoid(22);
    this.#reserved++;
    try {
      await this.options.store.create({ sid, token, attempt: req.attempt });
    } finally {
      this.#reserved--;
    }
    if (this.#closing) {
      await this.options.store.delete(sid);
      return { ok: false, error: wireError('server_closing') };
    }
    const session = new Session(sid, token, this, clockMs());
    this.#live.set(sid, session);
    this.#unused.add(sid);
    this.#startTicker();
    try {
      this.#events.session(session);
    } catch (e) {
      this.reportError(e);
    }
    return { ok: true, value: this.#openResponse(sid, token) };
  }

  #openResponse(sid: string, token: string): OpenResponse {
    const o = this.options;
    return {
      v: PROTOCOL_VERSION,
      sid,
      token,
      pollTimeoutMs: o.pollTimeoutMs,
      sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
      maxMessageBytes: o.maxMessageBytes,
      maxBatchBytes: o.maxBatchBytes,
    };
  }

  /**
   * The live session these credentials prove, or the error to answer with;
   * for a session closed recently, also why it closed.
   */
  authenticateSession(auth: SessionAuth): AuthResult {
    const live = this.#live.get(auth.sid);
    const tombstone = live ? undefined : this.#closed.get(auth.sid);
    const expected = live?.token ?? tombstone?.token;
    if (!expected) return { ok: false, error: wireError('session_unknown', `no session ${auth.sid}: it expired, was closed, or the server restarted`) };
    if (!sameToken(auth.token, expected)) {
      return { ok: false, error: wireError('bad_credential', 'the session token is wrong') };
    }
    if (tombstone) {
      const { reason } = tombstone;
      return { ok: false, error: wireError('session_closed', `session closed: ${reason.code}: ${reason.message}`), closed: reason };
    }
    if (this.#unused.size > 0 && this.#unused.delete(auth.sid)) {
      this.options.store.forgetAttempt(auth.sid).catch((e: unknown) => this.reportError(e));
    }
    return { ok: true, value: live as Session };
  }

  sessionEnded(session: Session, reason: CloseReason): void {
    if (this.#live.get(session.id) !== session) return;
    this.#live.delete(session.id);
    this.#unused.delete(session.id);
    // Explicit closes are remembered so a returning client learns the reason;
    // an expired or shut-down session is forgotten and the client gets `reset`.
    if (reason.code === 'server_closed' || reason.code === 'client_closed') {
      this.#closed.set(session.id, { reason, token: session.token, at: clockMs() });
      if (this.#closed.size > MAX_TOMBSTONES) {
        const oldest = this.#closed.keys().next().value as string;
        this.#closed.delete(oldest);
      }
    }
    if (this.#live.size === 0 && this.#closed.size === 0) this.#stopTicker();
  }

  #startTicker(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(clockMs()), this.options.tickMs);
    this.#timer.unref();
  }

  #stopTicker(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** End expired holds, expire idle sessions, forget old tombstones. */
  tick(now: number): void {
    const idle = this.options.sessionIdleTimeoutMs;
    for (const session of this.#live.values()) {
      session.tick(now);
      const since = session.idleSince;
      if (since !== undefined && now - since > idle) {
        session.close({ code: 'idle_timeout', message: `not polled for ${idle} ms` });
      }
    }
    for (const [sid, t] of this.#closed) {
      if (now - t.at <= idle) break;
      this.#closed.delete(sid);
    }
    if (this.#live.size === 0 && this.#closed.size === 0) this.#stopTicker();
  }

  /** Close every session (`server_shutdown`) and refuse new ones. */
  shutdown(): void {
    this.#closing = true;
    for (const session of [...this.#live.values()]) {
      session.close({ code: 'server_shutdown', message: 'the server is shutting down' });
    }
    this.#closed.clear();
    this.#stopTicker();
  }
}

