/**
 * A proxy whose body limit is below the server's maxBatchBytes (nginx's
 * default client_max_body_size is 1 MB; Holdline's maxBatchBytes 4 MiB)
 * answers a large send with 413. The client halves the size it sends and
 * carries on, instead of retrying the same batch forever: every message
 * arrives once, in order, without a reconnect.
 *
 * The "proxy" is a small node:http reverse proxy on 127.0.0.1 that refuses
 * bodies over LIMIT bytes (by Content-Length) with 413 and forwards the rest
 * (https on both sides in the https run, as a TLS-terminating proxy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient } from '../client/index.js';
import type { Session } from '../server/index.js';
import { startHoldline } from './helpers/holdline.js';
import { assertTestScheme, createTestServer, testScheme, testTls } from './helpers/tls.js';

const LIMIT = 16 * 1024;

async function startLimitingProxy(target: number): Promise<{ url: string; refused: () => number; largestPassed: () => number; close: () => Promise<void> }> {
  let refused = 0;
  let largest = 0;
  const server = createTestServer((req, res) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > LIMIT) {
      refused++;
      req.resume();
      res.writeHead(413, { 'Content-Type': 'text/html', Connection: 'close' });
      res.end('<html><body>413 Request Entity Too Large</body></html>');
      return;
    }
    if (req.url?.endsWith('/send')) largest = Math.max(largest, length);
    const up = (testTls() ? https : http).request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${testScheme()}://127.0.0.1:${port}`,
    refused: () => refused,
    largestPassed: () => largest,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('a proxy that refuses large sends (413): the client halves its batches, nothing lost, no reconnect', { timeout: 30_000 }, async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000 });
  const proxy = await startLimitingProxy(hl.port);
  t.after(() => proxy.close());
  assertTestScheme(proxy.url, 'the 413 proxy');
  const got: string[] = [];
  hl.server.on('session', (s: Session) => s.on('message', (m) => got.push(String(m))));
  const client = new HoldlineClient(`${proxy.url}/holdline`, { reconnect: { minDelayMs: 5, maxDelayMs: 50 } });
  t.after(() => client.close());
  let reconnecting = 0;
  client.on('reconnecting', () => reconnecting++);
  await client.connect();
  // 300 messages of 1,000 bytes, queued at once: the first batch is ~300 KB.
  const expected = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(6, '0')}:${'m'.repeat(993)}`);
  await Promise.all(expected.map((m) => client.send(m)));
  const end = Date.now() + 15_000;
  while (got.length < expected.length && Date.now() < end) await sleep(10);
  assert.deepEqual(got, expected, 'every message once, in order');
  assert.ok(proxy.refused() >= 1, `the proxy refused a large body (${proxy.refused()} refusals)`);
  assert.ok(proxy.refused() <= 6, `halving reached the proxy's limit in a few steps (${proxy.refused()} refusals)`);
  assert.ok(proxy.largestPassed() <= LIMIT && proxy.largestPassed() > LIMIT / 4, `sends went through at up to the limit (${proxy.largestPassed()} bytes)`);
  assert.equal(reconnecting, 0, 'a 413 is answered by a smaller batch, not by back-off');
});
