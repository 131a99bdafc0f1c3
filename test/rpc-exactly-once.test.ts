/**
 * Calls with replies ride the reliable stream (issue 15): 2,000 requests each
 * way through a proxy that kills connections at random moments (before the
 * request is complete, before the response, mid-response, right after it)
 * are each answered exactly once, and each request's listener runs exactly
 * once, with no session reset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import type { Payload } from '../shared/index.js';
import type { Session } from '../server/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { assertFaultsHit } from './helpers/fault-rate.js';
import { startHoldline } from './helpers/holdline.js';
import { assertTestScheme } from './helpers/tls.js';

const N = 2_000;
/** Requests in flight at once, each way: few, so that they take many HTTP exchanges for the faults to hit. */
const WINDOW = 16;

/** Request i: text for most, binary (4-byte index) for every fifth. */
function ask(i: number): Payload {
  if (i % 5 !== 0) return `q${i}`;
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, i);
  return b;
}

function indexOf(p: Payload): number {
  return typeof p === 'string' ? Number(p.slice(1)) : new DataView(p.buffer, p.byteOffset).getUint32(0);
}

/** Counts how often each request's listener ran; answers request i with `a<i>` (sometimes later). */
function answerer(runs: Uint16Array) {
  return (data: Payload, reply: (r: Payload) => void): Promise<Payload> | undefined => {
    const i = indexOf(data);
    runs[i] = (runs[i] ?? 0) + 1;
    if (i % 3 === 0) return Promise.resolve(`a${i}`);
    if (i % 3 === 1) setTimeout(() => reply(`a${i}`), i % 7);
    else reply(`a${i}`);
    return undefined;
  };
}

/** Make N requests, WINDOW at a time; count how often each one settled and check every answer. */
async function askAll(request: (data: Payload) => Promise<Payload>): Promise<Uint16Array> {
  const settled = new Uint16Array(N);
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      const answer = await request(ask(i));
      settled[i] = (settled[i] ?? 0) + 1;
      assert.equal(answer, `a${i}`, `the answer to request ${i}`);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  return settled;
}

const allOnes = (a: Uint16Array) => a.every((n) => n === 1);

test(`${N} requests each way through 10% connection kills: each answered once, each listener run once`, { timeout: 180_000 }, async (t) => {
  // Small batches, so that the requests take many HTTP exchanges for the faults to hit.
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000, maxMessageBytes: 2048, maxBatchBytes: 4096 });
  const serverRuns = new Uint16Array(N);
  const clientRuns = new Uint16Array(N);
  const sessions: Session[] = [];
  hl.server.on('session', (s) => {
    sessions.push(s);
    s.on('request', answerer(serverRuns));
  });
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port }, killRate: 0.1 });
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
  client.on('request', answerer(clientRuns));
  await client.connect();
  const session = sessions[0];
  assert.ok(session);

  const [up, down] = await Promise.all([
    askAll((d) => client.request(d, { timeoutMs: 120_000 })),
    askAll((d) => session.request(d, { timeoutMs: 120_000 })),
  ]);
  assert.ok(allOnes(up), 'every client request settled exactly once');
  assert.ok(allOnes(down), 'every server request settled exactly once');
  assert.ok(allOnes(serverRuns), `every client request ran the server's listener exactly once (${serverRuns.filter((n) => n !== 1).length} did not)`);
  assert.ok(allOnes(clientRuns), `every server request ran the client's listener exactly once (${clientRuns.filter((n) => n !== 1).length} did not)`);
  assert.equal(resets, 0, 'the session survived every fault');
  assert.equal(sessions.length, 1);

  assertFaultsHit(t, proxy, 0.1);
});
