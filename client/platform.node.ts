/**
 * Node platform: undici's request API on a dispatcher owned by this client
 * (not the global fetch pool: a fetch round trip costs ~0.6 ms more, and one
 * shared pool makes many clients in one process pay for each other).
 */
import { Agent, type Dispatcher, request } from 'undici';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HttpRequester, Platform, RequesterOptions } from './platform.js';

class UndiciRequester implements HttpRequester {
  readonly #dispatcher: Dispatcher;
  readonly #keepAlive: boolean;

  constructor(options: RequesterOptions) {
    this.#keepAlive = options.keepAlive;
    this.#dispatcher = new Agent({
      // Holds are ended by our own deadlines (AbortSignal), never by undici's timers.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 4_000,
      connections: 4,
    });
  }

  async post(url: string, body: string, signal: AbortSignal) {
    try {
      const res = await request(url, {
        method: 'POST',
        body,
        headers: { 'content-type': REQUEST_CONTENT_TYPE },
        dispatcher: this.#dispatcher,
        signal,
        reset: !this.#keepAlive,
      });
      const text = await res.body.text();
      if (res.statusCode === 407) throw new HoldlineError('proxy_auth_required', 'the proxy requires authentication (407)');
      return { status: res.statusCode, body: text };
    } catch (e) {
      if (e instanceof HoldlineError) throw e;
      throw new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async close() {
    await this.#dispatcher.destroy();
  }
}

export const nodePlatform: Platform = {
  name: 'node',
  createRequester: (options) => new UndiciRequester(options),
};
