/**
 * Who may open a session, before any session exists: the key a retried open
 * is remembered under (bound to the request's credentials), the
 * authenticate hook's verdict, the client's address, and the per-client
 * limit on opens (a token bucket per client key).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { OpenRequest } from '../shared/index.js';
import { requestHeader } from './request-header.js';

/**
 * The key an open attempt is remembered under: the client's attempt id bound
 * to what authenticates the request (its cookies, its Authorization header,
 * its Origin). A retried open gets the session back only when it comes with
 * the same credentials: a replay without the victim's cookie opens a session
 * of its own, and a victim tricked into an attacker's attempt id is never
 * handed the attacker's session.
 */
export function attemptKey(attempt: string, req: IncomingMessage, auth: OpenRequest['auth']): string {
  const h = createHash('sha256');
  for (const name of ['cookie', 'authorization', 'origin']) h.update(requestHeader(req, name) ?? '').update('\0');
  // The open body's `auth` (a bearer token) is a credential as much as a cookie is.
  if (auth !== undefined) h.update(JSON.stringify(auth));
  return `${attempt}.${h.digest('base64url').slice(0, 22)}`;
}

/** What the authenticate hook said: refused, or accepted with this data (undefined for a plain `true`). */
export type Verdict = { ok: false } | { ok: true; data: unknown };

/** Read the hook's answer: false, null or undefined refuse; true accepts with no data; anything else is the data. */
export function verdict(answer: unknown): Verdict {
  if (answer === false || answer === null || answer === undefined) return { ok: false };
  return { ok: true, data: answer === true ? undefined : answer };
}

/** The client's address: the socket's, or with `trustProxy` the first X-Forwarded-For entry. */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const fwd = requestHeader(req, 'x-forwarded-for')?.split(',')[0]?.trim();
    if (fwd) return fwd;
  }
  return req.socket.remoteAddress ?? '';
}

/** Opens per client key: at most `perMinute`, refilled continuously (a token bucket per key). */
export class OpenLimiter {
  readonly #perMinute: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number) {
    this.#perMinute = perMinute;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Take one open from `key`'s bucket; false when it is empty. */
  admit(key: string, now = Date.now()): boolean {
    const max = this.#perMinute;
    // Many keys (addresses) at once: forget the refilled ones now rather than at the next prune.
    if (this.#buckets.size > 100_000) this.prune(now);
    const b = this.#buckets.get(key);
    const tokens = b === undefined ? max : Math.min(max, b.tokens + ((now - b.at) * max) / 60_000);
    if (tokens < 1) return false;
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  /** Forget buckets that have refilled (they hold nothing a new one would not). */
  prune(now = Date.now()): void {
    const max = this.#perMinute;
    for (const [key, b] of this.#buckets) if (b.tokens + ((now - b.at) * max) / 60_000 >= max) this.#buckets.delete(key);
  }
}
