/**
 * Node platform: undici's dispatch API on dispatchers owned by this client
 * (not the global fetch pool: a fetch round trip costs ~0.6 ms more, and one
 * shared pool makes many clients in one process pay for each other).
 *
 * Proxies: the `proxy` option, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either
 * case, as curl reads them). An http:// server is reached through an http://
 * proxy with ordinary absolute-form requests (`POST http://host/path`), not a
 * CONNECT tunnel, which most proxies allow only to port 443; https:// goes
 * through CONNECT. Credentials come from the proxy URL (user:pass@, Basic).
 */
import { StringDecoder } from 'node:string_decoder';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HeadListener, HttpAnswer, HttpRequester, Lane, Platform, RequesterOptions, ResponseHead } from './platform.js';

const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];

function createDispatcher(options: RequesterOptions): Dispatcher {
  const agentOptions = {
    // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    // One connection per dispatcher: the next request waits the microseconds
    // it takes the last one to free its socket instead of opening another
    // connection (which then idles out and is reopened, over and over: with
    // two allowed, every poll that follows an answer opened a new one).
    connections: 1,
  };
  const proxy = options.proxy;
  if (proxy === undefined && !PROXY_ENV.some((k) => process.env[k])) return new Agent(agentOptions);
  return new EnvHttpProxyAgent({
    ...agentOptions,
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

const REQUEST_HEADERS = { 'content-type': REQUEST_CONTENT_TYPE };

/** A URL split the way undici's dispatch() takes it, cached: a client posts to four URLs. */
interface Target {
  origin: string;
  path: string;
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

/**
 * One exchange on undici's dispatch() API, with a handler of our own that
 * collects the body: request() adds a stream, a promise chain and a text
 * decoder per request (measured: ~90 us more client CPU per 110 KB poll
 * answer on the bench machine).
 */
class Exchange implements Dispatcher.DispatchHandler, ResponseHead {
  readonly #resolve: (a: HttpAnswer) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: AbortSignal;
  readonly #listener: HeadListener | undefined;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #status = 0;
  #chunks: Buffer[] = [];
  /** The listener started another request: let it go out before we settle. */
  #yield = false;
  #settled = false;

  constructor(signal: AbortSignal, listener: HeadListener | undefined, resolve: (a: HttpAnswer) => void, reject: (e: unknown) => void) {
    this.#signal = signal;
    this.#listener = listener;
    this.#resolve = resolve;
    this.#reject = reject;
    watch(signal, this);
  }

  /** The deadline fired (or the client closed). */
  abort(): void {
    this.#controller?.abort(this.#signal.reason);
    this.#fail(this.#signal.reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#settled) controller.abort(this.#signal.reason ?? new Error('aborted'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return; // 1xx: the real answer follows
    this.#status = status;
    this.#headers = headers;
    this.#yield = this.#listener?.onHead(this) === true;
  }

  get status(): number {
    return this.#status;
  }

  header(name: string): string | undefined {
    const v = this.#headers?.[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
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
    // one, let that turn pass before the caller works on this answer.
    if (this.#yield) setImmediate(() => this.#done(answer));
    else this.#done(answer);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.#fail(err);
  }

  #done(answer: HttpAnswer): void {
    if (this.#settled) return;
    this.#settled = true;
    inFlight.get(this.#signal)?.delete(this);
    this.#resolve(answer);
  }

  #fail(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    inFlight.get(this.#signal)?.delete(this);
    this.#reject(err);
  }
}

class UndiciRequester implements HttpRequester {
  readonly #send: Dispatcher;
  /**
   * Polls use the first while it is free, so an idle client keeps one poll
   * connection; an early poll, sent while the answer before it is still being
   * read on one, goes on the other.
   */
  readonly #polls: [Dispatcher, Dispatcher];
  readonly #pollsInFlight = [0, 0];
  readonly #keepAlive: boolean;
  readonly #targets = new Map<string, Target>();

  constructor(options: RequesterOptions) {
    this.#keepAlive = options.keepAlive;
    this.#send = createDispatcher(options);
    this.#polls = [createDispatcher(options), createDispatcher(options)];
  }

  #target(url: string): Target {
    let t = this.#targets.get(url);
    if (!t) {
      const u = new URL(url);
      t = { origin: u.origin, path: u.pathname + u.search };
      this.#targets.set(url, t);
    }
    return t;
  }

  async post(url: string, body: string, signal: AbortSignal, lane: Lane, listener?: HeadListener): Promise<HttpAnswer> {
    try {
      if (signal.aborted) throw signal.reason;
      const { origin, path } = this.#target(url);
      const slot = lane === 'send' ? undefined : this.#pollsInFlight[0] === 0 ? 0 : 1;
      const dispatcher = slot === undefined ? this.#send : this.#polls[slot];
      if (slot !== undefined) this.#pollsInFlight[slot]++;
      try {
        return await new Promise<HttpAnswer>((resolve, reject) => {
          const exchange = new Exchange(signal, listener, resolve, reject);
          dispatcher.dispatch({ origin, path, method: 'POST', body, headers: REQUEST_HEADERS, reset: !this.#keepAlive }, exchange);
        });
      } finally {
        if (slot !== undefined) this.#pollsInFlight[slot]--;
      }
    } catch (e) {
      if (e instanceof HoldlineError) throw e;
      const message = e instanceof Error ? e.message : String(e);
      if (/\b407\b/.test(message)) throw proxyAuthError(message);
      throw new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${message}`, { cause: e });
    }
  }

  async close() {
    await Promise.all([this.#send.destroy(), ...this.#polls.map((d) => d.destroy())]);
  }
}

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
};
