/**
 * Identity (issue 15): the client's `auth` option rides in the /open body to
 * the server's `authenticate(req, auth)` hook, whose data becomes
 * `session.data` (on every node of a cluster); a refused open is
 * `unauthorized` at once; a token function is called again at every open;
 * cookies keep working; `session.remoteAddress` honours `trustProxy`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { HoldlineClient, type ResetEvent } from '../client/index.js';
import { HoldlineError, HoldlineServer, MemoryStore, type Session } from '../server/index.js';
import { startHoldline } from './helpers/holdline.js';
import { attachNode } from './helpers/nodes.js';
import { Cleanup, openRaw, post } from './helpers/server.js';

const FAST = { reconnect: { minDelayMs: 20, maxDelayMs: 200 } };

function nextSession(hl: HoldlineServer): Promise<Session> {
  return new Promise((resolve) => hl.once('session', resolve));
}

test('auth reaches authenticate (in the body, not the URL or a header) and its data becomes session.data', async (t) => {
  const calls: { auth: unknown; url: string | undefined; headers: string[] }[] = [];
  const hl = await startHoldline(t, {
    pollTimeoutMs: 1_000,
    authenticate: (req: IncomingMessage, auth) => {
      calls.push({ auth, url: req.url, headers: Object.keys(req.headers) });
      return auth?.token === 'secret-1' ? { user: 'ann', roles: ['admin'] } : false;
    },
  });
  const sessionP = nextSession(hl.server);
  const c = new HoldlineClient(hl.url, { ...FAST, auth: { token: 'secret-1' } });
  t.after(() => c.close());
  await c.connect();
  const session = await sessionP;
  assert.deepEqual(session.data, { user: 'ann', roles: ['admin'] });
  assert.equal(session.remoteAddress, '127.0.0.1');
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]?.auth, { token: 'secret-1' });
  assert.doesNotMatch(calls[0]?.url ?? '', /secret/);
  assert.ok(!calls[0]?.headers.some((h) => h !== 'content-type' && h.startsWith('x-')), 'no custom header');
});

test('authenticate returning true leaves session.data undefined; a client without auth gives the hook undefined', async (t) => {
  const seen: unknown[] = [];
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, authenticate: (_req, auth) => (seen.push(auth), true) });
  const sessionP = nextSession(hl.server);
  const c = new HoldlineClient(hl.url, FAST);
  t.after(() => c.close());
  await c.connect();
  assert.equal((await sessionP).data, undefined);
  assert.deepEqual(seen, [undefined]);
});

test('a refused open is unauthorized at once: connect() rejects, no retry', async (t) => {
  let calls = 0;
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, authenticate: () => (calls++, false) });
  const c = new HoldlineClient(hl.url, { ...FAST, auth: { token: 'wrong' } });
  const started = Date.now();
  await assert.rejects(c.connect(), (e: unknown) => e instanceof HoldlineError && e.code === 'unauthorized');
  assert.ok(Date.now() - started < 1_000, 'at once, not after retries');
  assert.equal(calls, 1, 'the open was not retried');
  assert.equal(c.state, 'closed');
  await assert.rejects(c.send('x'), { code: 'unauthorized' });
});

test('a token function is called again at every open: a reset sends a fresh token', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, authenticate: (_req, auth) => ({ token: auth?.token }) });
  let n = 0;
  const sessions: Session[] = [];
  hl.server.on('session', (s) => sessions.push(s));
  const c = new HoldlineClient(hl.url, { ...FAST, transports: ['polling'], auth: async () => ({ token: `token-${++n}` }) });
  t.after(() => c.close());
  await c.connect();
  assert.equal(n, 1);
  const reset = new Promise<ResetEvent>((resolve) => c.once('reset', resolve));
  // The server forgets the session (as after an idle timeout): the client opens a new one.
  sessions[0]?.close({ code: 'idle_timeout', message: 'test' });
  await reset;
  assert.equal(n, 2);
  assert.deepEqual(sessions.map((s) => s.data), [{ token: 'token-1' }, { token: 'token-2' }]);
});

test('a token function that throws is retried with back-off; one returning a non-object is invalid_argument', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, authenticate: (_req, auth) => auth?.ok === true });
  let n = 0;
  const c = new HoldlineClient(hl.url, {
    ...FAST,
    auth: () => {
      if (++n < 3) throw new Error('token service down');
      return { ok: true };
    },
  });
  t.after(() => c.close());
  const codes: string[] = [];
  c.on('reconnecting', (e) => codes.push(e.error.code));
  await c.connect();
  assert.deepEqual(codes, ['listener_error', 'listener_error']);
  const bad = new HoldlineClient(hl.url, { ...FAST, auth: (() => 'token') as unknown as () => Record<string, unknown> });
  await assert.rejects(bad.connect(), (e: unknown) => e instanceof HoldlineError && e.code === 'invalid_argument' && /"auth"/.test(e.message));
  assert.throws(() => new HoldlineClient(hl.url, { auth: 'token' as unknown as Record<string, unknown> }), { code: 'invalid_argument' });
  assert.throws(() => new HoldlineClient(hl.url, { auth: { big: 'x'.repeat(4000) } }), { code: 'invalid_argument' });
});

test('cookies keep working: the hook reads them off the open request', async (t) => {
  const hl = await startHoldline(t, {
    pollTimeoutMs: 1_000,
    authenticate: (req) => (req.headers.cookie === 'sid=abc' ? { via: 'cookie' } : false),
  });
  const sessionP = nextSession(hl.server);
  await openRaw(hl.url, { cookie: 'sid=abc' });
  assert.deepEqual((await sessionP).data, { via: 'cookie' });
  const refused = await post(`${hl.url}/open`, JSON.stringify({ v: 1, attempt: 'attempt-no-cookie' }));
  assert.equal(refused.status, 403);
});

test('an open body whose auth is not an object is malformed_request', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000 });
  for (const auth of ['token', 1, null, [1]]) {
    const r = await post(`${hl.url}/open`, JSON.stringify({ v: 1, attempt: 'attempt-bad-auth', auth }));
    assert.equal(r.status, 400, JSON.stringify(auth));
    assert.match(r.text, /malformed_request/);
  }
});

test('a retried open with another auth does not get the first one\'s session', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, authenticate: (_req, auth) => ({ who: auth?.who }) });
  const open = async (who: string) => JSON.parse((await post(`${hl.url}/open`, JSON.stringify({ v: 1, attempt: 'attempt-same-id', auth: { who } }))).text) as { sid: string };
  const a1 = await open('ann');
  const a2 = await open('ann');
  const b = await open('bob');
  assert.equal(a1.sid, a2.sid, 'the same credentials get the same session back');
  assert.notEqual(a1.sid, b.sid, 'other credentials never get it');
});

test('session.remoteAddress honours trustProxy (the first X-Forwarded-For address)', async (t) => {
  for (const trustProxy of [false, true]) {
    const hl = await startHoldline(t, { pollTimeoutMs: 1_000, trustProxy });
    const sessionP = nextSession(hl.server);
    await openRaw(hl.url, { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' });
    assert.equal((await sessionP).remoteAddress, trustProxy ? '203.0.113.7' : '127.0.0.1');
  }
});

test('sessions that share an address share nothing else: each keeps its own address and data', async (t) => {
  // Sessions opened from one address with no hook data share one identity
  // object; one from another address, or with data, must not get it.
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, trustProxy: true, authenticate: (_req, auth) => (auth === undefined ? true : { user: auth.user }) });
  const opens: Array<{ from: string; auth?: { user: string } }> = [
    { from: '203.0.113.1' },
    { from: '203.0.113.1' },
    { from: '203.0.113.2' },
    { from: '203.0.113.2', auth: { user: 'ann' } },
    { from: '203.0.113.2' },
    { from: '203.0.113.1' },
  ];
  const got: Array<{ address: string | undefined; data: unknown }> = [];
  for (const o of opens) {
    const sessionP = nextSession(hl.server);
    const body = { v: 1, attempt: `identity-${got.length}`, ...(o.auth === undefined ? {} : { auth: o.auth }) };
    const res = await post(`${hl.url}/open`, JSON.stringify(body), { 'x-forwarded-for': o.from });
    assert.equal(res.status, 200, res.text);
    const s = await sessionP;
    got.push({ address: s.remoteAddress, data: s.data });
  }
  assert.deepEqual(
    got,
    opens.map((o) => ({ address: o.from, data: o.auth === undefined ? undefined : { user: o.auth.user } })),
  );
});

test('session.data and remoteAddress are on the node that takes a session over', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const store = new MemoryStore();
  const nodes: { hl: HoldlineServer; origin: string }[] = [];
  for (const nodeId of ['node-a', 'node-b']) {
    const hl = new HoldlineServer({ store, nodeId, pollTimeoutMs: 1_000, trustProxy: true, authenticate: (_req, auth) => ({ user: auth?.user }) });
    const { origin } = await attachNode(cleanup, hl);
    nodes.push({ hl, origin });
  }
  const [a, b] = nodes as [{ hl: HoldlineServer; origin: string }, { hl: HoldlineServer; origin: string }];
  const onA = nextSession(a.hl);
  const opened = await post(`${a.origin}/holdline/open`, JSON.stringify({ v: 1, attempt: 'attempt-takeover', auth: { user: 'ann' } }), { 'x-forwarded-for': '198.51.100.9' });
  const { sid, token } = JSON.parse(opened.text) as { sid: string; token: string };
  assert.deepEqual((await onA).data, { user: 'ann' });
  // Node A leaves (hands its sessions over); the client's next request reaches node B.
  await a.hl.close();
  const onB = nextSession(b.hl);
  const polled = await post(`${b.origin}/holdline/poll`, JSON.stringify({ sid, token, ack: 0, hold: 0 }));
  assert.equal(polled.status, 200, polled.text);
  const taken = await onB;
  assert.equal(taken.id, sid);
  assert.deepEqual(taken.data, { user: 'ann' });
  assert.equal(taken.remoteAddress, '198.51.100.9');
});
