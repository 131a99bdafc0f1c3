/** Browser platform: fetch. Requests are CORS-simple (text/plain POST, no custom headers). */
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HeadListener, HttpRequester, Lane, Platform } from './platform.js';

// Browsers pool connections per host themselves: the lane is not ours to pick.

function tooLarge(url: string, maxBodyBytes: number, seen: string): HoldlineError {
  return new HoldlineError('bad_response', `the answer to POST ${url} is larger than ${maxBodyBytes} bytes (${seen}): not read`);
}

/**
 * The body as text, read as it streams in and given up past `maxBodyBytes`:
 * the stream is cancelled, which drops the connection (a response not read
 * to its end cannot be reused).
 */
async function readCapped(res: Response, url: string, maxBodyBytes: number): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (length > maxBodyBytes) {
    void res.body?.cancel().catch(() => {});
    throw tooLarge(url, maxBodyBytes, `Content-Length ${length}`);
  }
  const body = res.body;
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    bytes += value.byteLength;
    if (bytes > maxBodyBytes) {
      void reader.cancel().catch(() => {});
      throw tooLarge(url, maxBodyBytes, `${bytes} bytes so far`);
    }
    text += decoder.decode(value, { stream: true });
  }
}

class FetchRequester implements HttpRequester {
  async post(url: string, body: string, signal: AbortSignal, _lane: Lane, maxBodyBytes: number, listener?: HeadListener) {
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
      text = await readCapped(res, url, maxBodyBytes);
    } catch (e) {
      if (e instanceof HoldlineError) throw e;
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
