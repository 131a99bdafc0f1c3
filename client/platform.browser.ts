/** Browser platform: fetch. Requests are CORS-simple (text/plain POST, no custom headers). */
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HeadListener, HttpRequester, Lane, Platform } from './platform.js';

// Browsers pool connections per host themselves: the lane is not ours to pick.

class FetchRequester implements HttpRequester {
  async post(url: string, body: string, signal: AbortSignal, _lane: Lane, listener?: HeadListener) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'Content-Type': REQUEST_CONTENT_TYPE },
        cache: 'no-store',
        credentials: 'same-origin',
        signal,
      });
    } catch (e) {
      throw new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${String(e)}`, { cause: e });
    }
    listener?.onHead({ status: res.status, header: (name) => res.headers.get(name) ?? undefined });
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `reading the answer to POST ${url} failed`, { cause: e });
    }
    if (res.status === 407) throw new HoldlineError('proxy_auth_required', 'the proxy requires authentication');
    return { status: res.status, body: text };
  }

  async close() {}
}

export const browserPlatform: Platform = {
  name: 'browser',
  createRequester: () => new FetchRequester(),
  onNetworkBack(fn) {
    if (typeof addEventListener !== 'function') return () => {};
    addEventListener('online', fn);
    return () => removeEventListener('online', fn);
  },
};
