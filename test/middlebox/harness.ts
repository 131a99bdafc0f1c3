/**
 * What the tests of the middlebox infrastructure (`*.test.ts` in this folder)
 * share: a plain node:http origin on loopback that counts the requests it
 * sees, HTTP requests on a fresh connection (direct, through a forward proxy,
 * or a CONNECT), whether a daemon's process group is still alive, an origin
 * with a squid in front of it for the tests of one describe, and bounded
 * steps for hooks (node:test 20 bounds no hook: a stop that never returned
 * would hold the file until the runner's 600 s file timeout, unnamed).
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import { bounded } from './process.js';
import { startSquid, type SquidOptions, type SquidProxy } from './squid.js';

export interface Origin {
  readonly port: number;
  /** Requests seen, by path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A node:http server on 127.0.0.1 (a free port) that answers every request with `handler`, once its body is read. */
export async function startOrigin(handler: Handler): Promise<Origin> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  return {
    port: address.port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on a fresh connection, bounded by `timeoutMs`. */
export function httpRequest(options: {
  port: number;
  path: string;
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
  timeoutMs?: number;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: options.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A request through a forward proxy: absolute-form request target. */
export function viaProxy(
  proxy: SquidProxy,
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  return httpRequest({ ...options, port: proxy.port, path: url, headers: { host: new URL(url).host, ...options.headers } });
}

/** Sends CONNECT through the proxy and returns the status (the tunnel, if any, is closed at once). */
export function connectStatus(proxy: SquidProxy, authority: string, headers: OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...headers },
      agent: false,
      signal: AbortSignal.timeout(10_000),
    });
    req.on('connect', (res: IncomingMessage, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether any process of the process group `pgid` is still alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An origin and a squid, once both are started (before the describe's tests). */
export interface OriginAndSquid {
  origin?: Origin;
  squid?: SquidProxy;
}

/** Bounds on the hooks' steps, above the daemons' own: squid's start tries 3 times for 20 s; a stop has 3 phases of 30 s (daemon.ts). */
const START_STEP_MS = 120_000;
const STOP_STEP_MS = 100_000;
/** For a hook's `{ timeout }`: node:test (20) bounds no hook by itself. */
export const HOOK_TIMEOUT_MS = 240_000;

/** Awaits a start step of a hook, bounded; the error names the step. */
export function startStep<T>(what: string, promise: Promise<T>): Promise<T> {
  return bounded(what, promise, START_STEP_MS);
}

/**
 * Runs every clean-up step of a hook in order, each bounded, even after one
 * fails; then throws what failed, naming the step. A step returns undefined
 * when there is nothing to clean up.
 */
export async function cleanUp(steps: readonly (readonly [what: string, step: () => Promise<void> | undefined])[]): Promise<void> {
  const failures: unknown[] = [];
  for (const [what, step] of steps) {
    try {
      await bounded(what, Promise.resolve(step()), STOP_STEP_MS);
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} clean-up steps failed`);
}

/**
 * Starts an origin answering with `handler` and a squid started with
 * `options` before the tests of the enclosing describe, and stops both after
 * them. Call it inside a describe.
 */
export function originAndSquid(handler: Handler, options: SquidOptions): OriginAndSquid {
  const started: OriginAndSquid = {};
  after(
    () =>
      cleanUp([
        ['stopping squid', () => started.squid?.stop()],
        ['closing the origin', () => started.origin?.close()],
      ]),
    { timeout: HOOK_TIMEOUT_MS },
  );

  before(
    async () => {
      started.origin = await startStep('starting the origin', startOrigin(handler));
      started.squid = await startStep('starting squid', startSquid(options));
    },
    { timeout: HOOK_TIMEOUT_MS },
  );
  return started;
}
