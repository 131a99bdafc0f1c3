/**
 * Core v2, item 4: a proxy's 407 is told from undici's error class or the
 * status it saw, not from an error message. For https:// the client asks the
 * proxy for a CONNECT tunnel; a proxy answering it with 407 is
 * proxy_auth_required (fatal, asked once), any other refusal (403 here)
 * proxy_refused, naming the proxy, which the client retries. The "proxy" is a loopback TCP server
 * that answers the CONNECT line itself. (http:// through a proxy with a 407:
 * test/forward-proxy.test.ts, against squid.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { HoldlineClient } from '../client/index.js';
import type { HoldlineError } from '../shared/index.js';

async function refusingProxy(t: import('node:test').TestContext, status: string): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    socket.once('data', (d) => {
      requests.push(String(d).split('\r\n', 1)[0] ?? '');
      socket.end(`HTTP/1.1 ${status}\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests };
}

async function connectThrough(t: import('node:test').TestContext, proxy: string): Promise<HoldlineError | undefined> {
  // Nothing listens on port 1: the request never gets past the proxy.
  const c = new HoldlineClient('https://127.0.0.1:1/holdline', { proxy, reconnect: { minDelayMs: 10, maxDelayMs: 50 }, connectTimeoutMs: 1_500 });
  t.after(() => c.close());
  c.on('error', () => {});
  return c.connect().then(
    () => undefined,
    (e: unknown) => e as HoldlineError,
  );
}

test('a CONNECT answered 407: proxy_auth_required, asked once', async (t) => {
  const proxy = await refusingProxy(t, '407 Proxy Authentication Required');
  const err = await connectThrough(t, proxy.url);
  assert.equal(err?.code, 'proxy_auth_required');
  assert.deepEqual(proxy.requests, ['CONNECT 127.0.0.1:1 HTTP/1.1']);
});

test('a CONNECT answered 403: proxy_refused naming the proxy, which the client retries', async (t) => {
  const proxy = await refusingProxy(t, '403 Forbidden');
  const err = await connectThrough(t, proxy.url);
  assert.ok(err !== undefined, 'connect() failed');
  // Retried until connectTimeoutMs; the timeout names the last error.
  assert.equal(err.code, 'timeout');
  assert.match(err.message, new RegExp(`last error: proxy_refused: the proxy ${proxy.url.replace('http://', '')} refused CONNECT 127\\.0\\.0\\.1:1: HTTP 403`));
  assert.ok(proxy.requests.length >= 2, `asked again: ${proxy.requests.length}`);
});
