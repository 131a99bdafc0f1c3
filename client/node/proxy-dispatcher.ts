/**
 * An http:// server through an http:// proxy: ordinary absolute-form requests
 * (`POST http://host/path`) on one undici Client to the proxy, not a CONNECT
 * tunnel (which most proxies allow only to port 443). It answers the proxy's
 * 407s itself (see proxy-auth.ts): the request is sent again with the next
 * Proxy-Authorization, on the same connection (the NTLM handshake needs that;
 * the Client has one connection, and a 407 a proxy means to continue from
 * keeps it open). A 407 it cannot answer is proxy_auth_required naming the
 * scheme, at once. A refusal the proxy makes itself (squid's error pages:
 * 403 from an ACL, 502/503 when it cannot reach the server) is proxy_refused.
 */
import { Client, type Dispatcher } from 'undici';
import type { HoldlineError } from '../../shared/index.js';
import { newRound, parseChallenges, type AuthRound, type ProxyAuth } from './proxy-auth.js';
import { proxyRefused, type ProxyEndpoint } from './proxy-config.js';

/** Statuses a proxy's own refusal comes with (504 is not one: a cut hold, which the client learns from). */
const REFUSALS = new Set([403, 502, 503]);

/** What the requester needs of a lane's dispatcher. */
export interface LaneDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  destroy(): Promise<void>;
}

type Headers = Record<string, string | string[] | undefined>;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class ProxiedHttpDispatcher implements LaneDispatcher {
  readonly #client: Client;
  readonly #proxy: ProxyEndpoint;
  readonly #auth: ProxyAuth;

  constructor(proxy: ProxyEndpoint, auth: ProxyAuth, clientOptions: Client.Options) {
    this.#proxy = proxy;
    this.#auth = auth;
    this.#client = new Client(proxy.url.origin, clientOptions);
    this.#client.on('disconnect', () => auth.connectionClosed());
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const uri = `${String(options.origin)}${options.path}`;
    const round = newRound();
    const attempt = new ProxyAttempt(this, options, uri, handler, round);
    return attempt.send(this.#auth.first(round, options.method, uri));
  }

  /** Sends (again) with this Proxy-Authorization. */
  send(options: Dispatcher.DispatchOptions, uri: string, authorization: string | undefined, handler: Dispatcher.DispatchHandler): boolean {
    const host = new URL(uri).host;
    const base = Array.isArray(options.headers) ? (options.headers as string[]) : [];
    const headers = [...base, 'host', host, ...(authorization === undefined ? [] : ['proxy-authorization', authorization])];
    return this.#client.dispatch({ ...options, path: uri, headers }, handler);
  }

  get auth(): ProxyAuth {
    return this.#auth;
  }

  get proxy(): ProxyEndpoint {
    return this.#proxy;
  }

  destroy(): Promise<void> {
    return this.#client.destroy();
  }
}

/** One request's attempts: passes everything to the caller's handler except the 407s it answers and the refusals it names. */
class ProxyAttempt implements Dispatcher.DispatchHandler {
  readonly #owner: ProxiedHttpDispatcher;
  readonly #options: Dispatcher.DispatchOptions;
  readonly #uri: string;
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #round: AuthRound;
  /** The answer being read is ours (a 407 to answer, a refusal to name), not the caller's. */
  #held: { status: number; headers: Headers } | undefined;

  constructor(owner: ProxiedHttpDispatcher, options: Dispatcher.DispatchOptions, uri: string, inner: Dispatcher.DispatchHandler, round: AuthRound) {
    this.#owner = owner;
    this.#options = options;
    this.#uri = uri;
    this.#inner = inner;
    this.#round = round;
  }

  send(authorization: string | undefined): boolean {
    return this.#owner.send(this.#options, this.#uri, authorization, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#held = undefined;
    this.#inner.onRequestStart?.(controller, context);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers, statusMessage?: string): void {
    const proxyMade = one(headers['x-squid-error']) !== undefined || one(headers['proxy-status']) !== undefined;
    if (status === 407 || (REFUSALS.has(status) && proxyMade)) {
      this.#held = { status, headers };
      return;
    }
    if (status >= 200) this.#owner.auth.passed(this.#round);
    this.#inner.onResponseStart?.(controller, status, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#held === undefined) this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Headers): void {
    const held = this.#held;
    if (held === undefined) return this.#inner.onResponseEnd?.(controller, trailers);
    let failure: HoldlineError;
    if (held.status === 407) {
      const next = this.#owner.auth.next(this.#round, parseChallenges(held.headers['proxy-authenticate']), this.#options.method, this.#uri);
      if (typeof next === 'string') {
        // After undici has finished with this answer: the next attempt goes on the same (kept-alive) connection.
        queueMicrotask(() => this.send(next));
        return;
      }
      failure = next;
    } else {
      failure = proxyRefused(this.#owner.proxy.url, `POST ${this.#uri}`, held.status, one(held.headers['x-squid-error']));
    }
    this.#inner.onResponseError?.(controller, failure);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.#inner.onResponseError?.(controller, err);
  }
}
