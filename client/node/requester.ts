/**
 * The Node requester: the lanes of undici dispatchers a client posts on
 * (see the top of platform.node.ts), and which of them go through a proxy.
 */
import { Client, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import type { HeadListener, HttpAnswer, HttpRequester, Lane, RequesterOptions } from '../platform.js';
import { Exchange, toRequestError, type Lanes, type PollSlots, type Target, type TunnelStatus } from './exchange.js';
import { PROXY_ENV } from './proxy-config.js';

/** An idle connection closes after this, before a server's idle timeout (node's default: 5 s) can race a request. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

const CLIENT_OPTIONS = {
  // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
};

/**
 * The client a ProxyAgent reaches its proxy with (its `clientFactory`): an
 * undici Client that notes each CONNECT answer's status. It wraps the
 * handler's onUpgrade in place, as undici's own proxy wrapper does onHeaders.
 */
class ProxyClient extends Client {
  readonly #tunnel: TunnelStatus;

  constructor(url: URL, options: object, tunnel: TunnelStatus) {
    super(url, options);
    this.#tunnel = tunnel;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const onUpgrade = handler.onUpgrade;
    if (options.method === 'CONNECT' && onUpgrade) {
      const tunnel = this.#tunnel;
      handler.onUpgrade = function (this: Dispatcher.DispatchHandler, statusCode, headers, socket) {
        tunnel.last = statusCode;
        onUpgrade.call(this, statusCode, headers, socket);
      };
    }
    return super.dispatch(options, handler);
  }
}

/**
 * One connection per dispatcher: the next request waits the microseconds it
 * takes the last one to free its socket instead of opening another connection
 * (which then idles out and is reopened, over and over: with two allowed,
 * every poll that followed an answer opened a new one).
 *
 * Without a proxy (`origin` given): an undici Client, one origin on one
 * connection, as Agent({ connections: 1 }) would make, minus two dispatch
 * layers on every request.
 */
function createDispatcher(options: RequesterOptions, origin: string | undefined, tunnel: TunnelStatus): Dispatcher {
  if (origin !== undefined) return new Client(origin, CLIENT_OPTIONS);
  const proxy = options.proxy;
  return new EnvHttpProxyAgent({
    ...CLIENT_OPTIONS,
    connections: 1,
    proxyTunnel: false,
    clientFactory: (url, opts) => new ProxyClient(url, opts, tunnel),
    ...(proxy === undefined ? {} : { httpProxy: proxy, httpsProxy: proxy }),
  });
}

export class UndiciRequester implements HttpRequester {
  readonly #options: RequesterOptions;
  /** Through a proxy, one set of dispatchers serves every origin. */
  readonly #proxied: Lanes | undefined;
  readonly #tunnel: TunnelStatus | undefined;
  /** Without one, a set per origin (a client has one). */
  readonly #byOrigin = new Map<string, Lanes>();
  /**
   * Polls use the first slot while it is free, so an idle client keeps one poll
   * connection; an early poll, sent while the answer before it is still being
   * read on one, goes on the other.
   */
  readonly #pollsInFlight: PollSlots = [0, 0];
  readonly #keepAlive: boolean;
  readonly #targets = new Map<string, Target>();

  constructor(options: RequesterOptions) {
    this.#options = options;
    this.#keepAlive = options.keepAlive;
    if (options.proxy !== undefined || PROXY_ENV.some((k) => process.env[k])) {
      this.#tunnel = { last: 0 };
      this.#proxied = this.#lanes(undefined, this.#tunnel);
    }
  }

  #lanes(origin: string | undefined, tunnel: TunnelStatus): Lanes {
    const o = this.#options;
    return { send: createDispatcher(o, origin, tunnel), polls: [createDispatcher(o, origin, tunnel), createDispatcher(o, origin, tunnel)] };
  }

  #target(url: string): Target {
    let t = this.#targets.get(url);
    if (!t) {
      const u = new URL(url);
      const origin = u.origin;
      let lanes = this.#proxied ?? this.#byOrigin.get(origin);
      if (!lanes) {
        lanes = this.#lanes(origin, { last: 0 });
        this.#byOrigin.set(origin, lanes);
      }
      t = { url, origin, path: u.pathname + u.search, lanes, tunnel: this.#tunnel };
      this.#targets.set(url, t);
    }
    return t;
  }

  // Not async, and no await before dispatch(): a send goes out with the fewest steps.
  post(url: string, body: string, signal: AbortSignal, lane: Lane, maxBodyBytes: number, listener?: HeadListener): Promise<HttpAnswer> {
    if (signal.aborted) return Promise.reject(toRequestError(signal.reason, url, signal));
    return new Promise<HttpAnswer>((resolve, reject) => {
      let t: Target;
      try {
        t = this.#target(url);
      } catch (e) {
        reject(toRequestError(e, url, signal));
        return;
      }
      const slot = lane === 'send' ? -1 : this.#pollsInFlight[0] === 0 ? 0 : 1;
      const dispatcher = slot === -1 ? t.lanes.send : t.lanes.polls[slot];
      new Exchange(t, dispatcher, body, !this.#keepAlive, maxBodyBytes, signal, listener, this.#pollsInFlight, slot, resolve, reject).start();
    });
  }

  async close() {
    const all = [...(this.#proxied ? [this.#proxied] : []), ...this.#byOrigin.values()].flatMap((l) => [l.send, ...l.polls]);
    await Promise.all(all.map((d) => d.destroy()));
  }
}
