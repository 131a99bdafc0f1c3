/**
 * The squid harness (squid.ts): a real squid forward proxy in front of a plain
 * node:http origin on loopback.
 *
 * - With Basic auth it forwards an authorized absolute-form request and logs
 *   it; it answers 407 without credentials or with a wrong password, denies
 *   CONNECT to a port other than 443, and denies non-loopback destinations
 *   without contacting anything. stop() waits for squid and its helpers and
 *   removes its temp dir.
 * - With caching on it serves a cacheable response from its cache and passes
 *   every request for a no-store response to the origin.
 * - Its read_timeout cuts a held response with 504 ERR_READ_TIMEOUT.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connectStatus, groupAlive, originAndSquid, viaProxy } from './harness.js';
import { basicProxyAuthorization, startSquid } from './squid.js';

describe('squid forward proxy with Basic auth', { timeout: 60_000 }, () => {
  const user = 'alice';
  const password = 's3cret-pass';
  const running = originAndSquid(
    (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`origin saw ${req.method} ${req.url}`);
    },
    { auth: { user, password } },
  );

  it('forwards an absolute-form request carrying Proxy-Authorization, and logs it', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/x`;
    const reply = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, password) } });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'origin saw GET /x');
    assert.equal(origin.hits.get('/x'), 1);
    const entry = await squid.waitForAccessEntry((e) => e.url === url && e.httpStatus === 200);
    assert.equal(entry.method, 'GET');
    assert.equal(entry.user, user);
    assert.equal(entry.hierarchy, 'HIER_DIRECT');
    assert.equal(entry.peer, '127.0.0.1');
  });

  it('answers 407 without credentials or with a wrong password, without reaching the origin', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/needs-auth`;
    const anonymous = await viaProxy(squid, url);
    assert.equal(anonymous.status, 407);
    assert.match(String(anonymous.headers['proxy-authenticate']), /^Basic realm="holdline-test"/);
    const wrong = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, 'nope') } });
    assert.equal(wrong.status, 407);
    assert.equal(origin.hits.get('/needs-auth'), undefined);
    await squid.waitForAccessEntry((e) => e.url === url && e.httpStatus === 407);
  });

  it('denies CONNECT to a port other than 443 with 403 (stock rule)', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const authority = `127.0.0.1:${origin.port}`;
    const status = await connectStatus(squid, authority, { 'proxy-authorization': basicProxyAuthorization(user, password) });
    assert.equal(status, 403);
    const entry = await squid.waitForAccessEntry((e) => e.method === 'CONNECT' && e.url === authority);
    assert.equal(entry.squidStatus, 'TCP_DENIED');
  });

  it('denies non-loopback destinations before contacting anything', async () => {
    const { squid } = running;
    assert.ok(squid);
    // RFC 5737 TEST-NET-1 and the RFC 6761 .invalid TLD: never real hosts.
    for (const url of ['http://192.0.2.1/', 'http://example.invalid/', 'http://127.0.0.1.example.invalid/']) {
      const reply = await viaProxy(squid, url, { headers: { 'proxy-authorization': basicProxyAuthorization(user, password) } });
      assert.equal(reply.status, 403, url);
      assert.match(String(reply.headers['x-squid-error']), /^ERR_ACCESS_DENIED/, url);
      const entry = await squid.waitForAccessEntry((e) => e.url === url);
      assert.equal(entry.squidStatus, 'TCP_DENIED', url);
      // HIER_NONE with no peer: squid neither resolved nor connected.
      assert.equal(entry.hierarchy, 'HIER_NONE', url);
      assert.equal(entry.peer, null, url);
      assert.ok(entry.elapsedMs < 1_000, `${url} took ${entry.elapsedMs} ms (a lookup or connect?)`);
    }
  });

  it('stop() waits for squid and its helpers to exit and removes its temp dir', async () => {
    const extra = await startSquid({ auth: { user, password } });
    try {
      assert.ok(groupAlive(extra.pid));
      assert.ok(existsSync(extra.dir));
    } finally {
      await extra.stop();
    }
    assert.equal(groupAlive(extra.pid), false);
    assert.equal(existsSync(extra.dir), false);
    assert.match(await extra.cacheLog(), /Exiting normally/);
    await extra.stop(); // idempotent
  });
});

describe('squid caching', { timeout: 60_000 }, () => {
  const running = originAndSquid(
    (req, res) => {
      const path = new URL(req.url ?? '/', 'http://origin').pathname;
      const cacheControl = path === '/no-store' ? 'no-store' : 'public, max-age=60';
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cacheControl });
      res.end(`response for ${path}`);
    },
    { caching: true },
  );

  it('serves a cacheable response from its cache the second time', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/cacheable`;
    const first = await viaProxy(squid, url);
    assert.equal(first.status, 200);
    await squid.waitForAccessEntry((e) => e.url === url && e.squidStatus === 'TCP_MISS');
    const second = await viaProxy(squid, url);
    assert.equal(second.status, 200);
    assert.equal(second.body, first.body);
    assert.equal(second.body, 'response for /cacheable');
    await squid.waitForAccessEntry((e) => e.url === url && /^TCP_(MEM_)?HIT$/.test(e.squidStatus));
    assert.equal(origin.hits.get('/cacheable'), 1);
  });

  it('passes every request for a Cache-Control: no-store response to the origin', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/no-store`;
    for (let i = 0; i < 3; i++) {
      const reply = await viaProxy(squid, url);
      assert.equal(reply.status, 200);
    }
    assert.equal(origin.hits.get('/no-store'), 3);
    const entries = (await squid.accessLog()).filter((e) => e.url === url);
    assert.ok(entries.every((e) => !e.squidStatus.endsWith('HIT')), JSON.stringify(entries.map((e) => e.squidStatus)));
  });
});

describe('squid read_timeout', { timeout: 60_000 }, () => {
  // Holds every request without answering, like a long poll with no data.
  const running = originAndSquid(() => undefined, { readTimeoutSec: 2 });

  it('cuts a held response with 504 ERR_READ_TIMEOUT', async () => {
    const { squid, origin } = running;
    assert.ok(squid && origin);
    const url = `http://127.0.0.1:${origin.port}/hold`;
    const started = Date.now();
    const reply = await viaProxy(squid, url, { method: 'POST', body: '{}', timeoutMs: 20_000 });
    const elapsedMs = Date.now() - started;
    assert.equal(reply.status, 504);
    assert.match(String(reply.headers['x-squid-error']), /^ERR_READ_TIMEOUT/);
    assert.equal(origin.hits.get('/hold'), 1);
    assert.ok(elapsedMs >= 1_500 && elapsedMs < 10_000, `cut after ${elapsedMs} ms`);
  });
});
