/**
 * Browser platform: fetch, and the native WebSocket. Requests are CORS-simple
 * (text/plain POST, no custom headers). Proxies are the browser's business.
 */
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../shared/index.js';
import type { HeadListener, HttpRequester, Lane, Platform, WebSocketConnection, WebSocketHandlers } from './platform.js';

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

/**
 * The native WebSocket, binary frames as ArrayBuffers. A browser tells
 * nothing of why a connection failed (no status, no error detail): the close
 * code (1006) is all there is.
 */
class BrowserWebSocket implements WebSocketConnection {
  readonly #ws: WebSocket | undefined;
  #reported = false;
  readonly #handlers: WebSocketHandlers;

  constructor(url: string, handlers: WebSocketHandlers) {
    this.#handlers = handlers;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      queueMicrotask(() => this.#gone(1006, '', new HoldlineError('network_error', `WebSocket ${url}: ${String(e)}`, { cause: e })));
      return;
    }
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    let opened = false;
    ws.onopen = () => {
      opened = true;
      handlers.onOpen();
    };
    ws.onmessage = (ev: MessageEvent<unknown>) => {
      const d = ev.data;
      if (typeof d === 'string') handlers.onMessage(d);
      else if (d instanceof ArrayBuffer) handlers.onMessage(new Uint8Array(d));
    };
    ws.onclose = (ev: CloseEvent) => {
      const clean = ev.code === 1000 || (ev.code >= 4000 && ev.code < 5000);
      this.#gone(ev.code, ev.reason, clean ? undefined : new HoldlineError('network_error', `WebSocket ${url} ${opened ? 'closed' : 'failed'} (code ${ev.code})`));
    };
  }

  #gone(code: number, reason: string, error: HoldlineError | undefined): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#handlers.onClose(code, reason, error);
  }

  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  send(data: string | Uint8Array): void {
    const ws = this.#ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(data);
  }

  sendAll(data: readonly (string | Uint8Array)[]): void {
    for (const d of data) this.send(d);
  }

  close(code: number, reason: string): void {
    try {
      this.#ws?.close(code, reason);
    } catch {
      this.#ws?.close();
    }
  }

  /** No abrupt close in browsers: the closing handshake, and the owner is told at once. */
  terminate(): void {
    this.#ws?.close();
    this.#gone(1006, '', new HoldlineError('network_error', 'the WebSocket was dropped'));
  }
}

export const browserPlatform: Platform = {
  name: 'browser',
  createRequester: () => new FetchRequester(),
  openWebSocket: (url, handlers) => new BrowserWebSocket(url, handlers),
  onNetworkBack(fn) {
    if (typeof addEventListener !== 'function') return () => {};
    addEventListener('online', fn);
    return () => removeEventListener('online', fn);
  },
};
