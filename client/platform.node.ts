/**
 * Node platform: every request goes through undici's dispatch API (plain
 * http, https, proxied alike) on dispatchers owned by this client (not the
 * global fetch pool: a fetch round trip costs ~0.6 ms more, and one shared
 * pool makes many clients in one process pay for each other). HTTP framing is
 * undici's job: it checks an idle socket before reusing it, and rejects the
 * malformed answers a hand-written parser would have to relearn to reject.
 *
 * A request that dies on its connection before any of its answer arrived
 * (the server or a middlebox closed or reset the socket) is sent once more at
 * once, on a fresh connection: every Holdline request is safe to repeat (seq
 * and ack de-duplicate sends, an open carries its `attempt` id, a session has
 * one poll), so the client does not back off and go `reconnecting` for a
 * keep-alive connection that was closed under it.
 *
 * An answer longer than the caller's `maxBodyBytes` (by its Content-Length,
 * or as its body streams in) is `bad_response`: the request is aborted at
 * that point, which makes undici drop the connection, so a hostile server
 * cannot make the client buffer without bound.
 *
 * Proxies: the `proxy` option, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either
 * case, as curl reads them). An http:// server is reached through an http://
 * proxy with ordinary absolute-form requests (`POST http://host/path`), not a
 * CONNECT tunnel, which most proxies allow only to port 443; https:// goes
 * through CONNECT. Credentials come from the proxy URL (user:pass@, Basic).
 *
 * WebSockets: `ws`, on a connection of its own. Where a proxy applies (the
 * same choice as for requests: the `proxy` option or HTTP(S)_PROXY, and
 * NO_PROXY), the connection is a CONNECT tunnel through it (both ws: and
 * wss:; a proxy that refuses CONNECT to the port makes the WebSocket fail,
 * and the client stays on polling), made here on node:http's CONNECT
 * support, with the proxy URL's credentials as Basic Proxy-Authorization.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import { Client, EnvHttpProxyAgent, errors, type Dispatcher } from 'undici';
import { WebSocket, type RawData } from 'ws';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type {
  HeadListener, HttpAnswer, HttpRequester, Lane, Platform, RequesterOptions, ResponseHead,
  WebSocketConnection, WebSocketHandlers, WebSocketOptions,
} from './platform.js';

const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];

/** An idle connection closes after this, before a server's idle timeout (node's default: 5 s) can race a request. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

const CLIENT_OPTIONS = {
  // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
};

/**
 * The error codes of a connection lost under a request: the peer closed it
 * (undici's SocketError, "other side closed"), reset it, or it broke while the
 * request was being written. Not our own abort or deadline, not a refused or
 * timed-out connect (nothing to gain from trying again at once).
 */
const CONNECTION_LOST = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

function isConnectionLost(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = err.code;
  return typeof code === 'string' && CONNECTION_LOST.has(code);
}

/**
 * What undici does not tell in its error for a refused CONNECT tunnel (a
 * RequestAbortedError whose only trace of the status is its message): the
 * status of the last CONNECT answer a proxy gave, noted by ProxyClient.
 */
interface TunnelStatus {
  last: number;
}

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

function proxyAuthError(detail: string): HoldlineError {
  return new HoldlineError(
    'proxy_auth_required',
    `the proxy requires authentication (${detail}); put credentials in the proxy URL (http://user:pass@host:port) or the "proxy" option`,
  );
}

/** As a flat list: undici takes it as it is (an object costs an Object.keys() per request). */
const REQUEST_HEADERS = ['content-type', REQUEST_CONTENT_TYPE];

/** The send lane's dispatcher, and the poll lane's two. */
interface Lanes {
  send: Dispatcher;
  polls: [Dispatcher, Dispatcher];
}

/** A URL split the way undici's dispatch() takes it, with its dispatchers, cached: a client posts to four URLs. */
interface Target {
  url: string;
  origin: string;
  path: string;
  lanes: Lanes;
  /** Set when the lanes go through a proxy. */
  tunnel: TunnelStatus | undefined;
}

/**
 * A proxy that wants credentials, told by undici's error class or the status
 * it saw, never by the wording of a message:
 * - an http:// server through the proxy (absolute-form requests): undici's
 *   proxy wrapper answers a 407 with an InvalidArgumentError, the only one
 *   it delivers after a request was accepted (bad arguments throw from
 *   dispatch(), which the caller catches before any of this);
 * - https:// (a CONNECT tunnel): a RequestAbortedError when the proxy did not
 *   answer the CONNECT with 200; ProxyClient noted which status it was.
 */
