/**
 * Same-origin is judged by scheme, host and port, and X-Forwarded-Proto and
 * X-Forwarded-Host count only with `trustProxy`. Through the README's nginx
 * recipe (Host passed on), a same-origin page is served without listing
 * its origin (so nobody is pushed to `allowedOrigins: '*'`).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Cleanup, errorCode, post, startServer } from './helpers/server.js';
import { startNginx } from './middlebox/nginx.js';

const openBody = () => JSON.stringify({ v: 1, attempt: `origin-${Math.random().toString(36).slice(2, 12)}` });

describe('origin check', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('compares scheme, host and port; trusts no forwarded header by default', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const own = new URL(h.url).origin; // http://127.0.0.1:PORT
    const port = new URL(h.url).port;
    const status = async (headers: Record<string, string>) => {
      const res = await post(`${h.url}/open`, openBody(), headers);
      return res.status === 200 ? 'allowed' : errorCode(res);
    };
    assert.equal(await status({ origin: own }), 'allowed', 'same origin');
    assert.equal(await status({ origin: own.toUpperCase().replace('HTTP', 'http') }), 'allowed', 'host case does not matter');
    assert.equal(await status({ origin: `https://127.0.0.1:${port}` }), 'origin_not_allowed', 'another scheme is another origin');
    assert.equal(await status({ origin: `http://127.0.0.1:${Number(port) + 1}` }), 'origin_not_allowed', 'another port');
    assert.equal(await status({ origin: 'http://127.0.0.1' }), 'origin_not_allowed', 'no port is port 80');
    assert.equal(await status({ origin: 'null' }), 'origin_not_allowed');
    // A page on evil.example claiming, through forwarded headers, to be what it calls: not trusted.
    assert.equal(
      await status({ origin: 'https://evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }),
      'origin_not_allowed',
    );
  });

  it('with trustProxy, X-Forwarded-Proto and X-Forwarded-Host name the origin', async () => {
    const h = await startServer({ trustProxy: true });
    cleanup.add(() => h.close());
    const status = async (headers: Record<string, string>) => {
      const res = await post(`${h.url}/open`, openBody(), headers);
      return res.status === 200 ? 'allowed' : errorCode(res);
    };
    const forwarded = { 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' };
    assert.equal(await status({ origin: 'https://app.example', ...forwarded }), 'allowed');
    assert.equal(await status({ origin: 'http://app.example', ...forwarded }), 'origin_not_allowed', 'the forwarded scheme counts');
    assert.equal(await status({ origin: 'https://app.example', 'x-forwarded-host': 'app.example, proxy.internal', 'x-forwarded-proto': 'https,http' }), 'allowed', 'the first of a list');
  });

  it('through nginx with the README recipe, a same-origin page is served (no allowedOrigins needed)', { timeout: 60_000 }, async () => {
    const h = await startServer({}, { path: '/holdline' });
    cleanup.add(() => h.close());
    const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: Number(new URL(h.url).port) }], proxyBuffering: true, proxyReadTimeoutSec: 30 });
    cleanup.add(() => nginx.stop());
    const res = await post(`${nginx.url}/holdline/open`, openBody(), { origin: new URL(nginx.url).origin });
    assert.equal(res.status, 200, res.text);
    const cross = await post(`${nginx.url}/holdline/open`, openBody(), { origin: 'http://elsewhere.example' });
    assert.equal(errorCode(cross), 'origin_not_allowed');
  });
});

describe('open attempts are bound to the credentials that made them', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('a retried open gets the session back only with the same cookie; a replay without it, or a victim led to an attacker\'s attempt id, gets a session of its own', async () => {
    // A cookie-authenticating application that allows any origin: the audit's attack shape.
    const h = await startServer({ allowedOrigins: '*', authenticate: () => true });
    cleanup.add(() => h.close());
    const open = async (cookie: string | undefined) => {
      const res = await post(`${h.url}/open`, JSON.stringify({ v: 1, attempt: 'attacker-chosen-attempt' }), cookie === undefined ? {} : { cookie });
      assert.equal(res.status, 200);
      return JSON.parse(res.text) as { sid: string; token: string };
    };
    const victim = await open('session=victim');
    const retried = await open('session=victim');
    assert.equal(retried.sid, victim.sid, 'the victim\'s own retry (its answer was lost) gets its session back');
    const replay = await open(undefined);
    assert.notEqual(replay.sid, victim.sid, 'a replay without the cookie does not read the victim\'s session');
    const other = await open('session=someone-else');
    assert.notEqual(other.sid, victim.sid);
    assert.notEqual(other.sid, replay.sid, 'and nobody is handed a session someone else opened');
  });
});
