/** WebSockets in Node: `ws`, on a connection of its own, directly or through a proxy's CONNECT tunnel. */
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import { HoldlineError } from '../../shared/index.js';
import type { WebSocketConnection, WebSocketHandlers, WebSocketOptions } from '../platform.js';
import { ProxyAuth } from './proxy-auth.js';
import { DEFAULT_PORTS, endpointFor, type ProxyEndpoint } from './proxy-config.js';
import { PacRouter } from './proxy-pac.js';
import { openTunnel } from './tunnel.js';

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
export class NodeWebSocket implements WebSocketConnection {
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
    const setting = options.proxy;
    if (typeof setting === 'object' && 'pac' in setting) {
      // The PAC file is asked about the http(s) form of the URL, as for requests.
      const asked = new URL(url.replace(/^ws/, 'http'));
      new PacRouter(setting.pac, setting).route(asked).then(
        (proxy) => this.#through(url, target, options, proxy),
        (e: unknown) => this.#gone(1006, '', e instanceof HoldlineError ? e : new HoldlineError('network_error', String(e), { cause: e })),
      );
      return;
    }
    this.#through(url, target, options, endpointFor(target, setting));
  }

  #through(url: string, target: URL, options: WebSocketOptions, proxy: ProxyEndpoint | undefined): void {
    if (this.#closed) return;
    if (proxy === undefined) {
      this.#open(url, options, undefined);
      return;
    }
    const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 80;
    openTunnel(proxy, new ProxyAuth(proxy.creds), target.hostname, port, this.#abort.signal).then(
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
