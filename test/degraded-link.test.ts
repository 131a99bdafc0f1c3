/**
 * Issue 3, item 5: a degraded link through the fault-injection proxy:
 * 200 ms latency each way, a bandwidth cap, stalls of several seconds, and a
 * few killed requests. Still exactly-once and in order, both directions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import { exchangeBothWays } from './helpers/exchange.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startHoldline } from './helpers/holdline.js';
import { assertTestScheme } from './helpers/tls.js';

test('200 ms each way, 64 KB/s, multi-second stalls: exactly once, in order', { timeout: 180_000 }, async (t) => {
  const N = 1_000;
  const hl = await startHoldline(t, { pollTimeoutMs: 5_000, maxMessageBytes: 4096, maxBatchBytes: 16 * 1024 });
  const proxy = await startFaultProxy({
    target: { host: '127.0.0.1', port: hl.port },
    latencyMs: 200,
    bandwidthBytesPerSec: 64 * 1024,
    stall: { probability: 0.05, durationMs: 3_000 },
    killRate: 0.03,
  });
  t.after(() => proxy.close());
  // In the https run the proxy ends the client's TLS and speaks TLS to the server.
  assertTestScheme(proxy.url, 'the fault proxy');
  const c = new HoldlineClient(`${proxy.url}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 500 }, pollGraceMs: 4_000 });
  t.after(() => c.close());
  let resets = 0;
  c.on('reset', () => resets++);
  await exchangeBothWays(hl.server, c, {
    count: N,
    up: (i) => `up ${i} ${'u'.repeat(i % 200)}`,
    down: (i) => `down ${i} ${'d'.repeat(i % 200)}`,
    pauseMs: 200,
    // Besides the random ones, one certain stall of every connection, mid-transfer.
    onClientSent: (i) => i === N / 2 && proxy.stallNow(3_000),
  });
  assert.equal(resets, 0);
  const s = proxy.stats;
  t.diagnostic(`requests ${s.requests}, stalls ${s.stalls}, faults ${s.faults.total}, seed ${proxy.seed}`);
  assert.ok(s.stalls >= 1, 'stalls really happened');
});
