/**
 * HoldlineClient: one isomorphic client (browser and Node). This file is its
 * public face: it checks its arguments, binds the layers together, and keeps
 * application listeners from hurting the client.
 *
 *   HoldlineClientCore   public API, events; every listener runs wrapped
 *     SessionMachine     state, reliable stream both ways, open/reset/close, back-off
 *       TransportSwitcher  carries a session on polling or a WebSocket, and moves it between them
 *         Transport      moves batches: PollingTransport (poll loop, hold, early polls, sends),
 *                        WebSocketTransport (hello, header + frames both ways, liveness)
 *         HttpExchange   one request with a deadline and a size cap, its failure classified (shared/reaction.ts)
 *           Platform     fetch in browsers, undici in Node (platform.browser.ts, platform.node.ts)
 *
 * client/index.ts and client/browser.ts bind the platform.
 */
import { HoldlineError, RpcPeer, TypedEmitter, WS_PATH, type Payload, type RequestListener, type RequestOptions } from '../shared/index.js';
import type { ClientEvents, ClientState, ClientStats, Emit, TransportName } from './events.js';
import { HttpExchange } from './http-exchange.js';
import { endpointUrl, resolveBaseUrl, resolveClientOptions, type HoldlineClientOptions, type ResolvedClientOptions } from './options.js';
import type { Platform } from './platform.js';
import { PollingTransport } from './polling-transport.js';
import type { SessionState } from './session-state.js';
import { PageContinuity } from './page-continuity.js';
import { SessionMachine } from './session-machine.js';
import { TransportSwitcher } from './transport-switcher.js';
import { WebSocketTransport } from './websocket-transport.js';

export type { ClientEvents, ClientState, ClientStats, OpenEvent, ReconnectingEvent, ResetEvent, TransportEvent, TransportName } from './events.js';

/** Any of the client's listeners, as the safe wrapper calls it (no event has more than two arguments). */
type Listener = (a?: unknown, b?: unknown) => unknown;

/**
 * `In` and `Out` type the payloads (zero cost: types only, nothing is
 * checked at run time): `In` what the server sends (messages, its requests'
 * data, the replies to this client's requests), `Out` what this client
 * sends. E.g. `HoldlineClient<ServerText, ClientText>` with string literal
 * or template literal types.
 */
export class HoldlineClientCore<In extends Payload = Payload, Out extends Payload = Payload> extends TypedEmitter<ClientEvents<In, Out>> {
  readonly url: string;
  readonly options: Readonly<ResolvedClientOptions>;
  readonly #machine: SessionMachine;
  /** Requests both ways (shared/rpc.ts): its frames ride the machine's stream. */
  readonly #rpc: RpcPeer;
  #switcher: TransportSwitcher | undefined;
  /** `request` listeners (copied on write: the RpcPeer reads them per request). */
  #requestListeners: readonly RequestListener[] = [];
  /** Page Lifecycle, and reload continuity with `resume: 'session'` (page-continuity.ts). */
  readonly #page: PageContinuity;
  /** Each listener's safe wrapper, per event: off() finds it by the listener that on() was given. */
  readonly #wrappers = new WeakMap<Listener, Map<keyof ClientEvents, Listener>>();

