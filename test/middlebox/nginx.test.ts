/**
 * The nginx harness (nginx.ts): a real nginx reverse proxy in front of two
 * plain node:http origins on loopback. It round-robins across both upstreams
 * over HTTP/1.1 keep-alive, passes POST bodies through (one large enough to
 * be buffered to a temp file too), serves only its location path, and stop()
 * waits for the master and workers and removes its temp dir.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { cleanUp, groupAlive, HOOK_TIMEOUT_MS, httpRequest, startOrigin, startStep, type Handler, type Origin } from './harness.js';
import { startNginx, type NginxProxy } from './nginx.js';

describe('nginx reverse proxy', { timeout: 60_000 }, () => {
  let a: Origin | undefined;
  let b: Origin | undefined;
  let nginx: NginxProxy | undefined;
  after(
    () =>
      cleanUp([
        ['stopping nginx', () => nginx?.stop()],
        ['closing origin a', () => a?.close()],
        ['closing origin b', () => b?.close()],
      ]),
    { timeout: HOOK_TIMEOUT_MS },
  );

  const echo =
    (id: string): Handler =>
    (req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id, method: req.method, url: req.url, connection: req.headers.connection ?? null, body }));
    };

  before(
    async () => {
      a = await startStep('starting origin a', startOrigin(echo('a')));
      b = await startStep('starting origin b', startOrigin(echo('b')));
      nginx = await startStep(
        'starting nginx',
        startNginx({
          upstreams: [
            { host: '127.0.0.1', port: a.port },
            { host: '127.0.0.1', port: b.port },
          ],
        }),
      );
    },
    { timeout: HOOK_TIMEOUT_MS },
  );

  it('round-robins requests across both upstreams, over HTTP/1.1 keep-alive', async () => {
    assert.ok(nginx && a && b);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await httpRequest({ port: nginx.port, path: `/rr/${i}` });
      assert.equal(reply.status, 200);
      const parsed = JSON.parse(reply.body) as { id: string; connection: string | null };
      ids.push(parsed.id);
      // proxy_set_header Connection "": no "Connection: close" to the upstream.
      assert.equal(parsed.connection, null);
    }
    assert.deepEqual([...ids].sort(), ['a', 'a', 'b', 'b']);
    assert.notEqual(ids[0], ids[1]);
    const entry = await nginx.waitForAccessEntry((e) => e.uri === '/rr/3');
    assert.equal(entry.status, 200);
    const upstreams = new Set((await nginx.accessLog()).filter((e) => e.uri.startsWith('/rr/')).map((e) => e.upstream));
    assert.deepEqual([...upstreams].sort(), [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
  });

  it('passes a POST body through, including one large enough to be buffered to a temp file', async () => {
    assert.ok(nginx);
    for (const body of ['{"hello":"world"}', 'x'.repeat(200_000)]) {
      const reply = await httpRequest({
        port: nginx.port,
        path: '/holdline/send',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(reply.status, 200);
      const parsed = JSON.parse(reply.body) as { method: string; url: string; body: string };
      assert.equal(parsed.method, 'POST');
      assert.equal(parsed.url, '/holdline/send');
      assert.equal(parsed.body.length, body.length);
      assert.equal(parsed.body, body);
    }
  });

  it('stop() waits for the master and workers and removes its temp dir', async () => {
    assert.ok(a);
    const extra = await startNginx({ upstreams: [{ host: '127.0.0.1', port: a.port }], locationPath: '/holdline/' });
    try {
      assert.ok(groupAlive(extra.pid));
      const outside = await httpRequest({ port: extra.port, path: '/elsewhere' });
      assert.equal(outside.status, 404);
      const inside = await httpRequest({ port: extra.port, path: '/holdline/open' });
      assert.equal(inside.status, 200);
    } finally {
      await extra.stop();
    }
    assert.equal(groupAlive(extra.pid), false);
    assert.equal(existsSync(extra.dir), false);
  });
});
