/**
 * HoldlineServer: the public face of the server. Validates options once,
 * emits `session` for every session opened (before the client's connect()
 * resolves), and mounts the polling endpoints on a host server without
 * taking it over: `router()` for express (4 or 5, or any connect-style
 * framework), `attach()` / `handler()` for plain node:http.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  encodeEntry,
  HoldlineError,
  isPayload,
  TypedEmitter,
  wireError,
  WS_PATH,
  type Payload,
} from '../shared/index.js';
import { HttpHandler, writeError } from './http-handler.js';
import { resolveOptions, type HoldlineServerOptions, type ResolvedOptions } from './options.js';
import { PollingTransport } from './polling.js';
import { WebSocketTransport } from './websocket.js';
import type { Session } from './session.js';
import { RemoteSession, type SessionHandle } from './remote-session.js';
import { SessionRegistry, type BroadcastResult } from './session-registry.js';
import { gaugesOf, type ServerMetrics, type ServerMetricsSnapshot } from './metrics.js';

export type { BroadcastResult } from './session-registry.js';

export interface HoldlineServerEvents<In extends Payload = Payload, Out extends Payload = Payload, Data = unknown> {
  session: (session: Session<In, Out, Data>) => void;
  /** Errors thrown by application listeners, the auth hook or the store. Without a listener they are logged. */
  error: (err: unknown) => void;
}

export interface AttachOptions {
  /** Mount point, e.g. '/holdline'. Requests outside it are left to the server's other handlers. */
  path?: string;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

/** Takes an 'upgrade' event that is Holdline's (true), or leaves it (false). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;


function normalizePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new HoldlineError('invalid_argument', `option "path" must be a string starting with '/', got ${JSON.stringify(path)}`);
  }
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The part of `url` below `mount`, without the query, or undefined when outside it. */
function below(url: string, mount: string): string | undefined {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  if (mount === '/') return path;
  if (path === mount) return '/';
  return path.startsWith(mount) && path.charCodeAt(mount.length) === 47 /* / */ ? path.slice(mount.length) : undefined;
}

/**
 * `In`, `Out` and `Data` type its sessions (types only, zero cost): `In`
 * what clients send, `Out` what the server sends, `Data` what `authenticate`
 * returns (`session.data`). See Session<In, Out, Data>.
 */
export class HoldlineServer<In extends Payload = Payload, Out extends Payload = Payload, Data = unknown> extends TypedEmitter<HoldlineServerEvents<In, Out, Data>> {
  readonly options: Readonly<ResolvedOptions>;
  readonly #registry: SessionRegistry;
  readonly #http: HttpHandler;
  readonly #detach: Array<() => void> = [];
  #closed = false;

