/**
 * The Node client tells a proxy's 407 from the status code, not from text
 * (client/node/proxy-dispatcher.ts, exchange.ts, tunnel.ts): a forward proxy
 * of the test's own (node:http on 127.0.0.1) answers
 * - 403 with a reason phrase and a body that say "407 Proxy Authentication
 *   Required": never proxy_auth_required. The client retries it as the
 *   status says: proxy_refused when the proxy marks the answer as its own
 *   (X-Squid-Error), else the code any 403 without our error body stands for
 *   (answerError with the open's status codes);
 * - 407 with a reason phrase without digits ("Who Are You") and a
 *   Proxy-Authenticate header, to a client without credentials:
 *   proxy_auth_required, fatal, asked once.
 *
 * Each for the three ways the client goes through a proxy:
 * - http:// requests, forwarded (absolute-form `POST http://…`);
 * - https:// requests, through a CONNECT tunnel;
 * - a ws:// WebSocket, through a CONNECT tunnel (its session opened by
 *   forwarded requests; transports ['websocket'] so that its failure is the
 *   client's: a retried request, or a fatal one).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type ReconnectingEvent } from '../client/index.js';
import { HoldlineError } from '../shared/index.js';
import { answerError, OPEN_STATUS_CODES } from '../shared/reaction.js';
import { startServer, withTimeout } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

/** An answer of the proxy's own. */
interface Refusal {
  status: number;
  reason: string;
  headers: Record<string, string>;
  body: string;
}

/** 403, its reason phrase and its body all saying 407. */
const FORBIDDEN_407_TEXT = {
  status: 403,
  reason: 'Forbidden (not a 407 Proxy Authentication Required)',
  body: '<html><body><h1>407 Proxy Authentication Required?</h1><p>No: 403. Error 407 is another page.</p></body></html>',
};

/** 407 whose reason phrase has no digits, asking for Basic. */
const WHO_ARE_YOU: Refusal = {
  status: 407,
  reason: 'Who Are You',
  headers: { 'Proxy-Authenticate': 'Basic realm="holdline-test"' },
  body: 'credentials, please',
};

interface ForwardProxy {
  url: string;
  /** Forwarded-form requests, as `METHOD absolute-URI`. */
  requests: string[];
  /** CONNECT targets, `host:port`. */
  connects: string[];
}

/**
 * A forward proxy on 127.0.0.1: absolute-form requests are forwarded (or
 * answered with `refuse.http`), CONNECTs tunnelled (or answered with
 * `refuse.connect`, as raw bytes, the reason phrase as given). Closed after
 * the test, with every connection it holds.
 */
async function forwardProxy(t: TestContext, refuse: { http?: Refusal; connect?: Refusal }): Promise<ForwardProxy> {
  const requests: string[] = [];
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = http.createServer((req, res) => {
    requests.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    const r = refuse.http;
    if (r !== undefined) {
      res.writeHead(r.status, r.reason, { ...r.headers, 'Content-Type': 'text/html', 'Content-Length': String(Buffer.byteLength(r.body)) });
      res.end(r.body);
      return;
    }
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const up = http.request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers, agent: false });
    up.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('connection', track);
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '?');
    const r = refuse.connect;
    if (r !== undefined) {
      const lines = [`HTTP/1.1 ${r.status} ${r.reason}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${Buffer.byteLength(r.body)}`, 'Connection: close'];
      socket.end(`${lines.join('\r\n')}\r\n\r\n${r.body}`);
      return;
    }
    const { hostname, port } = new URL(`http://${req.url ?? ''}`);
    const up = net.connect(Number(port), hostname, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    track(up);
    up.on('close', () => socket.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, connects };
}

/** A client of `url` through `proxy` (no credentials), its 'reconnecting' and 'error' events noted, closed after the test. */
function clientThrough(t: TestContext, url: string, proxy: string, transports?: ['websocket']) {
  const c = new HoldlineClient(url, { proxy, reconnect: { minDelayMs: 10, maxDelayMs: 50 }, connectTimeoutMs: 1_000, ...(transports === undefined ? {} : { transports }) });
  t.after(() => c.close());
  const reconnecting: ReconnectingEvent[] = [];
  const errors: HoldlineError[] = [];
  c.on('reconnecting', (e) => reconnecting.push(e));
  c.on('error', (e) => errors.push(e));
  return { c, reconnecting, errors };
}

