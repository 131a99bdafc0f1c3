/**
 * Finding a request's session: the one its credentials prove, or the error
 * to answer with. A session this node owns is found at once, in memory; a
 * session it closed a moment ago is answered with how it closed; any other
 * is looked up in the store (a tombstone says why one is gone) and, when its
 * owner is gone (its lease lapsed, or it left), taken over: this node claims
 * it (the fence grows), owns it, and delivers what the old owner accepted and
 * did not mark delivered.
 */
import { HoldlineError, wireError, type CloseReason, type SessionAuth } from '../shared/index.js';
import type { Session } from './session.js';
import type { NodeBasics } from './session-opener.js';
import type { SessionRecord } from './store.js';

/** Compare two tokens in time that depends only on their length. */
function sameToken(given: string, expected: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

/** A request's session: `session` when this node owns it, else undefined (owned by another node). */
export interface Served {
  readonly sid: string;
  readonly session: Session | undefined;
}

export type AuthResult =
  | { ok: true; value: Served }
  | { ok: false; error: HoldlineError; closed?: CloseReason };

const unknownSession = (sid: string) =>
  ({ ok: false, error: wireError('session_unknown', `no session ${sid}: it expired, was closed, or the server restarted`) }) as const;
const badCredential = () => ({ ok: false, error: wireError('bad_credential', 'the session token is wrong') }) as const;
const closedResult = (reason: CloseReason) =>
  ({ ok: false, error: wireError('session_closed', `session closed: ${reason.code}: ${reason.message}`), closed: reason }) as const;

/** A session's identity from a stored record's meta (`{"a": address, "d": data}`, written by its open). */
function parseMeta(meta: string | undefined): { data: unknown; remoteAddress: string | undefined } {
  let o: { a?: unknown; d?: unknown } | undefined;
  try {
    o = meta ? (JSON.parse(meta) as typeof o) : undefined;
  } catch {
    o = undefined;
  }
  return { data: o?.d, remoteAddress: typeof o?.a === 'string' ? o.a : undefined };
}

/** A session this node closed, while its removal from the store is under way: its token, and why it closed if it is remembered. */
export interface EndedSession {
  readonly token: string;
  readonly reason: CloseReason | undefined;
}

/** What the lookup is given by its node (server/session-registry.ts), once. */
export interface LookupHost extends NodeBasics {
  /** Sessions opened and not yet used: at their first use the store forgets their open attempt. */
  readonly unused: Set<string>;
  /** Sessions this node closed whose removal from the store is under way. */
  readonly ended: ReadonlyMap<string, EndedSession>;
  /** True once the node is shutting down: it takes nothing over. */
  closing(): boolean;
  /** Own and announce a session taken over, as the store holds it. */
  own(
    sid: string,
    token: string,
    identity: { data: unknown; remoteAddress: string | undefined },
    takeover: { fence: number; delivered: number; accepted: number },
  ): Session;
}

export class SessionLookup {
  readonly #host: LookupHost;
  /** Takeovers under way, so that two requests of one session adopt it once. */
  readonly #adopting = new Map<string, Promise<Session | undefined>>();

  constructor(host: LookupHost) {
    this.#host = host;
  }

  /**
   * The session these credentials prove, or the error to answer with; for a
   * session closed recently, also why it closed. A session of this node's
   * own is found at once; any other is looked up in the store (and taken
   * over when its owner is gone).
   */
  authenticate(auth: SessionAuth): AuthResult | Promise<AuthResult> {
    const host = this.#host;
    const live = host.live.get(auth.sid);
    if (live === undefined) {
      const ended = host.ended.get(auth.sid);
      if (ended === undefined) return this.#fromStore(auth);
      if (!sameToken(auth.token, ended.token)) return badCredential();
      return ended.reason ? closedResult(ended.reason) : unknownSession(auth.sid);
    }
    if (!sameToken(auth.token, live.token)) return badCredential();
    if (host.unused.size > 0 && host.unused.delete(auth.sid)) {
      host.options.store.forgetAttempt(auth.sid).catch(host.reportError);
    }
    return { ok: true, value: { sid: live.id, session: live } };
  }

  async #fromStore(auth: SessionAuth): Promise<AuthResult> {
    const host = this.#host;
    const { store } = host.options;
    const rec = await store.get(auth.sid);
    if (rec === undefined) return this.#gone(auth);
    if (!sameToken(auth.token, rec.token)) return badCredential();
    if (rec.attempt !== '') store.forgetAttempt(rec.sid).catch(host.reportError);
    let session: Session | undefined;
    try {
      session = host.clustered && !host.closing() ? await this.#adopt(rec) : undefined;
    } catch (e) {
      // Its owner closed it between the read and the takeover: say how.
      if (e instanceof HoldlineError && e.code === 'session_unknown') return this.#gone(auth);
      throw e;
    }
    // Between the store's answer and now this node may have opened, adopted or closed it.
    session ??= host.live.get(rec.sid);
    if (session === undefined && host.ended.has(rec.sid)) return this.authenticate(auth);
    return { ok: true, value: { sid: rec.sid, session } };
  }

  /** A session the store does not hold: closed (a tombstone says why) or unknown. */
  async #gone(auth: SessionAuth): Promise<AuthResult> {
    const grave = await this.#host.options.store.tombstone(auth.sid);
    if (grave === undefined) return unknownSession(auth.sid);
    if (!sameToken(auth.token, grave.token)) return badCredential();
    return closedResult(grave.reason);
  }

  /** Take the session over if its owner is gone; undefined while another live node owns it. */
  #adopt(rec: SessionRecord): Promise<Session | undefined> {
    const pending = this.#adopting.get(rec.sid);
    if (pending) return pending;
    const p = this.#adoptNow(rec).finally(() => this.#adopting.delete(rec.sid));
    this.#adopting.set(rec.sid, p);
    return p;
  }

  async #adoptNow(rec: SessionRecord): Promise<Session | undefined> {
    const host = this.#host;
    const { store } = host.options;
    await host.lease.beat();
    const claim = await store.claim(rec.sid, host.node);
    if (!claim.owned) return undefined;
    const known = host.live.get(rec.sid);
    if (known) return known;
    const [delivered, read] = await Promise.all([store.delivered(rec.sid), store.readOutbound(rec.sid, 0, Number.MAX_SAFE_INTEGER)]);
    const identity = parseMeta(rec.meta);
    const session = host.own(rec.sid, rec.token, identity, { fence: claim.fence, delivered, accepted: read.inboundAck });
    // What the last owner accepted and did not mark delivered.
    session.pump();
    return session;
  }
}
