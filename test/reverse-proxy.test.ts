/**
 * Issue 3, item 3: behind nginx as a buffering reverse proxy
 * (proxy_buffering on, proxy_read_timeout 30 s, hold 25 s): exactly-once
 * delivery, and buffering adds no delay to delivery beyond a round trip
 * (a held poll's answer is complete when written, so nginx passes it at once).
 * Precise latency figures belong to the benchmarks; this test asserts the
 * behaviour with a wide margin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import { exchangeBothWays } from './helpers/exchange.js';
import { sessionIdOf, startHoldline } from './helpers/holdline.js';
import { startNginx } from './middlebox/nginx.js';

async function echoRtts(url: string, hl: Awaited<ReturnType<typeof startHoldline>>, rounds: number): Promise<number[]> {
  const c = new HoldlineClient(url);
  await c.connect();
  const session = hl.server.session(sessionIdOf(c));
  assert.ok(session);
  session.on('message', (d) => void session.send(d));
  const rtts: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const got = new Promise((r) => c.once('message', r));
    const t0 = performance.now();
    await c.send(`ping ${i}`);
    assert.equal(await got, `ping ${i}`);
    rtts.push(performance.now() - t0);
  }
  await c.close();
  return rtts;
}

function median(xs: number[]): number {
  const m = [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  assert.ok(m !== undefined, 'a median of no values');
  return m;
}

test('through nginx with proxy_buffering on: 5,000 messages each way exactly once, in order', { timeout: 120_000 }, async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 25_000 });
  const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: hl.port }], proxyBuffering: true, proxyReadTimeoutSec: 30 });
  t.after(() => nginx.stop());

  const c = new HoldlineClient(`${nginx.url}/holdline`);
  t.after(() => c.close());
  await exchangeBothWays(hl.server, c, { count: 5_000 });
  const log = await nginx.accessLog();
  assert.ok(log.some((e) => e.uri.endsWith('/holdline/poll') && e.status === 200), 'polls went through nginx');
});

test('nginx buffering adds no hold-sized delay: echo round trip through nginx stays close to direct', { timeout: 60_000 }, async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 25_000 });
  const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: hl.port }], proxyBuffering: true, proxyReadTimeoutSec: 30 });
  t.after(() => nginx.stop());
  const direct = median(await echoRtts(hl.url, hl, 200));
  const proxied = median(await echoRtts(`${nginx.url}/holdline`, hl, 200));
  t.diagnostic(`echo RTT p50: direct ${direct.toFixed(2)} ms, through nginx ${proxied.toFixed(2)} ms`);
  // A buffering proxy that held answers back would cost the whole hold (25 s).
  assert.ok(proxied - direct < 100, `through nginx ${proxied} ms vs direct ${direct} ms`);
});
