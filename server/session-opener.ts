/**
 * Opening sessions on this node: an open is checked (server closing,
 * protocol version, the client's open limit, the authenticate hook: see
 * server/open-admission.ts), answered with the session a retried open
 * already made, or made in the store (within maxSessions) and owned here.
 * Opens of one attempt under way at once share one answer.
 */
import type { IncomingMessage } from 'node:http';
import { nanoid } from 'nanoid';
import { HoldlineError, PROTOCOL_VERSION, wireError, type OpenRequest, type OpenResponse, type Result } from '../shared/index.js';
import { attemptKey, clientAddress, verdict, type OpenLimiter, type Verdict } from './open-admission.js';
import type { ResolvedOptions } from './options.js';
import type { OwnerLease } from './owner-lease.js';
import type { Session } from './session.js';

/** What the node's parts (the opener, the lookup) all see of it. */
export interface NodeBasics {
  readonly options: ResolvedOptions;
  /** This node's id in the store. */
  readonly node: string;
  /** Shares its store with other nodes: the identity goes with the record, the heartbeat is kept, sessions of dead nodes are taken over. */
  readonly clustered: boolean;
  readonly reportError: (err: unknown) => void;
  readonly lease: OwnerLease;
  /** Sessions this node owns (maxSessions counts them). */
  readonly live: ReadonlyMap<string, Session>;
}

/** What the opener is given by its node (server/session-registry.ts), once. */
export interface OpenerHost extends NodeBasics {
  /** True once the node is shutting down: it opens nothing. */
  closing(): boolean;
  /** Own and announce a session just made in the store. */
  own(sid: string, token: string, identity: { data: unknown; remoteAddress: string | undefined }): Session;
}

export class SessionOpener {
  readonly #host: OpenerHost;
  /** Opens per client key lately (maxOpensPerMinute). */
  readonly #opens: OpenLimiter;
  readonly #opening = new Map<string, Promise<Result<OpenResponse>>>();
  /** Opens past the maxSessions check whose store.create() has not finished. */
  #reserved = 0;

  constructor(host: OpenerHost, opens: OpenLimiter) {
    this.#host = host;
    this.#opens = opens;
  }

  /** Open a session, or return the one this attempt already opened (a retried open). */
  open(req: OpenRequest, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    const key = attemptKey(req.attempt, httpReq, req.auth);
    const pending = this.#opening.get(key);
    if (pending) return pending;
    const p = this.#open(req, key, httpReq).finally(() => this.#opening.delete(key));
    this.#opening.set(key, p);
    return p;
  }

  async #open(req: OpenRequest, attempt: string, httpReq: IncomingMessage): Promise<Result<OpenResponse>> {
    const host = this.#host;
    const { options } = host;
    if (host.closing()) return { ok: false, error: wireError('server_closing') };
    if (req.v !== PROTOCOL_VERSION) {
      return { ok: false, error: wireError('unsupported_version', `this server speaks version ${PROTOCOL_VERSION}, not ${req.v}`) };
    }
    if (!this.#admitOpen(httpReq)) {
      return { ok: false, error: wireError('too_many_sessions', `too many opens from this client (maxOpensPerMinute ${options.maxOpensPerMinute})`) };
    }
    // Authentication first, also for a retried open: a session is handed
    // back only to a request that passes it.
    let data: unknown;
    if (options.authenticate) {
      let v: Verdict = { ok: false };
      try {
        v = verdict(await options.authenticate(httpReq, req.auth));
      } catch (e) {
        host.reportError(e);
      }
      if (!v.ok) return { ok: false, error: wireError('unauthorized') };
      data = v.data;
    }
    const { store } = options;
    const existing = await store.findByAttempt(attempt);
    if (existing) return { ok: true, value: this.#openResponse(existing.sid, existing.token) };
    // With a shared store, other nodes need the identity too: it goes with the record, as JSON.
    const remoteAddress = this.#clientAddress(httpReq);
    let meta: string | undefined;
    if (host.clustered) {
      try {
        meta = JSON.stringify(data === undefined ? { a: remoteAddress } : { a: remoteAddress, d: data });
      } catch (e) {
        host.reportError(new HoldlineError('invalid_argument', `the authenticate hook's data must be JSON with a shared store: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
        return { ok: false, error: wireError('internal_error') };
      }
    }

    if (host.live.size + this.#reserved >= options.maxSessions) {
      return { ok: false, error: wireError('too_many_sessions', `the server holds maxSessions (${options.maxSessions}) sessions`) };
    }
    // An id, not a secret (the token is): 96 random bits keep ids unique.
    const sid = nanoid(16);
    // 22 characters: 132 random bits, as many as most session tokens carry and
    // fewer bytes held per idle session than 32.
    const token = nanoid(22);
    this.#reserved++;
    try {
      if (host.clustered) await host.lease.beat();
      await store.create(meta === undefined ? { sid, token, attempt } : { sid, token, attempt, meta }, host.node);
    } finally {
      this.#reserved--;
    }
    if (host.closing()) {
      await store.delete(sid);
      return { ok: false, error: wireError('server_closing') };
    }
    host.own(sid, token, { data, remoteAddress });
    return { ok: true, value: this.#openResponse(sid, token) };
  }

  /** Take one open from the client's bucket (maxOpensPerMinute); false when it is empty. */
  #admitOpen(req: IncomingMessage): boolean {
    const { options } = this.#host;
    let key: string;
    try {
      key = options.clientKey ? String(options.clientKey(req)) : this.#clientAddress(req);
    } catch (e) {
      this.#host.reportError(e);
      key = this.#clientAddress(req);
    }
    return this.#opens.admit(key);
  }

  #clientAddress(req: IncomingMessage): string {
    return clientAddress(req, this.#host.options.trustProxy);
  }

  #openResponse(sid: string, token: string): OpenResponse {
    const o = this.#host.options;
    return {
      v: PROTOCOL_VERSION,
      sid,
      token,
      pollTimeoutMs: o.pollTimeoutMs,
      sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
      maxMessageBytes: o.maxMessageBytes,
      maxBatchBytes: o.maxBatchBytes,
      maxBatchMessages: o.maxBatchMessages,
    };
  }
}
