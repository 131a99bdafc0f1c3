/**
 * Test helpers: a HoldlineServer attached to a node:http server listening on
 * 127.0.0.1, port 0 (an https server in TLS mode, HOLDLINE_TEST_TLS=1: see
 * tls.ts), and raw HTTP requests (undici `request`, which trusts the run's
 * certificate through NODE_EXTRA_CA_CERTS) for speaking the wire protocol by
 * hand.
 */
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { request, type Dispatcher } from 'undici';
import { HoldlineServer, type HoldlineServerOptions } from '../../server/index.js';
import { REQUEST_CONTENT_TYPE, type Payload } from '../../shared/index.js';
import { createTestServer } from './tls.js';

export interface StartedServer {
  hl: HoldlineServer;
  server: http.Server;
  /** Base URL of the Holdline endpoints, e.g. http://127.0.0.1:12345/holdline (https:// in TLS mode) */
  url: string;
  /** Close the HoldlineServer, every connection and the http server (idempotent). */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Mount point for attach(); default '/holdline'. */
  path?: string;
}

/** Close an http server and every connection it holds, idle or not. */
export function closeHttpServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((err) => (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

/** Listen on 127.0.0.1, port 0; resolves to the origin, e.g. http://127.0.0.1:12345 (https:// for an https server) */
export function listen(server: http.Server): Promise<string> {
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve(`${scheme}://127.0.0.1:${port}`);
    });
  });
}

export async function startServer(options: HoldlineServerOptions = {}, start: StartOptions = {}): Promise<StartedServer> {
  const path = start.path ?? '/holdline';
  const hl = new HoldlineServer(options);
  const server = createTestServer();
  hl.attach(server, { path });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await hl.close();
      await closeHttpServer(server);
    })();
    return closing;
  };
  try {
    const origin = await listen(server);
    return { hl, server, url: origin + path, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface RawRequestInit {
  method?: Dispatcher.HttpMethod;
  /** Defaults to the protocol's content type; pass `undefined` values to drop a header. */
  headers?: Record<string, string | undefined>;
  body?: Dispatcher.DispatchOptions['body'];
  signal?: AbortSignal;
}

/** One raw HTTP request; resolves with the status, headers and whole body text. */
export async function raw(url: string, init: RawRequestInit = {}): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries({ 'content-type': REQUEST_CONTENT_TYPE, ...init.headers })) {
    if (v !== undefined) headers[k] = v;
  }
  const res = await request(url, {
    method: init.method ?? 'POST',
    headers,
    body: init.body ?? null,
    signal: init.signal,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

/** POST `body` to `url` with the protocol's content type (or the given headers). */
export function post(url: string, body: string | Uint8Array, headers?: Record<string, string | undefined>): Promise<RawResponse> {
  return raw(url, headers === undefined ? { method: 'POST', body } : { method: 'POST', body, headers });
}

/** The `{"error":{"code"}}` code of an error response, or undefined. */
export function errorCode(res: RawResponse): string | undefined {
  try {
    const o = JSON.parse(res.text) as { error?: { code?: unknown } };
    return typeof o.error?.code === 'string' ? o.error.code : undefined;
  } catch {
    return undefined;
  }
}

export interface RawSession {
  sid: string;
  token: string;
}

let attempts = 0;
/** A fresh open-attempt id (8-64 URL-safe characters). */
export function attemptId(): string {
  attempts++;
  return `test-${process.pid}-${attempts}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Open a session by hand; throws unless the server answers 200. */
export async function openRaw(base: string, headers?: Record<string, string | undefined>): Promise<RawSession> {
  const res = await post(`${base}/open`, JSON.stringify({ v: 1, attempt: attemptId() }), headers);
  if (res.status !== 200) throw new Error(`open failed: ${res.status} ${res.text}`);
  const o = JSON.parse(res.text) as { sid: string; token: string };
  return { sid: o.sid, token: o.token };
}

/**
 * Cleanups run last-in first-out (clients before the servers they talk to).
 * Register `t.after(() => cleanup.run())` before creating anything, then
 * `cleanup.add()` each resource the moment it exists.
 */
export class Cleanup {
  readonly #fns: Array<() => unknown> = [];

  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.#fns.length > 0) {
      const fn = this.#fns.pop() as () => unknown;
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/**
 * A condition re-checked whenever `notify()` is called (e.g. on every message
 * event), so tests wait for a state instead of sleeping.
 */
export class Condition {
  readonly #checks = new Set<() => void>();

  notify(): void {
    for (const c of [...this.#checks]) c();
  }

  /** Resolve once `check()` holds; reject after `timeoutMs` with `describe()` in the message. */
  until(check: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const run = () => {
        if (!check()) return;
        this.#checks.delete(run);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#checks.delete(run);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${describe()}`));
      }, timeoutMs);
      this.#checks.add(run);
    });
  }
}

interface MessageSource {
  on(event: 'message', fn: (data: Payload) => void): unknown;
  off(event: 'message', fn: (data: Payload) => void): unknown;
}

/** The next 'message' event of a client or session, or a rejection after `timeoutMs`. */
export function nextMessage(source: MessageSource, timeoutMs = 5_000): Promise<Payload> {
  return new Promise<Payload>((resolve, reject) => {
    const onMessage = (data: Payload) => {
      clearTimeout(timer);
      source.off('message', onMessage);
      resolve(data);
    };
    const timer = setTimeout(() => {
      source.off('message', onMessage);
      reject(new Error(`no message within ${timeoutMs} ms`));
    }, timeoutMs);
    source.on('message', onMessage);
  });
}

/** `promise`, or a rejection naming `what` after `timeoutMs` (the timer is always cleared). */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
