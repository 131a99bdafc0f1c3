/**
 * Node platform: requests on connections owned by this client (not the
 * global fetch pool: a fetch round trip costs ~0.6 ms more, and one shared
 * pool makes many clients in one process pay for each other). A plain
 * http:// server reached directly gets Http1Connection, this package's own
 * minimal HTTP/1.1 connection; https:// and every proxied request go through
 * undici's dispatch API.
 *
 * Proxies: the `proxy` option, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either
 * case, as curl reads them). An http:// server is reached through an http://
 * proxy with ordinary absolute-form requests (`POST http://host/path`), not a
 * CONNECT tunnel, which most proxies allow only to port 443; https:// goes
 * through CONNECT. Credentials come from the proxy URL (user:pass@, Basic).
 */
import { StringDecoder } from 'node:string_decoder';
import { Client, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import { Http1Connection, type Http1Controller, type Http1Handler, type Http1Request } from './http1-connection.js';
import type { HeadListener, HttpAnswer, HttpRequester, Lane, Platform, RequesterOptions, ResponseHead } from './platform.js';

const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];

/** An idle connection closes after this, before a server's idle timeout (node's default: 5 s) can race a request. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

const CLIENT_OPTIONS = {
  // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
};

/** What a lane sends on: an undici dispatcher or an Http1Connection (the same dispatch() call and handler). */
interface LaneDispatcher {
  dispatch(request: Http1Request & { origin: string }, handler: Http1Handler & Dispatcher.DispatchHandler): boolean;
  destroy(): Promise<void>;
}

/**
 * One connection per dispatcher: the next request waits the microseconds it
 * takes the last one to free its socket instead of opening another connection
 * (which then idles out and is reopened, over and over: with two allowed,
 * every poll that followed an answer opened a new one).
 *
 * Without a proxy (`origin` given): for http://, an Http1Connection (a send
 * reaches the server about 85 us sooner than through undici on the bench
 * machine: no request object to build and validate, and no event-loop turn
 * waited before writing on a reused socket); for https://, an undici Client,
 * one origin on one connection, as Agent({ connections: 1 }) would make,
 * minus two dispatch layers on every request.
 */
function createDispatcher(options: RequesterOptions, origin?: string): LaneDispatcher {
  if (origin !== undefined && origin.startsWith('http:')) return new Http1Connection(origin, { keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS });
  if (origin !== undefined) return new Client(origin, CLIENT_OPTIONS);
  const proxy = options.proxy;
  return new EnvHttpProxyAgent({
    ...CLIENT_OPTIONS,
    connections: 1,
    proxyTunnel: false,
    ...(proxy === undefined ? {} : { httpProxy: proxy, httpsProxy: proxy }),
  });
}

function proxyAuthError(detail: string): HoldlineError {
  return new HoldlineError(
    'proxy_auth_required',
    `the proxy requires authentication (${detail}); put credentials in the proxy URL (http://user:pass@host:port) or the "proxy" option`,
  );
}

/** As a flat list: undici takes it as it is (an object costs an Object.keys() per request). */
const REQUEST_HEADERS = ['content-type', REQUEST_CONTENT_TYPE];

/** The send lane's dispatcher, then the poll lane's two. */
type Lanes = [LaneDispatcher, LaneDispatcher, LaneDispatcher];

/** A URL split the way undici's dispatch() takes it, with its dispatchers, cached: a client posts to four URLs. */
interface Target {
  origin: string;
  path: string;
  lanes: Lanes;
  /** undici's lanes (a proxy, https) write a request on a reused socket a turn later; Http1Connection at once. */
  writesLater: boolean;
}

