/**
 * What the client needs from its runtime: a way to POST a text body and read
 * the whole answer, up to a size, and a way to open a WebSocket. Browsers use
 * fetch and the native WebSocket (platform.browser.ts); Node uses undici's
 * dispatch API on connections of its own, and `ws` (platform.node.ts).
 * Everything else in client/ is the same code on both.
 */
import type { HoldlineError } from '../shared/index.js';
import type { ProxySetting } from './options.js';

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface RequesterOptions {
  /** false: a new connection per request (Node only; browsers decide for themselves). */
  keepAlive: boolean;
  /** Explicit proxy (Node only): a URL, { url, username, password, domain } or { pac }. Overrides HTTP(S)_PROXY. */
  proxy: ProxySetting | undefined;
}

/**
 * Polls and everything else travel on separate connections where the runtime
 * lets us choose (Node), so a poll never waits behind a send. Sends use one
 * connection; polls use one, and a second only while an early poll (see
 * NEXT_HEADER) goes out as a large answer is still being read.
 */
export type Lane = 'poll' | 'send';

/** A response's status and headers, before its body. */
export interface ResponseHead {
  readonly status: number;
  /** One header by name (any case); undefined when absent. */
  header(name: string): string | undefined;
}

/** Sees a response's head before its body (an object, not a closure: one is made per poll). */
export interface HeadListener {
  /** True when it started another request. */
  onHead(head: ResponseHead): boolean;
}

export interface HttpRequester {
  /**
   * POST `body` to `url`. Resolves with any HTTP answer (2xx or not); rejects
   * with a HoldlineError: `network_error` when no answer came, `timeout`/abort
   * per `signal`, `proxy_auth_required` when a proxy wants credentials,
   * `bad_response` when the body is longer than `maxBodyBytes` bytes (by its
   * Content-Length, or as it streams in: reading stops there and the
   * connection is dropped, so a hostile server cannot make the client buffer
   * without bound).
   * `listener.onHead` is called once the status and headers are in, before
   * the body is read; it returns true when it started another request, which
   * the requester then lets go out before its caller works on this answer.
   */
  post(url: string, body: string, signal: AbortSignal, lane: Lane, maxBodyBytes: number, listener?: HeadListener): Promise<HttpAnswer>;
  close(): Promise<void>;
}

/** What a WebSocket tells its owner (an object, not closures: one per connection). */
export interface WebSocketHandlers {
  /** The upgrade was accepted: the connection is open. */
  onOpen(): void;
  /** One message: a text frame as a string, a binary frame as its bytes. */
  onMessage(data: string | Uint8Array): void;
  /**
   * The connection is gone (called once, after onOpen or instead of it).
   * `error` says why when it failed rather than closed: `network_error`
   * (refused, reset, an HTTP answer instead of the upgrade: `status` set
   * where the runtime tells it), `proxy_auth_required`, `bad_response` (a
   * frame over `maxPayload`).
   */
  onClose(code: number, reason: string, error: HoldlineError | undefined): void;
}

/** One open (or opening) WebSocket, the same on both runtimes. */
export interface WebSocketConnection {
  /** Bytes handed to send() and not yet written to the network. */
  readonly bufferedAmount: number;
  /** A string goes as a text frame, bytes as a binary frame. Ignored unless open. */
  send(data: string | Uint8Array): void;
  /** send() each, in order, written to the network together where the runtime allows (Node: one write). */
  sendAll(data: readonly (string | Uint8Array)[]): void;
  /** The closing handshake with this code (1000, or 4000-4999). */
  close(code: number, reason: string): void;
  /** Drop the connection at once, no handshake (it is dead or unwanted). */
  terminate(): void;
}

export interface WebSocketOptions {
  /** Explicit proxy (Node only), as RequesterOptions.proxy; else HTTP(S)_PROXY / NO_PROXY. */
  proxy: ProxySetting | undefined;
  /** A larger frame fails the connection (Node only; browsers cap frames themselves). */
  maxPayload: number;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  createRequester(options: RequesterOptions): HttpRequester;
  /**
   * Open a WebSocket to `url` (ws: or wss:). Absent: the platform has none,
   * and the client stays on polling.
   */
  openWebSocket?(url: string, handlers: WebSocketHandlers, options: WebSocketOptions): WebSocketConnection;
  /** Call `fn` whenever the runtime says the network is back (the browser's `online` event); returns an unsubscribe. */
  onNetworkBack?(fn: () => void): () => void;
}
