/**
 * The Node requester: the lanes of undici dispatchers a client posts on
 * (see the top of platform.node.ts), and which of them go through a proxy.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Client, type buildConnector } from 'undici';
import type { HeadListener, HttpAnswer, HttpRequester, Lane, RequesterOptions } from '../platform.js';
import { Exchange, toRequestError, type Lanes, type PollSlots, type Target } from './exchange.js';
import { ProxyAuth } from './proxy-auth.js';
import { endpointFor, type ProxyEndpoint } from './proxy-config.js';
import { ProxiedHttpDispatcher, type LaneDispatcher } from './proxy-dispatcher.js';
import { PacRouter } from './proxy-pac.js';
import { openTunnel } from './tunnel.js';

/** An idle connection closes after this, before a server's idle timeout (node's default: 5 s) can race a request. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

const CLIENT_OPTIONS = {
  // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
};

/** A connection of its own to `origin`: direct, or through a CONNECT tunnel. */
function originClient(origin: string, proxy: ProxyEndpoint | undefined): LaneDispatcher {
  if (proxy === undefined) return new Client(origin, CLIENT_OPTIONS);
  const auth = new ProxyAuth(proxy.creds);
  const connect: buildConnector.connector = (o, callback) => {
    const host = o.hostname.replace(/^\[|\]$/g, '');
    const port = Number.parseInt(o.port, 10) || (o.protocol === 'https:' ? 443 : 80);
    openTunnel(proxy, auth, o.hostname, port).then(
      (socket) => {
        if (o.protocol !== 'https:') return callback(null, socket);
        const secure = tls.connect({ socket, host, ALPNProtocols: ['http/1.1'], ...(net.isIP(host) === 0 ? { servername: o.servername ?? host } : {}) });
        secure.once('secureConnect', () => callback(null, secure));
        secure.once('error', (e) => callback(e, null));
      },
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e)), null),
    );
  };
  return new Client(origin, { ...CLIENT_OPTIONS, connect });
}

/**
 * One lane's dispatcher for `url`: an undici Client to the origin (direct, or
 * through a CONNECT tunnel for https://), or to the proxy for an http://
 * server behind an http:// proxy (absolute-form requests).
 */
function laneDispatcher(url: URL, proxy: ProxyEndpoint | undefined): LaneDispatcher {
  if (proxy !== undefined && url.protocol === 'http:' && proxy.url.protocol === 'http:') {
    return new ProxiedHttpDispatcher(proxy, new ProxyAuth(proxy.creds), CLIENT_OPTIONS);
  }
  return originClient(url.origin, proxy);
}

export class UndiciRequester implements HttpRequester {
  readonly #options: RequesterOptions;
  /** The lanes per route (proxy and origin; a client has one or two). */
  readonly #byRoute = new Map<string, Lanes>();
  /**
   * Polls use the first slot while it is free, so an idle client keeps one poll
   * connection; an early poll, sent while the answer before it is still being
   * read on one, goes on the other.
   */
  readonly #pollsInFlight: PollSlots = [0, 0];
  readonly #keepAlive: boolean;
  readonly #targets = new Map<string, Target>();
  readonly #pac: PacRouter | undefined;

  constructor(options: RequesterOptions) {
    this.#options = options;
    this.#keepAlive = options.keepAlive;
    const proxy = options.proxy;
    if (typeof proxy === 'object' && 'pac' in proxy) this.#pac = new PacRouter(proxy.pac, proxy);
  }

  #lanes(u: URL, proxy: ProxyEndpoint | undefined): Lanes {
    const key = `${proxy?.key ?? 'DIRECT'} ${u.origin}`;
    let lanes = this.#byRoute.get(key);
    if (!lanes) {
      lanes = { send: laneDispatcher(u, proxy), polls: [laneDispatcher(u, proxy), laneDispatcher(u, proxy)] };
      this.#byRoute.set(key, lanes);
    }
    return lanes;
  }

  #make(url: string, u: URL, proxy: ProxyEndpoint | undefined): Target {
    const t = { url, origin: u.origin, path: u.pathname + u.search, lanes: this.#lanes(u, proxy) };
    this.#targets.set(url, t);
    return t;
  }

  /** The target for `url`, at once, or (a PAC file is evaluated for each new URL) once the PAC answered. */
  #target(url: string): Target | Promise<Target> {
    const t = this.#targets.get(url);
    if (t) return t;
    const u = new URL(url);
    if (this.#pac === undefined) return this.#make(url, u, endpointFor(u, this.#options.proxy));
    return this.#pac.route(u).then((proxy) => this.#targets.get(url) ?? this.#make(url, u, proxy));
  }

  // Not async, and no await before dispatch(): a send goes out with the fewest steps.
  post(url: string, body: string, signal: AbortSignal, lane: Lane, maxBodyBytes: number, listener?: HeadListener): Promise<HttpAnswer> {
    if (signal.aborted) return Promise.reject(toRequestError(signal.reason, url, signal));
    return new Promise<HttpAnswer>((resolve, reject) => {
      const go = (t: Target): void => {
        if (signal.aborted) return reject(toRequestError(signal.reason, url, signal));
        const slot = lane === 'send' ? -1 : this.#pollsInFlight[0] === 0 ? 0 : 1;
        const dispatcher = slot === -1 ? t.lanes.send : t.lanes.polls[slot];
        new Exchange(t, dispatcher, body, !this.#keepAlive, maxBodyBytes, signal, listener, this.#pollsInFlight, slot, resolve, reject).start();
      };
      let t: Target | Promise<Target>;
      try {
        t = this.#target(url);
      } catch (e) {
        reject(toRequestError(e, url, signal));
        return;
      }
      if (t instanceof Promise) t.then(go, (e: unknown) => reject(toRequestError(e, url, signal)));
      else go(t);
    });
  }

  async close() {
    const all = [...this.#byRoute.values()].flatMap((l) => [l.send, ...l.polls]);
    await Promise.all(all.map((d) => d.destroy()));
  }
}