function isProxyAuthRefusal(e: unknown, tunnel: TunnelStatus | undefined): boolean {
  if (tunnel === undefined) return false;
  if (e instanceof errors.InvalidArgumentError) return true;
  return e instanceof errors.RequestAbortedError && tunnel.last === 407;
}

function toRequestError(e: unknown, url: string, signal: AbortSignal): HoldlineError {
  if (e instanceof HoldlineError) return e;
  const message = e instanceof Error ? e.message : String(e);
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

/** Polls in flight on each of the poll lane's two dispatchers. */
type PollSlots = [number, number];

/**
 * One exchange through undici's dispatch(), with a handler of our own that
 * collects the body: undici's request() adds a stream, a promise chain and a
 * text decoder per request (measured: ~90 us more client CPU per 110 KB poll
 * answer on the bench machine). It also sends its request once more when the
 * connection is lost before any answer (see the top of this file).
 */
class Exchange implements Dispatcher.DispatchHandler, ResponseHead {
  readonly #resolve: (a: HttpAnswer) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: AbortSignal;
  readonly #listener: HeadListener | undefined;
  readonly #target: Target;
  readonly #dispatcher: Dispatcher;
  readonly #body: string;
  readonly #reset: boolean;
  readonly #maxBodyBytes: number;
  #bodyBytes = 0;
  /** The poll slot it holds (a count in `#slots`), or -1 (a send). */
  readonly #slot: 0 | 1 | -1;
  readonly #slots: PollSlots;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  /** Any answer (a 1xx too) began: from then on a lost connection is an error, not a reason to send again. */
  #answered = false;
  #resent = false;
  #status = 0;
  #chunks: Buffer[] = [];
  /** The listener started another request: let it go out before we settle (see onResponseEnd). */
  #yield = false;
  #settled = false;

  constructor(
    target: Target,
    dispatcher: Dispatcher,
    body: string,
    reset: boolean,
    maxBodyBytes: number,
    signal: AbortSignal,
    listener: HeadListener | undefined,
    slots: PollSlots,
    slot: 0 | 1 | -1,
    resolve: (a: HttpAnswer) => void,
    reject: (e: unknown) => void,
  ) {
    this.#target = target;
    this.#dispatcher = dispatcher;
    this.#body = body;
    this.#reset = reset;
    this.#maxBodyBytes = maxBodyBytes;
    this.#signal = signal;
    this.#listener = listener;
    this.#slots = slots;
    this.#slot = slot;
    this.#resolve = resolve;
    this.#reject = reject;
    if (slot !== -1) slots[slot]++;
    watch(signal, this);
  }

  /** Hands the request to its dispatcher (again, for a resend). */
  start(): void {
    const t = this.#target;
    try {
      this.#dispatcher.dispatch({ origin: t.origin, path: t.path, method: 'POST', body: this.#body, headers: REQUEST_HEADERS, reset: this.#reset }, this);
    } catch (e) {
      this.#fail(e);
    }
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

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.#answered = true;
    if (status < 200) return; // 1xx: the real answer follows
    this.#status = status;
    this.#headers = headers;
    const length = Number(this.header('content-length') ?? NaN);
    if (length > this.#maxBodyBytes) return this.#tooLarge(controller, `Content-Length ${length}`);
    this.#yield = this.#listener?.onHead(this) === true;
  }

  /** The answer is over maxBodyBytes: fail with bad_response and abort, which drops the connection. */
  #tooLarge(controller: Dispatcher.DispatchController, seen: string): void {
    const err = new HoldlineError('bad_response', `the answer to POST ${this.#target.url} is larger than ${this.#maxBodyBytes} bytes (${seen}): not read`);
    this.#chunks = [];
    this.#fail(err);
    controller.abort(err);
  }

  get status(): number {
    return this.#status;
  }

  header(name: string): string | undefined {
    const v = this.#headers?.[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes > this.#maxBodyBytes) return this.#tooLarge(controller, `${this.#bodyBytes} bytes so far`);
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    if (this.#status === 407) return this.#fail(proxyAuthError('407'));
    const chunks = this.#chunks;
    let body = '';
    if (chunks.length === 1) body = String(chunks[0]);
    else if (chunks.length > 1) {
      // Decoded piece by piece rather than joined first: no copy of the body as bytes.
      const decoder = new StringDecoder('utf8');
      for (const c of chunks) body += decoder.write(c);
      body += decoder.end();
    }
    const answer = { status: this.#status, body };
    // undici writes a request on a reused socket one event-loop turn later
    // (setImmediate: it first checks the idle socket). If the listener started
    // one there, let that turn pass before the caller works on this answer.
    if (this.#yield) setImmediate(() => this.#done(answer));
    else this.#done(answer);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (!this.#resent && !this.#answered && !this.#settled && !this.#signal.aborted && isConnectionLost(err)) {
      this.#resent = true;
      this.#controller = undefined;
      // Out of undici's error path first: it is still failing the queue of the lost connection.
      queueMicrotask(() => {
        if (!this.#settled) this.start();
      });
      return;
    }
    this.#fail(isProxyAuthRefusal(err, this.#target.tunnel) ? proxyAuthError('407') : err);
  }

  #done(answer: HttpAnswer): void {
    if (this.#settle()) this.#resolve(answer);
  }

  #fail(err: unknown): void {
    if (this.#settle()) this.#reject(toRequestError(err, this.#target.url, this.#signal));
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    inFlight.get(this.#signal)?.delete(this);
    if (this.#slot !== -1) this.#slots[this.#slot]--;
    return true;
  }
}

class UndiciRequester implements HttpRequester {
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

// ---- WebSockets ----

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 };

/**
 * The proxy for `target`, or undefined: the same choice undici's
 * EnvHttpProxyAgent makes for requests (the `proxy` option, else
 * http_proxy/HTTP_PROXY, https_proxy/HTTPS_PROXY falling back to it; hosts in
 * no_proxy/NO_PROXY, with or without a port, and their subdomains, go direct).
 */
export function proxyFor(target: URL, option: string | undefined): URL | undefined {
  const env = process.env;
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  const httpProxy = option ?? env.http_proxy ?? env.HTTP_PROXY;
  const chosen = secure ? (option ?? env.https_proxy ?? env.HTTPS_PROXY ?? httpProxy) : httpProxy;
  if (!chosen) return undefined;
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? '';
  const hostname = target.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 0;
  const entries = noProxy.split(/[,\s]/).filter((e) => e !== '');
  if (noProxy === '*') return undefined;
  for (const entry of entries) {
    const m = /^(.+):(\d+)$/.exec(entry);
    const host = (m?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase();
    const entryPort = m?.[2] === undefined ? 0 : Number.parseInt(m[2], 10);
    if (entryPort !== 0 && entryPort !== port) continue;
    if (hostname === host || hostname.endsWith(`.${host}`)) return undefined;
  }
  try {
    return new URL(chosen);
  } catch {
    return undefined;
  }
}

/**
 * A CONNECT tunnel to `host:port` (host as in a URL: IPv6 in brackets)
 * through `proxy`, with Basic Proxy-Authorization from its user:pass@.
 * Rejects with proxy_auth_required on a 407, network_error otherwise.
 */
function connectTunnel(proxy: URL, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const authority = `${host}:${port}`;
    const headers: Record<string, string> = { host: authority };
    if (proxy.username !== '' || proxy.password !== '') {
      const user = decodeURIComponent(proxy.username);
      const pass = decodeURIComponent(proxy.password);
      headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const secureProxy = proxy.protocol === 'https:';
    const req = (secureProxy ? https : http).request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number.parseInt(proxy.port, 10) || (secureProxy ? 443 : 80),
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
      signal,
    });
    req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(status === 407
        ? proxyAuthError('407 to CONNECT')
        : new HoldlineError('network_error', `the proxy refused CONNECT ${authority} (HTTP ${status})`, { status }));
    });
    // A proxy that answers CONNECT with a body-bearing non-2xx comes as 'response' on some versions.
    req.once('response', (res: http.IncomingMessage) => {
      res.resume();
      const status = res.statusCode ?? 0;
      reject(status === 407 ? proxyAuthError('407 to CONNECT') : new HoldlineError('network_error', `the proxy refused CONNECT ${authority} (HTTP ${status})`, { status }));
    });
    req.once('error', (e) => reject(e instanceof HoldlineError ? e : new HoldlineError('network_error', `CONNECT ${authority} through the proxy failed: ${e.message}`, { cause: e })));
    req.end();
  });
}

function wsText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return data instanceof ArrayBuffer ? Buffer.from(data).toString('utf8') : data.toString('utf8');
}

function wsBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function wsError(e: Error, status: number | undefined): HoldlineError {
  if (e instanceof HoldlineError) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return new HoldlineError('bad_response', `a WebSocket frame over the size limit: ${e.message}`, { cause: e });
  return new HoldlineError('network_error', `WebSocket: ${e.message}`, status === undefined ? { cause: e } : { cause: e, status });
}

/** A `ws` WebSocket, opened directly or (once the tunnel is up) through a proxy. */
class NodeWebSocket implements WebSocketConnection {
  #ws: WebSocket | undefined;
  /** The connection under it: corked around sendAll(). */
  #socket: net.Socket | undefined;
  /** The owner closed it, or it is gone. */
  #closed = false;
  /** onClose was called. */
  #reported = false;
  /** Ends a CONNECT still under way. */
  readonly #abort = new AbortController();
  readonly #handlers: WebSocketHandlers;

  constructor(url: string, handlers: WebSocketHandlers, options: WebSocketOptions) {
    this.#handlers = handlers;
    let target: URL;
    try {
      target = new URL(url);
    } catch (e) {
      queueMicrotask(() => this.#gone(1006, '', wsError(e instanceof Error ? e : new Error(String(e)), undefined)));
      return;
    }
    const proxy = proxyFor(target, options.proxy);
    if (proxy === undefined) {
      this.#open(url, options, undefined);
      return;
    }
    const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 80;
    connectTunnel(proxy, target.hostname, port, this.#abort.signal).then(
      (socket) => {
        if (this.#closed) {
          socket.destroy();
          return;
        }
        const secure = target.protocol === 'wss:';
        const host = target.hostname.replace(/^\[|\]$/g, '');
        // The certificate is checked against `host`; SNI is for names only.
        this.#open(url, options, secure ? tls.connect({ socket, host, ...(net.isIP(host) === 0 ? { servername: host } : {}) }) : socket);
      },
      (e: unknown) => this.#gone(1006, '', e instanceof HoldlineError ? e : new HoldlineError('network_error', String(e), { cause: e })),
    );
  }

  #open(url: string, options: WebSocketOptions, tunnel: net.Socket | undefined): void {
    // The socket made here (as ws would make it), so that sendAll() can cork it.
    // (Typed as net.createConnection, whose other forms ws never uses.)
    const connect = (o: net.NetConnectOpts | number | string): net.Socket => {
      if (tunnel !== undefined) return (this.#socket = tunnel);
      if (typeof o !== 'object') throw new TypeError('ws connects with an options object');
      if (url.startsWith('wss:')) {
        const opts = o as tls.ConnectionOptions;
        const host = opts.host ?? '';
        return (this.#socket = tls.connect({ ...opts, servername: opts.servername ?? (net.isIP(host) === 0 ? host : '') }));
      }
      return (this.#socket = net.connect(o));
    };
    const ws = (this.#ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: options.maxPayload,
      createConnection: connect,
    }));
    const h = this.#handlers;
    let status: number | undefined;
    let error: HoldlineError | undefined;
    ws.on('open', () => h.onOpen());
    ws.on('message', (data: RawData, isBinary: boolean) => h.onMessage(isBinary ? wsBytes(data) : wsText(data)));
    ws.on('unexpected-response', (_req, res) => {
      // An HTTP answer instead of the upgrade (a 404 from a server without WebSockets, a proxy's page).
      status = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.on('error', (e: Error) => {
      error ??= status === undefined ? wsError(e, undefined) : new HoldlineError('network_error', `the WebSocket upgrade was answered HTTP ${status}`, { status });
    });
    ws.on('close', (code: number, reason: Buffer) => this.#gone(code, reason.toString('utf8'), error));
  }

  #gone(code: number, reason: string, error: HoldlineError | undefined): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#closed = true;
    this.#ws = undefined;
    this.#socket = undefined;
    this.#handlers.onClose(code, reason, error);
  }

  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  send(data: string | Uint8Array): void {
    const ws = this.#ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(data, { binary: typeof data !== 'string' });
  }

  sendAll(data: readonly (string | Uint8Array)[]): void {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    // One write for the whole batch instead of one per frame.
    const socket = this.#socket;
    socket?.cork();
    for (const d of data) ws.send(d, { binary: typeof d !== 'string' });
    socket?.uncork();
  }

  close(code: number, reason: string): void {
    this.#closed = true;
    const ws = this.#ws;
    if (ws === undefined) return this.#stop();
    ws.close(code, reason);
  }

  terminate(): void {
    this.#closed = true;
    const ws = this.#ws;
    if (ws === undefined) return this.#stop();
    ws.terminate();
  }

  /** Closed before the socket existed (a CONNECT under way). */
  #stop(): void {
    this.#abort.abort();
    this.#gone(1006, '', new HoldlineError('network_error', 'the WebSocket was closed before it opened'));
  }
}

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
  openWebSocket: (url, handlers, options) => new NodeWebSocket(url, handlers, options),
};