  constructor(options: HoldlineServerOptions<Data> = {}) {
    super();
    this.options = resolveOptions(options);
    this.#registry = new SessionRegistry(this.options, {
      // One Session class at run time; In, Out and Data are the application's types for it.
      session: (s) => this.emit('session', s as unknown as Session<In, Out, Data>),
      error: (e) => {
        if (!this.emit('error', e)) console.error('holdline:', e);
      },
    });
    this.#http = new HttpHandler(this.#registry);
    this.#registry.polling = new PollingTransport(this.#registry, this.#http);
    if (this.options.transports.includes('websocket')) {
      this.#registry.websocket = new WebSocketTransport(this.#registry, (req) => this.#http.originAllowed(req));
    }
  }

  /**
   * A listener for the HTTP server's 'upgrade' event that takes WebSocket
   * upgrades to `path` + '/ws' and returns false for any other (leave it to
   * the server's other 'upgrade' listeners). attach() installs one; use this
   * with express: `server.on('upgrade', (req, socket, head) => hl.upgradeHandler()(req, socket, head))`.
   */
  upgradeHandler(options: AttachOptions = {}): UpgradeHandler {
    const mount = normalizePath(options.path ?? '/holdline');
    return (req, socket, head) => {
      const ws = this.#registry.websocket;
      if (ws === undefined || this.#closed || below(req.url ?? '/', mount) !== WS_PATH) return false;
      ws.upgrade(req, socket, head);
      return true;
    };
  }

  /** This node's id in the store. */
  get nodeId(): string {
    return this.#registry.node;
  }

  /** Open sessions this server owns (with a shared store, each session is owned by one node). */
  get sessionCount(): number {
    return this.#registry.size;
  }

  /** This node's figures: sessions, held polls, messages and bytes each way, acks pending, resets, errors by code, poll-cut ages (README, "Metrics"). */
  metrics(): ServerMetricsSnapshot {
    return this.#registry.metrics.snapshot(gaugesOf(this.#registry));
  }

  /** @internal Counters behind metrics(), for holdline/prometheus. */
  get metricsSource(): ServerMetrics {
    return this.#registry.metrics;
  }

  session(id: string): Session<In, Out, Data> | undefined {
    return this.#registry.owned(id) as unknown as Session<In, Out, Data> | undefined;
  }

  sessions(): IterableIterator<Session<In, Out, Data>> {
    return this.#registry.sessions() as unknown as IterableIterator<Session<In, Out, Data>>;
  }

  /**
   * A connect-style middleware `(req, res, next)` serving the endpoints below
   * where it is mounted: `app.use('/holdline', hl.router())` in Express 4 or
   * 5 (which strip the mount path from `req.url`). It imports nothing from
   * express. Every request that reaches it is Holdline's: unknown paths get
   * a 404 `not_found`.
   */
  router(): RequestHandler {
    return (req, res) => {
      this.#http.handle(req, res, below(req.url ?? '/', '/') ?? '/');
    };
  }

  /**
   * A plain node:http handler for the endpoints under `path`. Requests outside
   * it go to `next` when given, else get a 404.
   */
  handler(options: AttachOptions = {}): RequestHandler {
    const mount = normalizePath(options.path ?? '/holdline');
    return (req, res, next) => {
      const sub = below(req.url ?? '/', mount);
      if (sub !== undefined) return this.#http.handle(req, res, sub);
      if (next) return next();
      writeError(res, wireError('not_found', `no Holdline endpoint at ${req.url ?? ''}`));
    };
  }

  /**
   * Serve the endpoints on an existing node:http server under `path`.
   * The server's other 'request' listeners keep every request outside the
   * path; they are restored by close(). Listeners added after attach() see
   * every request, Holdline's too: add yours first, or call handler() from
   * your own listener.
   */
  attach(server: HttpServer, options: AttachOptions = {}): void {
    this.#checkOpen();
    const handle = this.handler(options);
    const others = server.listeners('request') as RequestHandler[];
    for (const l of others) server.off('request', l);
    let detached = false;
    const passOn = (req: IncomingMessage, res: ServerResponse) => {
      if (others.length === 0) return writeError(res, wireError('not_found', `no Holdline endpoint at ${req.url ?? ''}`));
      for (const l of others) l.call(server, req, res);
    };
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      // Detached while a later attach() holds this listener in its chain: pass everything on.
      if (detached) return passOn(req, res);
      if (others.length === 0) return handle(req, res);
      handle(req, res, () => passOn(req, res));
    };
    server.on('request', listener);
    // WebSocket upgrades to our path only: every other goes to the server's other 'upgrade' listeners.
    const takeUpgrade = this.upgradeHandler(options);
    const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (detached || takeUpgrade(req, socket, head)) return;
      // Nobody else listens: answer rather than leave the socket hanging.
      if (server.listenerCount('upgrade') === 1) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    server.on('upgrade', upgrade);
    this.#detach.push(() => {
      detached = true;
      server.off('upgrade', upgrade);
      if (!server.listeners('request').includes(listener)) return;
      server.off('request', listener);
      for (const l of others) server.on('request', l);
    });
  }

  /**
   * Queue one message (encoded once) to every open session: those this node
   * owns, and with a shared store those of every other node too (each node
   * sends to its own). The result counts this node's sessions.
   */
  async broadcast(data: Payload): Promise<BroadcastResult> {
    this.#checkOpen();
    if (!isPayload(data)) throw new HoldlineError('invalid_argument', `broadcast() takes a string or Uint8Array, got ${typeof data}`);
    return this.#registry.broadcast(encodeEntry(data));
  }

  /**
   * A handle to session `id` wherever it is owned: here, the Session itself;
   * with a shared store, on any node, a RemoteSession whose send() queues to
   * it through the store (and rejects with `session_unknown` if it is gone).
   * `session(id)` returns only sessions this node owns (their events run here).
   */
  remote(id: string): SessionHandle {
    return this.#registry.owned(id) ?? new RemoteSession(id, this.#registry);
  }

  /**
   * Stop serving and detach. With its own store: close every session
   * (`server_shutdown`: clients reconnect and `reset`) and the store. With a
   * shared store (given as an option, which stays open: it is yours to
   * close): hand every session over to the other nodes, nothing lost.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#registry.shutdown();
    this.#registry.websocket?.close();
    for (const d of this.#detach.splice(0)) d();
    if (!this.options.sharedStore) await this.options.store.close?.();
  }

  #checkOpen(): void {
    if (this.#closed) throw new HoldlineError('invalid_state', 'the HoldlineServer is closed');
  }
}