function toRequestError(e: unknown, url: string, signal: AbortSignal): HoldlineError {
  if (e instanceof HoldlineError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (/\b407\b/.test(message)) return proxyAuthError(message);
  return new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${message}`, { cause: e });
}

/**
 * The exchanges in flight on each deadline signal. A client reuses one signal
 * per lane until it fires, so one 'abort' listener per signal does instead of
 * an addEventListener/removeEventListener pair per request (EventTarget's are
 * costly: a client process with a thousand clients polls thousands of times a
 * second).
 */
const inFlight = new WeakMap<AbortSignal, Set<Exchange>>();

function watch(signal: AbortSignal, exchange: Exchange): void {
  let set = inFlight.get(signal);
  if (!set) {
    const watched = (set = new Set());
    inFlight.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        for (const e of watched) e.abort();
        watched.clear();
      },
      { once: true },
    );
  }
  set.add(exchange);
}

/** What a dispatcher hands the handler to abort its request: undici's controller has this too. */
type Controller = Http1Controller;

/**
 * One exchange through a dispatch() API (undici's, or Http1Connection's),
 * with a handler of our own that collects the body: undici's request() adds
 * a stream, a promise chain and a text decoder per request (measured: ~90 us
 * more client CPU per 110 KB poll answer on the bench machine).
 */
class Exchange implements Dispatcher.DispatchHandler, ResponseHead {
  readonly #resolve: (a: HttpAnswer) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: AbortSignal;
  readonly #listener: HeadListener | undefined;
  readonly #url: string;
  /** The poll slot it holds (a count in `#slots`), or -1 (a send). */
  readonly #slot: number;
  readonly #slots: number[];
  #headers: Record<string, string | string[] | undefined> | undefined;
  #controller: Controller | undefined;
  #status = 0;
  #chunks: Buffer[] = [];
  /** The listener started another request: let it go out before we settle (see onResponseEnd). */
  #yield = false;
  /** Requests on this exchange's lanes wait a turn before they are written (see Target). */
  readonly #writesLater: boolean;
  #settled = false;

  constructor(
    url: string,
    signal: AbortSignal,
    listener: HeadListener | undefined,
    slots: number[],
    slot: number,
    resolve: (a: HttpAnswer) => void,
    reject: (e: unknown) => void,
    writesLater: boolean,
  ) {
    this.#writesLater = writesLater;
    this.#url = url;
    this.#signal = signal;
    this.#listener = listener;
    this.#slots = slots;
    this.#slot = slot;
    this.#resolve = resolve;
    this.#reject = reject;
    if (slot >= 0) slots[slot]++;
    watch(signal, this);
  }

  /** The deadline fired (or the client closed). */
  abort(): void {
    this.#controller?.abort(this.#signal.reason);
    this.#fail(this.#signal.reason);
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.#settled) controller.abort(this.#signal.reason ?? new Error('aborted'));
  }

  onResponseStart(_c: Controller, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return; // 1xx: the real answer follows
    this.#status = status;
    this.#headers = headers;
    this.#yield = this.#listener?.onHead(this) === true && this.#writesLater;
  }

  get status(): number {
    return this.#status;
  }

  header(name: string): string | undefined {
    const v = this.#headers?.[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  onResponseData(_c: Controller, chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#status === 407) return this.#fail(proxyAuthError('407'));
    const chunks = this.#chunks;
    let body = chunks.length === 1 ? chunks[0].toString('utf8') : '';
    if (chunks.length > 1) {
      // Decoded piece by piece rather than joined first: no copy of the body as bytes.
      const decoder = new StringDecoder('utf8');
      for (const c of chunks) body += decoder.write(c);
      body += decoder.end();
    }
    const answer = { status: this.#status, body };
    // undici writes a request on a reused socket one event-loop turn later
    // (setImmediate: it first checks the idle socket). If the listener started
    // one there, let that turn pass before the caller works on this answer
    // (an Http1Connection has written it already).
    if (this.#yield) setImmediate(() => this.#done(answer));
    else this.#done(answer);
  }

  onResponseError(_c: Controller, err: Error): void {
    this.#fail(err);
  }

  #done(answer: HttpAnswer): void {
    if (this.#settle()) this.#resolve(answer);
  }

  /** Also for a dispatch() that threw. */
  fail(err: unknown): void {
    this.#fail(err);
  }

  #fail(err: unknown): void {
    if (this.#settle()) this.#reject(toRequestError(err, this.#url, this.#signal));
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    inFlight.get(this.#signal)?.delete(this);
    if (this.#slot >= 0) this.#slots[this.#slot]--;
    return true;
  }
}

class UndiciRequester implements HttpRequester {
  readonly #options: RequesterOptions;
  /** Through a proxy, one set of dispatchers serves every origin. */
  readonly #proxied: Lanes | undefined;
  /** Without one, a set per origin (a client has one). */
  readonly #byOrigin = new Map<string, Lanes>();
  /**
   * Polls use the first slot while it is free, so an idle client keeps one poll
   * connection; an early poll, sent while the answer before it is still being
   * read on one, goes on the other.
   */
  readonly #pollsInFlight = [0, 0];
  readonly #keepAlive: boolean;
  readonly #targets = new Map<string, Target>();

  constructor(options: RequesterOptions) {
    this.#options = options;
    this.#keepAlive = options.keepAlive;
    if (options.proxy !== undefined || PROXY_ENV.some((k) => process.env[k])) {
      this.#proxied = [createDispatcher(options), createDispatcher(options), createDispatcher(options)];
    }
  }

  #target(url: string): Target {
    let t = this.#targets.get(url);
    if (!t) {
      const u = new URL(url);
      const origin = u.origin;
      let lanes = this.#proxied ?? this.#byOrigin.get(origin);
      if (!lanes) {
        lanes = [createDispatcher(this.#options, origin), createDispatcher(this.#options, origin), createDispatcher(this.#options, origin)];
        this.#byOrigin.set(origin, lanes);
      }
      t = { origin, path: u.pathname + u.search, lanes, writesLater: !(lanes[0] instanceof Http1Connection) };
      this.#targets.set(url, t);
    }
    return t;
  }

  // Not async, and no await before dispatch(): a send goes out with the fewest steps.
  post(url: string, body: string, signal: AbortSignal, lane: Lane, listener?: HeadListener): Promise<HttpAnswer> {
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
      const exchange = new Exchange(url, signal, listener, this.#pollsInFlight, slot, resolve, reject, t.writesLater);
      try {
        t.lanes[slot + 1].dispatch({ origin: t.origin, path: t.path, method: 'POST', body, headers: REQUEST_HEADERS, reset: !this.#keepAlive }, exchange);
      } catch (e) {
        exchange.fail(e);
      }
    });
  }

  async close() {
    const all = [...(this.#proxied ?? []), ...[...this.#byOrigin.values()].flat()];
    await Promise.all(all.map((d) => d.destroy()));
  }
}

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
};
