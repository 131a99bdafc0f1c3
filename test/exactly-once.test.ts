/**
 * Issue 2, item 1: exactly-once, in-order delivery in both directions through
 * a proxy that destroys connections at random moments (per request: before
 * the request is complete, before the response, mid-response, and right after
 * the response is fully written), with and without 50 ms latency each way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import type { Payload } from '../shared/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { assertFaultsHit } from './helpers/fault-rate.js';
import { startHoldline } from './helpers/holdline.js';
import { assertTestScheme } from './helpers/tls.js';
import { waitFor } from './helpers/wait.js';

const N = 20_000;

/** Message i: text for most, binary (4-byte index + pattern) for every third. */
function message(i: number): Payload {
  if (i % 3 !== 0) return `m${i}:${'x'.repeat(i % 50)}`;
  const b = new Uint8Array(4 + (i % 40));
  new DataView(b.buffer).setUint32(0, i);
  for (let k = 4; k < b.length; k++) b[k] = (i + k) & 0xff;
  return b;
}

/** Checks each arrival is exactly the next message; records the first deviation. */
class SequenceChecker {
  next = 0;
  error: string | undefined;
  #done: () => void = () => {};
  readonly done = new Promise<void>((resolve) => (this.#done = resolve));

  receive(p: Payload): void {
    if (this.error) return;
    const want = message(this.next);
    const same =
      typeof want === 'string' ? p === want : p instanceof Uint8Array && Buffer.compare(Buffer.from(p), Buffer.from(want)) === 0;
    if (!same) {
      this.error = `message ${this.next}: got ${describe(p)}, want ${describe(want)}`;
      this.#done();
      return;
    }
    if (++this.next === N) this.#done();
  }
}

function describe(p: Payload): string {
  return typeof p === 'string' ? JSON.stringify(p.slice(0, 20)) : `<${p.byteLength} bytes #${new DataView(p.buffer, p.byteOffset).getUint32(0)}>`;
}

async function run(t: import('node:test').TestContext, latencyMs: number): Promise<void> {
  const toClient = new SequenceChecker();
  const toServer = new SequenceChecker();
  let serverSends: Promise<void> | undefined;
  // Small batches, so that 20,000 messages take hundreds of requests for the faults to hit.
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000, maxMessageBytes: 2048, maxBatchBytes: 4096 });
  hl.server.on('session', (s) => {
    s.on('message', (d) => toServer.receive(d));
    serverSends = (async () => {
      for (let i = 0; i < N; i++) await s.send(message(i));
    })();
  });
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port }, killRate: 0.1, latencyMs });
  t.after(() => proxy.close());

  // In the https run the proxy ends the client's TLS and speaks TLS to the server.
  assertTestScheme(proxy.url, 'the fault proxy');
  const client = new HoldlineClient(`${proxy.url}/holdline`, {
    // Polling: the fault proxy draws its faults per HTTP exchange (a WebSocket would pass it untouched).
    transports: ['polling'],
    reconnect: { minDelayMs: 5, maxDelayMs: 50 },
    requestTimeoutMs: 5_000,
  });
  t.after(() => client.close());
  let resets = 0;
  client.on('reset', () => resets++);
  client.on('message', (d) => toClient.receive(d));
  await client.connect();
  for (let i = 0; i < N; i++) await client.send(message(i));

  await Promise.all([toClient.done, toServer.done]);
  await serverSends;
  assert.equal(toClient.error, undefined);
  assert.equal(toServer.error, undefined);
  assert.equal(toClient.next, N);
  assert.equal(toServer.next, N);
  assert.equal(resets, 0, 'the session survived every fault');

  // Wait until everything is acknowledged, then check nothing arrives twice late.
  await waitFor(() => client.bufferedAmount === 0, 20_000, 'client buffer drains');
  assert.equal(toServer.next, N);
  assert.equal(toClient.next, N);

  assertFaultsHit(t, proxy, 0.1);
}

test('20,000 messages each way, mixed text and binary, through 10% connection kills', { timeout: 120_000 }, (t) => run(t, 0));

test('the same with 50 ms latency each way', { timeout: 180_000 }, (t) => run(t, 50));
