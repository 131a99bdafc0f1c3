/**
 * What the client needs from its runtime: a way to POST a text body and read
 * the whole answer. Browsers use fetch (platform.browser.ts); Node uses
 * undici's request API on a dispatcher of its own (platform.node.ts).
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
 * lets us choose (Node): one connection each, so a poll never waits behind a
 * send and a new poll reuses the socket the last one just freed.
 */
export type Lane = 'poll' | 'send';

export interface HttpRequester {
  /**
   * POST `body` to `url`. Resolves with any HTTP answer (2xx or not); rejects
   * with a HoldlineError: `network_error` when no answer came, `timeout`/abort
   * per `signal`, `proxy_auth_required` when a proxy wants credentials.
   */
  post(url: string, body: string, signal: AbortSignal, lane: Lane): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  createRequester(options: RequesterOptions): HttpRequester;
  /** Call `fn` whenever the runtime says the network is back (the browser's `online` event); returns an unsubscribe. */
  onNetworkBack?(fn: () => void): () => void;
}
