/**
 * What the client needs from its runtime: a way to POST a text body and read
 * the whole answer, up to a size. Browsers use fetch (platform.browser.ts);
 * Node uses undici's dispatch API on connections of its own (platform.node.ts).
 * Everything else in client/ is the same code on both.
 */
export interface HttpAnswer {
  status: number;
  body: string;
}

export interface RequesterOptions {
  /** false: a new connection per request (Node only; browsers decide for themselves). */
  keepAlive: boolean;
  /** Explicit proxy URL (Node only), e.g. http://user:pass@proxy:3128. Overrides HTTP(S)_PROXY. */
  proxy: string | undefined;
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

export interface Platform {
  readonly name: 'node' | 'browser';
  createRequester(options: RequesterOptions): HttpRequester;
  /** Call `fn` whenever the runtime says the network is back (the browser's `online` event); returns an unsubscribe. */
  onNetworkBack?(fn: () => void): () => void;
}
