/**
 * Core v2, item 2: a server that keeps losing sessions never sees a hot loop.
 *
 * Every poll and send on a session answered 404 session_unknown right after
 * its open (two nodes that share no state behind round-robin look like this
 * to a client) used to make the client open a new session at once, again and
 * again: 116,000 requests in 30 s. It now backs off between resets as it does
 * between reconnects: the first reset is immediate, each next one waits
 * longer, and a session that lived maxDelayMs or more starts that over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type ReconnectingEvent, type ResetEvent } from '../client/index.js';
import { DEFAULTS } from '../shared/index.js';
import { closeHttpServer, listen } from './helpers/server.js';

interface Forgetful {
  url: string;
  /** Requests per endpoint ('/open', '/poll', '/send', '/close'). */
  counts: Map<string, number>;
  /** While true, polls on any session are held `holdMs` and answered empty (a healthy server). */
  healthy: boolean;
}

/**
 * A server speaking just enough of the protocol: /open opens a new session
 * each time, /poll and /send on any session get 404 session_unknown (unless
 * `healthy`), /close gets 200.
 */
async function startForgetful(t: { after(fn: () => Promise<void>): void }, holdMs = 200): Promise<Forgetful> {
  const counts = new Map<string, number>();
  let opened = 0;
  const state: Forgetful = { url: '', counts, healthy: false };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').replace(/^\/holdline/, '');
    counts.set(path, (counts.get(path) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': status === 200 ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (path === '/open') {
        opened++;
        json(200, {
          v: 1, sid: `session-${String(opened).padStart(8, '0')}`, token: 'token-token-token-token',
          pollTimeoutMs: 25_000, sessionIdleTimeoutMs: 60_000, maxMessageBytes: 1024 * 1024, maxBatchBytes: 4 * 1024 * 1024,
        });
      } else if (path === '/close') {
        json(200, {});
      } else if (state.healthy && path === '/poll') {
        setTimeout(() => json(200, { ack: 0, seq: 1, m: [] }), holdMs);
      } else if (state.healthy && path === '/send') {
        json(200, { ack: 0 });
      } else {
        json(404, { error: { code: 'session_unknown', message: 'no such session' } });
      }
    });
  });
  const origin = await listen(server);
  t.after(() => closeHttpServer(server));
  state.url = `${origin}/holdline`;
  return state;
}

function sessionLost(events: ReconnectingEvent[]): number[] {
  return events.filter((e) => e.error.code === 'session_lost').map((e) => e.delayMs);
}

test('a server that loses every session right after its open sees a bounded number of requests; the delays between resets grow', { timeout: 20_000 }, async (t) => {
  const server = await startForgetful(t);
  const client = new HoldlineClient(server.url);
  t.after(() => client.close());
  const resets: ResetEvent[] = [];
  const reconnecting: ReconnectingEvent[] = [];
  client.on('reset', (e) => resets.push(e));
  client.on('reconnecting', (e) => reconnecting.push(e));
  await client.connect();
  // The application keeps sending: sends hear 404 too.
  const sender = setInterval(() => void client.send('still here').catch(() => {}), 50);
  t.after(() => clearInterval(sender));
  await sleep(3_000);
  clearInterval(sender);

  const opens = server.counts.get('/open') ?? 0;
  const requests = [...server.counts.values()].reduce((a, b) => a + b, 0);
  assert.ok(opens < 40, `opens in 3 s: ${opens}`);
  assert.ok(requests < 120, `requests in 3 s: ${requests}`);
  // With the default back-off (250 ms doubling, equal jitter): 0, 125-250, 250-500, 500-1000, 1000-2000 ms.
  assert.ok(opens >= 3, `the client still tries: ${opens} opens`);
  assert.ok(resets.length >= 2, `reset events: ${resets.length}`);
  for (let i = 1; i < resets.length; i++) {
    assert.equal(resets[i]?.previousSessionId, resets[i - 1]?.sessionId, 'each reset names the session before it');
  }
  const delays = sessionLost(reconnecting);
  assert.ok(delays.length >= 3, `session_lost reconnecting events: ${delays.length}`);
  assert.equal(delays[0], 0, 'the first reset opens a new session at once');
  for (let i = 2; i < delays.length; i++) {
    assert.ok((delays[i] ?? 0) >= (delays[i - 1] ?? 0), `delays keep growing: ${delays.join(', ')}`);
  }
  assert.ok((delays.at(-1) ?? 0) >= DEFAULTS.reconnectMinDelayMs, `the delay grew past the first step: ${delays.join(', ')}`);
  assert.ok(client.state === 'reconnecting' || client.state === 'open', `state ${client.state}`);
});

test('a session that lived maxDelayMs before it was lost is replaced at once, not after the grown delay', { timeout: 20_000 }, async (t) => {
  const server = await startForgetful(t, 100);
  const client = new HoldlineClient(server.url, { reconnect: { minDelayMs: 100, maxDelayMs: 400 } });
  t.after(() => client.close());
  const reconnecting: ReconnectingEvent[] = [];
  client.on('reconnecting', (e) => reconnecting.push(e));
  await client.connect();
  // Lost again and again: the delays grow to their cap.
  const deadline = Date.now() + 10_000;
  while (sessionLost(reconnecting).length < 5 && Date.now() < deadline) await sleep(20);
  assert.ok(sessionLost(reconnecting).length >= 5, 'five resets in a row');
  assert.ok((sessionLost(reconnecting).at(-1) ?? 0) >= 200, `grown: ${sessionLost(reconnecting).join(', ')}`);
  // Healthy for longer than maxDelayMs: the session lives, then the server forgets it once.
  server.healthy = true;
  const healthySince = reconnecting.length;
  await sleep(900);
  assert.equal(sessionLost(reconnecting.slice(healthySince)).length <= 1, true, 'no loss while healthy (besides one in flight)');
  const before = reconnecting.length;
  server.healthy = false;
  while (sessionLost(reconnecting.slice(before)).length < 1 && Date.now() < deadline + 5_000) await sleep(20);
  assert.equal(sessionLost(reconnecting.slice(before))[0], 0, 'a long-lived session lost: the next opens at once');
});