/** connect()'s error, or undefined if it connected. */
async function connectError(c: HoldlineClient): Promise<HoldlineError | undefined> {
  return withTimeout(
    c.connect().then(
      () => undefined,
      (e: unknown) => e as HoldlineError,
    ),
    10_000,
    'connect()',
  );
}

/** Nothing the client reported is proxy_auth_required, or mentions it. */
function noProxyAuth(errors: readonly HoldlineError[]): void {
  for (const e of errors) {
    assert.notEqual(e.code, 'proxy_auth_required', e.message);
    assert.doesNotMatch(e.message, /proxy_auth_required/);
  }
}

/** Every failed try was `code` with the proxy's status 403. */
function everyTry403(reconnecting: readonly ReconnectingEvent[], code: string): void {
  for (const e of reconnecting) {
    assert.equal(e.error.code, code);
    assert.equal(e.error.status, 403);
  }
}

// Nothing listens on port 1: a request that got past the proxy would fail otherwise.
const UNREACHED_HTTP = 'http://127.0.0.1:1/holdline';
const UNREACHED_HTTPS = 'https://127.0.0.1:1/holdline';

describe('a proxy 407 is told by its status code, not by text', { timeout: 60_000 }, () => {
  // NO_PROXY would send 127.0.0.1 past the proxy: none while these run.
  const saved = { NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };
  before(() => {
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  });

  describe('http:// through the proxy (forwarded requests)', () => {
    it('403 whose reason phrase and body say 407, marked as the proxy\'s own (X-Squid-Error): proxy_refused with status 403, retried; never proxy_auth_required', async (t) => {
      const proxy = await forwardProxy(t, { http: { ...FORBIDDEN_407_TEXT, headers: { 'X-Squid-Error': 'ERR_ACCESS_DENIED 0' } } });
      const { c, reconnecting, errors } = clientThrough(t, UNREACHED_HTTP, proxy.url);
      const err = await connectError(c);
      assert.ok(err instanceof HoldlineError);
      assert.equal(err.code, 'timeout', 'retried until connectTimeoutMs');
      assert.ok(reconnecting.length >= 2, `retried: ${reconnecting.length}`);
      everyTry403(reconnecting, 'proxy_refused');
      assert.match(err.message, /last error: proxy_refused: .*HTTP 403/);
      assert.ok(proxy.requests.length >= 2 && proxy.requests.every((r) => r === `POST ${UNREACHED_HTTP}/open`), JSON.stringify(proxy.requests));
      noProxyAuth([err, ...errors, ...reconnecting.map((e) => e.error)]);
    });

    it('403 whose reason phrase and body say 407, not marked: what any 403 without our error body is on an open, retried; never proxy_auth_required', async (t) => {
      const proxy = await forwardProxy(t, { http: { ...FORBIDDEN_407_TEXT, headers: {} } });
      const { c, reconnecting, errors } = clientThrough(t, UNREACHED_HTTP, proxy.url);
      const err = await connectError(c);
      assert.equal(err?.code, 'timeout', 'retried until connectTimeoutMs');
      const byStatus = answerError(403, FORBIDDEN_407_TEXT.body, OPEN_STATUS_CODES);
      assert.notEqual(byStatus.code, 'proxy_auth_required');
      assert.ok(reconnecting.length >= 2, `retried: ${reconnecting.length}`);
      everyTry403(reconnecting, byStatus.code);
      assert.ok(proxy.requests.length >= 2, JSON.stringify(proxy.requests));
      noProxyAuth([...(err === undefined ? [] : [err]), ...errors, ...reconnecting.map((e) => e.error)]);
    });

    it('407 with the reason phrase "Who Are You" and Proxy-Authenticate, no credentials: proxy_auth_required, fatal, asked once', async (t) => {
      const proxy = await forwardProxy(t, { http: WHO_ARE_YOU });
      const { c, reconnecting, errors } = clientThrough(t, UNREACHED_HTTP, proxy.url);
      const err = await connectError(c);
      assert.equal(err?.code, 'proxy_auth_required');
      assert.match(err.message, /Basic/, 'the scheme the proxy asked for');
      assert.deepEqual(errors.map((e) => e.code), ['proxy_auth_required']);
      assert.deepEqual(reconnecting, []);
      assert.equal(c.state, 'closed');
      await sleep(150);
      assert.deepEqual(proxy.requests, [`POST ${UNREACHED_HTTP}/open`], 'asked once');
    });
  });

  describe('https:// through the proxy (a CONNECT tunnel)', () => {
    it('CONNECT answered 403 whose reason phrase and body say 407: proxy_refused with status 403, retried; never proxy_auth_required', async (t) => {
      const proxy = await forwardProxy(t, { connect: { ...FORBIDDEN_407_TEXT, headers: {} } });
      const { c, reconnecting, errors } = clientThrough(t, UNREACHED_HTTPS, proxy.url);
      const err = await connectError(c);
      assert.equal(err?.code, 'timeout', 'retried until connectTimeoutMs');
      assert.ok(reconnecting.length >= 2, `retried: ${reconnecting.length}`);
      everyTry403(reconnecting, 'proxy_refused');
      assert.ok(proxy.connects.length >= 2 && proxy.connects.every((a) => a === '127.0.0.1:1'), JSON.stringify(proxy.connects));
      assert.deepEqual(proxy.requests, []);
      noProxyAuth([...(err === undefined ? [] : [err]), ...errors, ...reconnecting.map((e) => e.error)]);
    });

    it('CONNECT answered 407 "Who Are You" with Proxy-Authenticate, no credentials: proxy_auth_required, fatal, asked once', async (t) => {
      const proxy = await forwardProxy(t, { connect: WHO_ARE_YOU });
      const { c, reconnecting, errors } = clientThrough(t, UNREACHED_HTTPS, proxy.url);
      const err = await connectError(c);
      assert.equal(err?.code, 'proxy_auth_required');
      assert.match(err.message, /Basic/);
      assert.deepEqual(errors.map((e) => e.code), ['proxy_auth_required']);
      assert.deepEqual(reconnecting, []);
      await sleep(150);
      assert.deepEqual(proxy.connects, ['127.0.0.1:1'], 'asked once');
    });
  });

  describe("ws:// through the proxy (a CONNECT tunnel), transports ['websocket']", () => {
    it('CONNECT answered 403 whose reason phrase and body say 407: each WebSocket a failed request, proxy_refused with status 403, retried; never proxy_auth_required, never a poll', async (t) => {
      const h = await startServer();
      t.after(() => h.close());
      const proxy = await forwardProxy(t, { connect: { ...FORBIDDEN_407_TEXT, headers: {} } });
      const { c, reconnecting, errors } = clientThrough(t, h.url, proxy.url, ['websocket']);
      assert.equal(await connectError(c), undefined, 'the open went through the proxy');
      await waitFor(() => reconnecting.length >= 3, 10_000, "three 'reconnecting'");
      everyTry403(reconnecting, 'proxy_refused');
      const port = new URL(h.url).port;
      assert.ok(proxy.connects.length >= 3 && proxy.connects.every((a) => a === `127.0.0.1:${port}`), JSON.stringify(proxy.connects));
      assert.deepEqual(proxy.requests, [`POST ${h.url}/open`], 'the open only: no poll');
      assert.equal(c.state, 'reconnecting');
      noProxyAuth([...errors, ...reconnecting.map((e) => e.error)]);
      assert.deepEqual(errors, []);
    });

    it('CONNECT answered 407 "Who Are You" with Proxy-Authenticate, no credentials: proxy_auth_required, the client closes with it, asked once', async (t) => {
      const h = await startServer();
      t.after(() => h.close());
      const proxy = await forwardProxy(t, { connect: WHO_ARE_YOU });
      const { c, reconnecting, errors } = clientThrough(t, h.url, proxy.url, ['websocket']);
      const closed = new Promise<string>((resolve) => c.once('close', (reason) => resolve(reason.message)));
      assert.equal(await connectError(c), undefined, 'the open went through the proxy');
      assert.match(await withTimeout(closed, 5_000, 'the close'), /proxy_auth_required/);
      assert.deepEqual(errors.map((e) => e.code), ['proxy_auth_required']);
      assert.match(errors[0]?.message ?? '', /Basic/);
      assert.deepEqual(reconnecting, []);
      assert.equal(c.state, 'closed');
      await sleep(150);
      assert.deepEqual(proxy.connects, [`127.0.0.1:${new URL(h.url).port}`], 'asked once');
    });
  });
});
