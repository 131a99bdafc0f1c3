/**
 * Issue 2, items 2, 3 and the lifecycle contract: polls cut or black-holed by
 * the network are replaced; a second poll supersedes the first; idle sessions
 * expire and free what they held; the client resets (never silently) when its
 * session is gone; close reasons reach both ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { request } from 'undici';
import { HoldlineClient, type ResetEvent } from '../client/index.js';
import type { CloseReason, Payload } from '../shared/index.js';
import { MemoryStore, type Session } from '../server/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startHoldline } from './helpers/holdline.js';
import { createTestServer } from './helpers/tls.js';
import { waitFor } from './helpers/wait.js';

const fast = { reconnect: { minDelayMs: 5, maxDelayMs: 50 } };

function nextSession(hl: { server: { once(e: 'session', fn: (s: Session) => void): unknown } }): Promise<Session> {
  return new Promise((resolve) => hl.server.once('session', resolve));
}

function nextMessage(c: HoldlineClient): Promise<Payload> {
  return new Promise((resolve) => c.once('message', resolve));
}

function closeOf(x: Session | HoldlineClient): Promise<[CloseReason, Payload[]]> {
  const listen = (fn: (reason: CloseReason, unacked: Payload[]) => void) =>
    x instanceof HoldlineClient ? x.once('close', fn) : x.once('close', fn);
  return new Promise((resolve) => listen((reason, unacked) => resolve([reason, unacked])));
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

test('the server emits session before connect() resolves', async (t) => {
  const hl = await startHoldline(t);
  let seen: string | undefined;
  hl.server.on('session', (s) => (seen = s.id));
  const c = new HoldlineClient(hl.url);
  t.after(() => c.close());
  await c.connect();
  assert.equal(c.state, 'open');
  assert.equal(seen, c.sessionId);
});

test('a poll cut by the network is replaced, and nothing is lost', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const polls: IncomingMessage[] = [];
  hl.http.prependListener('request', (req: IncomingMessage) => {
    if (req.url?.endsWith('/poll')) polls.push(req);
  });
  const sessionP = nextSession(hl);
  const c = new HoldlineClient(hl.url, { ...fast, transports: ['polling'] });
  t.after(() => c.close());
  await c.connect();
  const session = await sessionP;
  await waitFor(() => session.holdingPoll, 5_000, 'a held poll');
  const before = polls.length;
  const held = polls.at(-1);
  assert.ok(held, 'a poll was seen');
  held.socket.destroy();
  await waitFor(() => polls.length > before && session.holdingPoll, 5_000, 'the replacement poll');
  const got = nextMessage(c);
  await session.send('after the cut');
  assert.equal(await got, 'after the cut');
  assert.equal(c.sessionId, session.id, 'same session');
});

test('a black-holed poll is abandoned at its deadline and replaced', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port } });
  t.after(() => proxy.close());
  const sessionP = nextSession(hl);
  const c = new HoldlineClient(`${proxy.url}/holdline`, { ...fast, holdMs: 1_000, pollGraceMs: 500 });
  t.after(() => c.close());
  await c.connect();
  const session = await sessionP;
  await waitFor(() => session.holdingPoll, 5_000, 'a held poll');
  const pollsBefore = c.stats.polls;
  // Freeze every open connection far longer than the poll's deadline (1.5 s).
  let stalled = true;
  proxy.stallNow(20_000);
  setTimeout(() => (stalled = false), 20_000).unref();
  const got = nextMessage(c);
  await session.send('through a new connection');
  assert.equal(await got, 'through a new connection');
  assert.ok(stalled, 'delivered while the old connection was still black-holed');
  assert.ok(c.stats.polls > pollsBefore);
});

test('a second concurrent poll supersedes the first', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 20_000 });
  const sessionP = nextSession(hl);
  const open = await post(`${hl.url}/open`, { v: 1, attempt: 'attempt-supersede' });
  assert.equal(open.status, 200);
  const { sid, token } = open.json as { sid: string; token: string };
  const session = await sessionP;
  const first = post(`${hl.url}/poll`, { sid, token, ack: 0 });
  await waitFor(() => session.holdingPoll, 5_000, 'first poll held');
  const started = Date.now();
  const second = post(`${hl.url}/poll`, { sid, token, ack: 0 });
  const a = await first;
  assert.equal(a.status, 200);
  assert.deepEqual(a.json.m, [], 'the superseded poll is answered empty');
  assert.ok(Date.now() - started < 10_000, 'answered at once, not at the end of its hold');
  await session.send('for the second');
  const b = await second;
  assert.deepEqual(b.json.m, ['for the second']);
});

test('a retried open (lost response) returns the same session', async (t) => {
  const hl = await startHoldline(t);
  const a = await post(`${hl.url}/open`, { v: 1, attempt: 'same-attempt-123' });
  const b = await post(`${hl.url}/open`, { v: 1, attempt: 'same-attempt-123' });
  assert.equal(a.json.sid, b.json.sid);
  assert.equal(a.json.token, b.json.token);
  assert.equal(hl.server.sessionCount, 1);
  const c = await post(`${hl.url}/open`, { v: 1, attempt: 'other-attempt-456' });
  assert.notEqual(c.json.sid, a.json.sid);
  assert.equal(hl.server.sessionCount, 2);
});

test('the store forgets an open attempt once the session is used; retrying it after that opens a new session', async (t) => {
  const store = new MemoryStore();
  const hl = await startHoldline(t, { store });
  const a = await post(`${hl.url}/open`, { v: 1, attempt: 'used-attempt-789' });
  const { sid, token } = a.json as { sid: string; token: string };
  // Kept (under the attempt id bound to the request's credentials) while the open may still be retried.
  const kept = (await store.get(sid))?.attempt ?? '';
  assert.ok(kept.startsWith('used-attempt-789.'), kept);
  assert.equal((await store.findByAttempt(kept))?.sid, sid);
  const polled = await post(`${hl.url}/poll`, { sid, token, ack: 0, hold: 0 });
  assert.equal(polled.status, 200);
  // The client has the open answer now: an idle session keeps no attempt id.
  assert.equal(await store.findByAttempt(kept), undefined);
  assert.equal((await store.get(sid))?.attempt, '');
  const again = await post(`${hl.url}/open`, { v: 1, attempt: 'used-attempt-789' });
  assert.notEqual(again.json.sid, sid);
  assert.equal(hl.server.sessionCount, 2);
  // The first session is untouched.
  const second = await post(`${hl.url}/poll`, { sid, token, ack: 0, hold: 0 });
  assert.equal(second.status, 200);
});

test('idle expiry frees the session, rejects waiting sends, and the client resets on return', { timeout: 60_000 }, async (t) => {
  const hl = await startHoldline(t, {
    sessionIdleTimeoutMs: 600,
    pollTimeoutMs: 200,
    maxMessageBytes: 1024,
    maxBatchBytes: 64 * 1024,
    // Four messages of 1,021 bytes, each counted with its 64 bytes of overhead.
    maxQueuedBytes: 4 * (1021 + 64),
    sendTimeoutMs: 60_000,
  });
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port }, faults: ['request'] });
  t.after(() => proxy.close());
  const sessionP = nextSession(hl);
  const c = new HoldlineClient(`${proxy.url}/holdline`, fast);
  t.after(() => c.close());
  const resets: ResetEvent[] = [];
  c.on('reset', (e) => resets.push(e));
  await c.connect();
  const session = await sessionP;
  const oldId = session.id;
  const closed = closeOf(session);

  // Partition: every request is cut before the server sees it whole.
  proxy.setKillRate(1);
  const queued: Promise<void>[] = [];
  for (let i = 0; i < 4; i++) queued.push(session.send('q'.repeat(1020) + i));
  const waiting = session.send('waits for room');
  const waitingResult = waiting.then(() => 'resolved', (e: { code: string }) => e.code);
  const clientLost = c.send('from the client during the partition');

  const [reason, unacked] = await closed;
  assert.equal(reason.code, 'idle_timeout');
  assert.equal(await waitingResult, 'session_closed');
  await Promise.all(queued);
  assert.equal(unacked.length, 5, 'queued, never acknowledged messages are reported, and so is the one still waiting for room');
  assert.equal(unacked[0], 'q'.repeat(1020) + '0');
  assert.equal(unacked[4], 'waits for room');
  assert.equal(hl.server.sessionCount, 0);
  assert.equal(hl.server.session(oldId), undefined);
  assert.equal(await hl.server.options.store.count(), 0, 'the store released it');
  await clientLost;

  // Heal: the client learns its session is gone and opens a new one, loudly.
  const newSession = nextSession(hl);
  proxy.setKillRate(0);
  await waitFor(() => resets.length === 1, 10_000, 'reset event');
  const [reset] = resets;
  assert.ok(reset);
  assert.equal(reset.previousSessionId, oldId);
  assert.equal(reset.reason.code, 'session_unknown');
  assert.deepEqual(reset.lost, ['from the client during the partition']);
  const fresh = await newSession;
  assert.equal(c.sessionId, fresh.id);
  await waitFor(() => c.state === 'open', 5_000, 'open again');
  const got = nextMessage(c);
  await fresh.send('hello again');
  assert.equal(await got, 'hello again');
});

test('session.send() waits while the queue is full and rejects with queue_full after sendTimeoutMs', async (t) => {
  // Room for two messages of 1,024 bytes, each counted with its 64 bytes of overhead.
  const hl = await startHoldline(t, { maxMessageBytes: 1024, maxBatchBytes: 64 * 1024, maxQueuedBytes: 2 * (1024 + 64), sendTimeoutMs: 200 });
  const sessionP = nextSession(hl);
  await post(`${hl.url}/open`, { v: 1, attempt: 'attempt-backpressure' });
  const session = await sessionP;
  await session.send('a'.repeat(1024));
  await session.send('b'.repeat(1024));
  assert.equal(session.bufferedAmount, 2048);
  const err = await session.send('c').then(() => undefined, (e: { code: string }) => e);
  assert.equal(err?.code, 'queue_full');
});

test('close reasons reach both ends', async (t) => {
  const hl = await startHoldline(t);
  // Client closes: the server session hears client_closed.
  let sessionP = nextSession(hl);
  const c1 = new HoldlineClient(hl.url);
  await c1.connect();
  const s1 = await sessionP;
  const s1Closed = closeOf(s1);
  await c1.close();
  assert.equal((await s1Closed)[0].code, 'client_closed');
  assert.equal(c1.state, 'closed');

  // Server closes: the client hears server_closed and does not reconnect.
  sessionP = nextSession(hl);
  const c2 = new HoldlineClient(hl.url);
  t.after(() => c2.close());
  const c2Closed = closeOf(c2);
  await c2.connect();
  const s2 = await sessionP;
  await waitFor(() => s2.holdingPoll, 5_000, 'held poll');
  s2.close({ code: 'server_closed', message: 'bye' });
  const [reason] = await c2Closed;
  assert.deepEqual(reason, { code: 'server_closed', message: 'bye' });
  assert.equal(c2.state, 'closed');
  assert.equal(hl.server.sessionCount, 0);
});

test('server shutdown makes clients reset onto a new server', async (t) => {
  const first = await startHoldline(undefined);
  const c = new HoldlineClient(first.url, fast);
  t.after(() => c.close());
  await c.connect();
  const oldId = c.sessionId;
  const port = first.port;
  await first.stop();
  // A new server on the same port: the old session is unknown there.
  const { HoldlineServer } = await import('../server/index.js');
  const hl2 = new HoldlineServer();
  const srv = createTestServer();
  hl2.attach(srv, { path: '/holdline' });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  t.after(async () => {
    await hl2.close();
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  });
  const reset = await new Promise<ResetEvent>((r) => c.once('reset', r));
  assert.equal(reset.previousSessionId, oldId);
  assert.equal(hl2.sessionCount, 1);
  assert.notEqual(c.sessionId, oldId);
});

test('keepAlive: true reuses connections; false opens one per request', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 200 });
  for (const keepAlive of [true, false]) {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port } });
    t.after(() => proxy.close());
    const c = new HoldlineClient(`${proxy.url}/holdline`, { keepAlive, transports: ['polling'] });
    t.after(() => c.close());
    await c.connect();
    for (let i = 0; i < 5; i++) {
      await c.send(`m${i}`);
      await waitFor(() => c.bufferedAmount === 0, 5_000, 'acked');
    }
    await waitFor(() => c.stats.polls >= 5, 5_000, 'a few polls');
    await c.close();
    const { connections, requests } = proxy.stats;
    t.diagnostic(`keepAlive ${keepAlive}: ${requests} requests on ${connections} connections`);
    if (keepAlive) assert.ok(connections <= 4 && requests >= 10, `${requests} requests on ${connections} connections`);
    else assert.ok(connections >= requests - 1, `${requests} requests on ${connections} connections`);
  }
});

test("the client's 'ack' event counts acknowledged messages in send order", async (t) => {
  const hl = await startHoldline(t);
  const c = new HoldlineClient(hl.url);
  t.after(() => c.close());
  const totals: number[] = [];
  c.on('ack', (n) => totals.push(n));
  await c.connect();
  for (let i = 0; i < 3; i++) await c.send(`m${i}`);
  await waitFor(() => totals.at(-1) === 3, 5_000, 'three acked');
  await c.send('m3');
  await waitFor(() => totals.at(-1) === 4, 5_000, 'four acked');
  assert.deepEqual(totals, [...totals].sort((a, b) => a - b), 'monotonic');
  assert.equal(c.stats.messagesAcked, 4);
  assert.equal(c.bufferedAmount, 0);
});

test('queuedAmount and flush: queued until written to the network; bufferedAmount until acknowledged', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 20_000 });
  const sessionP = nextSession(hl);
  const open = await post(`${hl.url}/open`, { v: 1, attempt: 'attempt-flush-1' });
  const { sid, token } = open.json as { sid: string; token: string };
  const session = await sessionP;
  let flushes = 0;
  session.on('flush', () => flushes++);
  await session.send('abc');
  await session.send('de');
  assert.equal(session.queuedAmount, 5, 'nothing written yet: no poll');
  assert.equal(session.bufferedAmount, 5);
  const first = await post(`${hl.url}/poll`, { sid, token, ack: 0 });
  assert.deepEqual(first.json.m, ['abc', 'de']);
  assert.equal(session.queuedAmount, 0, 'written');
  assert.equal(flushes, 1);
  assert.equal(session.bufferedAmount, 5, 'not acknowledged yet');
  const second = post(`${hl.url}/poll`, { sid, token, ack: 2 });
  await waitFor(() => session.bufferedAmount === 0, 5_000, 'acknowledged');
  session.close();
  await second;

  // The client: a send is queued until its POST is written.
  const c = new HoldlineClient(hl.url);
  t.after(() => c.close());
  await c.connect();
  let clientFlushes = 0;
  c.on('flush', () => clientFlushes++);
  // The first send goes out at once; the second waits for the first request to finish.
  await c.send('first');
  await c.send('hello');
  assert.equal(c.queuedAmount, 5);
  assert.equal(c.bufferedAmount, 10);
  await waitFor(() => clientFlushes === 2 && c.queuedAmount === 0, 5_000, 'client flush');
  await waitFor(() => c.bufferedAmount === 0, 5_000, 'client acknowledged');
});
