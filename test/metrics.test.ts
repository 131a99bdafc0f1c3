/**
 * Issue 16, items 3 and 4: hl.metrics() and client.stats count a known
 * workload exactly; holdline/prometheus exposes the same figures; the debug
 * log (DEBUG=holdline:*) tells opens, closes with reasons, poll cuts and
 * errors, and never a token or a payload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format } from 'node:util';
import createDebug from 'debug';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { HoldlineClient } from '../client/index.js';
import type { Payload } from '../shared/index.js';
import type { Session } from '../server/index.js';
import { registerMetrics } from '../server/prometheus.js';
import { startHoldline, type RunningHoldline } from './helpers/holdline.js';
import { startSquid } from './middlebox/squid.js';
import { waitFor } from './helpers/wait.js';

const fast = { reconnect: { minDelayMs: 5, maxDelayMs: 50 }, transports: ['polling' as const] };

async function post(url: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' }, signal });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Open a session by hand: its id and token. */
async function rawOpen(hl: RunningHoldline): Promise<{ sid: string; token: string }> {
  const r = await post(`${hl.url}/open`, { v: 1, attempt: `a${Math.random().toString(36).slice(2, 12)}` });
  assert.equal(r.status, 200);
  return JSON.parse(r.text) as { sid: string; token: string };
}

/** A poll held `ms`, then cut by its client (as a proxy's read timeout does); then a poll that supersedes it. */
async function cutPoll(hl: RunningHoldline, s: { sid: string; token: string }, ms: number): Promise<void> {
  const ac = new AbortController();
  const held = post(`${hl.url}/poll`, { ...s, ack: 0, hold: 10_000 }, ac.signal).catch(() => undefined);
  await new Promise((r) => setTimeout(r, ms));
  ac.abort();
  await held;
  await post(`${hl.url}/poll`, { ...s, ack: 0, hold: 0 });
}

const bytesOf = (s: string) => Buffer.byteLength(s);
const UP = ['one', 'twö', 'three ✓', '', 'five'];

/** The client sends UP; the server echoes each back; both ends see every ack. */
async function echoWorkload(hl: RunningHoldline, transports: Array<'polling' | 'websocket'> = ['polling']): Promise<{ client: HoldlineClient; session: Session }> {
  let session: Session | undefined;
  hl.server.on('session', (s) => {
    session = s;
    s.on('message', (m) => void s.send(m));
  });
  const client = new HoldlineClient(hl.url, { ...fast, transports });
  const got: Payload[] = [];
  client.on('message', (m) => got.push(m));
  await client.connect();
  for (const m of UP) await client.send(m);
  await waitFor(() => got.length === UP.length, 5_000, 'the echoes');
  await waitFor(() => client.stats.messagesAcked === UP.length && hl.server.metrics().acksPending === 0, 5_000, 'acks both ways');
  assert.ok(session);
  return { client, session };
}

test('hl.metrics() and client.stats count a known workload', async (t) => {
  const hl = await startHoldline(t);
  const { client } = await echoWorkload(hl);
  const upBytes = UP.reduce((n, m) => n + bytesOf(m), 0);

  let m = hl.server.metrics();
  assert.equal(m.sessions, 1);
  assert.equal(m.sessionsOpened, 1);
  assert.equal(m.messagesReceived, UP.length);
  assert.equal(m.bytesReceived, upBytes);
  assert.equal(m.messagesSent, UP.length);
  assert.equal(m.bytesSent, upBytes);
  assert.equal(m.acksPending, 0);
  assert.equal(m.bytesPending, 0);
  assert.equal(m.heldPolls, 1, 'the client keeps a poll held');

  const s = client.stats;
  assert.equal(s.messagesSent, UP.length);
  assert.equal(s.bytesSent, upBytes);
  assert.equal(s.messagesReceived, UP.length);
  assert.equal(s.bytesReceived, upBytes);
  assert.equal(s.acksPending, 0);
  assert.deepEqual(s.errors, {});

  // Error answers, by code.
  const other = await rawOpen(hl);
  assert.equal((await post(`${hl.url}/poll`, { sid: other.sid, token: 'x'.repeat(22), ack: 0, hold: 0 })).status, 403);
  assert.equal((await post(`${hl.url}/poll`, { sid: 'n'.repeat(16), token: 'x'.repeat(22), ack: 0, hold: 0 })).status, 404);
  m = hl.server.metrics();
  assert.equal(m.errors.bad_credential, 1);
  assert.equal(m.errors.session_unknown, 1);
  assert.equal(m.sessions, 2);

  // Closes by reason; a close the client answers with a new session is a reset.
  const closed = new Promise((r) => client.once('reset', r));
  hl.server.session(client.sessionId ?? '')?.close({ code: 'idle_timeout', message: 'test' });
  await closed;
  hl.server.session(other.sid)?.close();
  await client.close();
  await waitFor(() => hl.server.metrics().sessions === 0, 5_000, 'every session closed');
  m = hl.server.metrics();
  assert.equal(m.sessionsOpened, 3);
  assert.equal(m.sessionsClosed, 3);
  assert.deepEqual(m.closeReasons, { idle_timeout: 1, server_closed: 1, client_closed: 1 });
  assert.equal(m.resets, 1);
  assert.equal(client.stats.resets, 1);
});