  constructor(url: string, options: HoldlineClientOptions | undefined, platform: Platform) {
    super();
    this.url = resolveBaseUrl(url, 'HoldlineClient');
    const o = (this.options = resolveClientOptions(options));
    const exchange = new HttpExchange(this.url, platform.createRequester({ keepAlive: o.keepAlive, proxy: o.proxy }));
    const polling = {
      holdMs: o.holdMs, pollGraceMs: o.pollGraceMs, requestTimeoutMs: o.requestTimeoutMs,
      minDelayMs: o.minDelayMs, maxDelayMs: o.maxDelayMs,
    };
    const websocket = {
      url: endpointUrl(this.url, WS_PATH).replace(/^http/, 'ws'),
      proxy: o.proxy,
      openTimeoutMs: o.requestTimeoutMs,
      graceMs: o.pollGraceMs,
    };
    const openWebSocket = platform.openWebSocket?.bind(platform);
    this.#rpc = new RpcPeer({
      send: (entry) => this.#machine.sendFrame(entry),
      listeners: () => this.#requestListeners,
      report: (e) => this.#listenerFailed('request', 'failed', e),
    });
    this.#machine = new SessionMachine({
      rpc: this.#rpc,
      options: o,
      exchange,
      // The machine emits untyped payloads; In and Out are the application's types for them.
      emit: this.emit.bind(this) as unknown as Emit,
      createTransport: (host) => (this.#switcher = new TransportSwitcher(host, {
        transports: o.transports,
        minDelayMs: o.minDelayMs,
        maxDelayMs: o.maxDelayMs,
        polling: new PollingTransport(host, exchange, polling),
        createWebSocket: openWebSocket && ((events) => new WebSocketTransport(host, openWebSocket, websocket, events)),
        onSwitch: (e) => this.emit('transport', e),
      })),
      onNetworkBack: platform.onNetworkBack?.bind(platform),
    });
    this.#page = new PageContinuity(this.url, o.resume === 'session', this);
    this.on('close', () => this.#page.detach());
  }

  /** The transport carrying the session: 'polling' or 'websocket' (see the `transports` option). */
  get transport(): TransportName {
    return this.#switcher?.current ?? 'polling';
  }

  get state(): ClientState {
    return this.#machine.state;
  }

  get sessionId(): string | undefined {
    return this.#machine.current?.sid;
  }

  /** Payload bytes sent (or queued) and not yet acknowledged by the server. */
  get bufferedAmount(): number {
    return this.#machine.bufferedAmount;
  }

  /** Payload bytes queued by send() and not yet written to the network (a subset of bufferedAmount). */
  get queuedAmount(): number {
    return this.#machine.queuedAmount;
  }

  get stats(): Readonly<ClientStats> {
    const m = this.#machine;
    return { ...m.stats, acksPending: m.outboundPending, errors: { ...m.stats.errors }, pollCutAgesMs: [...m.stats.pollCutAgesMs] };
  }

  /** Open a session. Resolves once open; rejects on a fatal error, close(), or connectTimeoutMs. */
  connect(): Promise<void> {
    if (this.state !== 'idle') return this.#machine.connect();
    this.#page.attach();
    const saved = this.#page.take();
    return saved ? this.#machine.resume(saved) : this.#machine.connect();
  }

  /** Queue a message. Resolves once queued (waits while bufferedAmount is over maxBufferedBytes). */
  send(data: Out): Promise<void> {
    return this.#machine.send(data);
  }

  /**
   * Ask the server and wait for its reply: `session.on('request', …)`
   * answers it. Rides the session's stream like send() (exactly once,
   * across reconnects of one session). Rejects with `timeout`
   * (options.timeoutMs, default 30 s), `aborted` (options.signal),
   * `request_failed` (the server's listener failed, or there is none: see
   * `replyCode`), `session_lost` (a `reset`: the new session knows nothing
   * of it), or why the client closed.
   */
  request(data: Out, options?: RequestOptions): Promise<In> {
    const s = this.#machine.state;
    return this.#rpc.request(data, options, s === 'closing' || s === 'closed' ? this.#machine.closedError('request()') : undefined) as Promise<In>;
  }

  /** Send what is queued (briefly), tell the server, and close. Unacknowledged messages go to the 'close' event. */
  close(): Promise<void> {
    this.#page.forget();
    return this.#machine.close();
  }

  // ---- continuity (session-state.ts): another client, or this page reloaded, goes on with the session ----

  /** Instead of connect(): go on with the session `state` describes ('open' with resumed: true, or a 'reset' if it is gone). */
  resume(state: SessionState): Promise<void> {
    return this.#machine.resume(state);
  }

  /** The session as it stands (credential, positions, unacknowledged messages), for another client to resume. */
  exportState(): SessionState | undefined {
    return this.#machine.exportState(this.url);
  }

  /** Stop without ending the session on the server; returns its state for whoever resumes it. */
  detach(): SessionState | undefined {
    return this.#machine.detach(this.url);
  }

  /** The page came back (a freeze, the background): check the poll now. */
  revalidate(): void {
    this.#machine.revalidate();
  }

  /** Number of the last message queued in the session's stream (0: none). */
  get outboundSeq(): number {
    return this.#machine.outboundLastSeq;
  }

  // ---- listeners: application code, so each one runs wrapped ----

  /**
   * A listener that throws, or returns a promise that rejects, is reported
   * through 'error' (console.error when nobody listens for it, or when it was
   * an 'error' listener); the client and the other listeners go on.
   */
  override on<K extends keyof ClientEvents<In, Out>>(event: K, fn: ClientEvents<In, Out>[K]): this {
    // Request listeners run under the RpcPeer, which turns a throw into an error reply.
    if (event === 'request') {
      this.#requestListeners = [...this.#requestListeners, fn as RequestListener];
      return this;
    }
    return super.on(event, this.#safe(event, fn as Listener) as ClientEvents<In, Out>[K]);
  }

  override off<K extends keyof ClientEvents<In, Out>>(event: K, fn: ClientEvents<In, Out>[K]): this {
    if (event === 'request') {
      const i = this.#requestListeners.indexOf(fn as RequestListener);
      if (i >= 0) this.#requestListeners = this.#requestListeners.filter((_l, j) => j !== i);
      return this;
    }
    const wrapped = this.#wrappers.get(fn as Listener)?.get(event);
    return super.off(event, (wrapped ?? fn) as ClientEvents<In, Out>[K]);
  }

  override once<K extends keyof ClientEvents<In, Out>>(event: K, fn: ClientEvents<In, Out>[K]): this {
    const call = fn as Listener;
    const once: Listener = (a, b) => {
      this.off(event, once as ClientEvents<In, Out>[K]);
      return call(a, b);
    };
    return this.on(event, once as ClientEvents<In, Out>[K]);
  }

  #safe(event: keyof ClientEvents, fn: Listener): Listener {
    let byEvent = this.#wrappers.get(fn);
    if (!byEvent) this.#wrappers.set(fn, (byEvent = new Map()));
    let safe = byEvent.get(event);
    if (!safe) {
      const rejected = (e: unknown) => this.#listenerFailed(event, 'rejected', e);
      safe = (a, b) => {
        let r: unknown;
        try {
          r = fn(a, b);
        } catch (e) {
          this.#listenerFailed(event, 'threw', e);
          return;
        }
        if (typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function') {
          (r as PromiseLike<unknown>).then(undefined, rejected);
        }
      };
      byEvent.set(event, safe);
    }
    return safe;
  }

  #listenerFailed(event: keyof ClientEvents, how: string, e: unknown): void {
    const err = new HoldlineError('listener_error', `a '${event}' listener ${how}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    if (event === 'error' || this.listenerCount('error') === 0) console.error('holdline:', err);
    else this.emit('error', err);
  }
}
