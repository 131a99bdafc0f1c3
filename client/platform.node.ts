/**
 * Node platform: undici's request API on a dispatcher owned by this client
 * (not the global fetch pool: a fetch round trip costs ~0.6 ms more, and one
 * shared pool makes many clients in one process pay for each other).
 *
 * Proxies: the `proxy` option, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either
 * case, as curl reads them). An http:// server is reached through an http://
 * proxy with ordinary absolute-form requests (`POST http://host/path`), not a
 * CONNECT tunnel, which most proxies allow only to port 443; https:// goes
 * through CONNECT. Credentials come from the proxy URL (user:pass@, Basic).
 */
import { Agent, EnvHttpProxyAgent, type Dispatcher, request } from 'undici';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HttpRequester, Lane, OnHeaders, Platform, RequesterOptions } from './platform.js';

const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];

function createDispatcher(options: RequesterOptions, connections: number): Dispatcher {
  const agentOptions = {
    // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    // Few connections per lane: the next request waits the microseconds it
    // takes the last one to free its socket instead of opening another
    // connection (which then idles out and is reopened, over and over). The
    // poll lane has two for early polls, opened only when one is needed.
    connections,
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

class UndiciRequester implements HttpRequester {
  readonly #lanes: Record<Lane, Dispatcher>;
  readonly #keepAlive: boolean;

  constructor(options: RequesterOptions) {
    this.#keepAlive = options.keepAlive;
    this.#lanes = { poll: createDispatcher(options, 2), send: createDispatcher(options, 1) };
  }

  async post(url: string, body: string, signal: AbortSignal, lane: Lane, onHeaders?: OnHeaders) {
    try {
      const res = await request(url, {
        method: 'POST',
        body,
        headers: { 'content-type': REQUEST_CONTENT_TYPE },
        dispatcher: this.#lanes[lane],
        signal,
        reset: !this.#keepAlive,
      });
      const headers = res.headers;
      const started = onHeaders?.(res.statusCode, (name) => {
        const v = headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      });
      // undici writes a request on a reused socket one event-loop turn later
      // (setImmediate: it first checks the idle socket). Let that turn pass
      // before reading this body, or the request waits for all that follows.
      if (started) await new Promise<void>((resolve) => setImmediate(resolve));
      const text = await res.body.text();
      if (res.statusCode === 407) throw proxyAuthError('407');
      return { status: res.statusCode, body: text };
    } catch (e) {
      if (e instanceof HoldlineError) throw e;
      const message = (e as Error).message;
      if (/\b407\b/.test(message)) throw proxyAuthError(message);
      throw new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${message}`, { cause: e });
    }
  }

  async close() {
    await Promise.all([this.#lanes.poll.destroy(), this.#lanes.send.destroy()]);
  }
}

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
};