test('over a WebSocket the same workload counts the same', async (t) => {
  const hl = await startHoldline(t);
  const { client } = await echoWorkload(hl, ['websocket']);
  const upBytes = UP.reduce((n, m) => n + bytesOf(m), 0);
  const m = hl.server.metrics();
  assert.equal(client.transport, 'websocket');
  assert.equal(m.websockets, 1);
  assert.equal(m.heldPolls, 0);
  assert.deepEqual([m.messagesReceived, m.bytesReceived, m.messagesSent, m.bytesSent, m.acksPending], [UP.length, upBytes, UP.length, upBytes, 0]);
  const s = client.stats;
  assert.deepEqual([s.messagesSent, s.bytesSent, s.messagesReceived, s.bytesReceived, s.acksPending], [UP.length, upBytes, UP.length, upBytes, 0]);
  await client.close();
});

test('poll-cut ages: a held poll its client drops is counted with its age', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const s = await rawOpen(hl);
  await cutPoll(hl, s, 300);
  const cuts = hl.server.metrics().pollCuts;
  assert.equal(cuts.count, 1);
  assert.ok(cuts.sumMs >= 250 && cuts.sumMs < 5_000, `age ${cuts.sumMs} ms`);
  assert.deepEqual(cuts.buckets.map((b) => b.count), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.equal(cuts.buckets.at(-1)?.leMs, Infinity);
});

test('polls a proxy cuts (squid read_timeout 2 s): counted at both ends with their age', { timeout: 60_000 }, async (t) => {
  const squid = await startSquid({ readTimeoutSec: 2 });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const client = new HoldlineClient(hl.url, { ...fast, proxy: squid.url });
  await client.connect();
  await waitFor(() => client.stats.pollCuts >= 1 && hl.server.metrics().pollCuts.count >= 1, 20_000, 'a cut counted at both ends').catch((e: unknown) => {
    throw new Error(`${String(e)}: client ${client.stats.pollCuts}, server ${hl.server.metrics().pollCuts.count}`);
  });
  const [age] = client.stats.pollCutAgesMs ?? [];
  assert.ok(age !== undefined && age >= 1_500 && age < 10_000, `client cut age ${age}`);
  const server = hl.server.metrics().pollCuts;
  assert.ok(server.sumMs / server.count >= 1_500, `server cut age ${server.sumMs / server.count}`);
  await client.close();
});

test('holdline/prometheus: the same figures, named by Prometheus conventions', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const registry = new Registry();
  const unregister = registerMetrics(hl.server, registry);
  const { client } = await echoWorkload(hl);
  await cutPoll(hl, await rawOpen(hl), 200);
  const text = await registry.metrics();
  await client.close();
  assert.match(text, /^holdline_sessions 2$/m);
  assert.match(text, /^holdline_messages_total\{direction="in"\} 5$/m);
  assert.match(text, /^holdline_messages_total\{direction="out"\} 5$/m);
  assert.match(text, new RegExp(`^holdline_payload_bytes_total\\{direction="in"\\} ${UP.reduce((n, m) => n + bytesOf(m), 0)}$`, 'm'));
  assert.match(text, /^holdline_sessions_opened_total 2$/m);
  assert.match(text, /^holdline_acks_pending 0$/m);
  assert.match(text, /^holdline_poll_cut_age_seconds_count 1$/m);
  assert.match(text, /^holdline_poll_cut_age_seconds_bucket\{le="1"\} 1$/m);
  assert.match(text, /# TYPE holdline_errors_total counter/);
  unregister();
  assert.equal((await registry.metrics()).trim(), '');
  assert.throws(() => registerMetrics(hl.server, registry, { prefix: 'bad-name' }), TypeError);
});

test('the debug log tells opens, closes, cuts and errors, and never a token or a payload', async (t) => {
  const lines: string[] = [];
  const savedLog = createDebug.log;
  const savedNamespaces = createDebug.disable();
  createDebug.log = (...args: unknown[]) => void lines.push(format(...args));
  createDebug.enable('holdline:*');
  t.after(() => {
    createDebug.log = savedLog;
    createDebug.enable(savedNamespaces);
  });

  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  const secret = 'PAYLOAD-c0ffee-never-logged';
  let session: Session | undefined;
  hl.server.on('session', (s) => {
    session = s;
    s.on('message', (m) => void s.send(`${String(m)}!`));
  });
  const client = new HoldlineClient(hl.url, fast);
  const got = new Promise((r) => client.once('message', r));
  await client.connect();
  await client.send(secret);
  await got;
  const raw = await rawOpen(hl);
  await cutPoll(hl, raw, 200);
  await post(`${hl.url}/poll`, { sid: raw.sid, token: 'y'.repeat(22), ack: 0, hold: 0 });
  assert.ok(session);
  const clientToken = session.token;
  hl.server.session(raw.sid)?.close();
  await client.close();
  await waitFor(() => hl.server.metrics().sessions === 0, 5_000, 'every session closed');

  const log = lines.join('\n');
  assert.match(log, new RegExp(`holdline:server session ${session.id} opened`));
  assert.match(log, new RegExp(`holdline:server session ${raw.sid} closed: server_closed`));
  assert.match(log, /holdline:server session \S+ closed: client_closed/);
  assert.match(log, new RegExp(`holdline:polling poll of ${raw.sid} cut after \\d+ ms held`));
  assert.match(log, /holdline:server answered 403 bad_credential/);
  assert.match(log, /holdline:client connecting -> open \(session /);
  assert.match(log, /holdline:client closed: client_closed/);
  for (const forbidden of [secret, `${secret}!`, clientToken, raw.token]) {
    assert.ok(!log.includes(forbidden), `the log shows ${forbidden}`);
  }
});
