/**
 * A request that arrives while its session is being closed is told how the
 * session closed (the poll gets the close frame, a send 410 session_closed),
 * exactly as a request a moment later is told by the tombstone. It is never
 * answered session_unknown (its client would reset and open a new session
 * instead of closing) and never brings the session back from the store's
 * last copy of it.
 *
 * The gaps are made wide with a store whose calls wait at a gate: the
 * owner's removal of the session (store.delete), another node's takeover
 * (store.claim), and another node's ack of a poll it serves for a live
 * owner (store.ackOutbound).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { HoldlineServer, MemoryStore, type Session, type SessionStore } from '../server/index.js';
import { gated } from './helpers/gated-store.js';
import { Cleanup, errorCode, openRaw, post, startServer, withTimeout, type RawSession } from './helpers/server.js';

async function node(cleanup: Cleanup, store: SessionStore, nodeId: string): Promise<{ hl: HoldlineServer; url: string; sessions: Session[]; errors: unknown[] }> {
  const h = await startServer({ store, nodeId, ownerLeaseMs: 10_000, pollTimeoutMs: 5_000 });
  cleanup.add(() => h.close());
  const sessions: Session[] = [];
  const errors: unknown[] = [];
  h.hl.on('session', (s) => sessions.push(s));
  h.hl.on('error', (e) => errors.push(e));
  return { hl: h.hl, url: h.url, sessions, errors };
}

const pollBody = (s: RawSession): string => JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 0 });
const sendBody = (s: RawSession): string => JSON.stringify({ sid: s.sid, token: s.token, seq: 1, ack: 0, m: ['late'] });
const closeOf = (text: string): string | undefined => (JSON.parse(text) as { close?: { code: string } }).close?.code;

it('while the owner removes a session it closed: a poll gets the close frame, a send 410 session_closed; nothing is reopened', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const gate = gated(new MemoryStore(), 'delete');
  const a = await node(cleanup, gate.store, 'a');
  cleanup.add(() => gate.open()); // before the node closes (cleanups run last first): its close waits for the store
  const s = await openRaw(a.url);
  const session = a.sessions[0];
  assert.ok(session, 'the owner emitted session');

  gate.hold();
  session.close({ code: 'server_closed', message: 'kicked' });
  await gate.waiting.until(() => gate.count() > 0, 5_000, () => 'the owner removes the session from the store');
  // The store still holds the session: only the owner knows it closed.
  const poll = await withTimeout(post(`${a.url}/poll`, pollBody(s)), 3_000, 'the poll is answered at once');
  assert.equal(poll.status, 200, poll.text);
  assert.equal(closeOf(poll.text), 'server_closed');
  const send = await post(`${a.url}/send`, sendBody(s));
  assert.equal(send.status, 410, send.text);
  assert.equal(errorCode(send), 'session_closed');
  const wrongToken = await post(`${a.url}/poll`, pollBody({ sid: s.sid, token: 'x'.repeat(22) }));
  assert.equal(wrongToken.status, 403, 'the closing session still checks its token');

  gate.open();
  const after = await post(`${a.url}/poll`, pollBody(s));
  assert.equal(closeOf(after.text), 'server_closed', 'the tombstone says the same afterwards');
  assert.equal(a.sessions.length, 1, 'no session was taken over from the store copy');
  assert.deepEqual(a.errors, []);
});

it('a node that finds a session in the store whose owner closes it before the takeover: the close frame, not session_unknown', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const shared = new MemoryStore();
  const a = await node(cleanup, shared, 'a');
  const gate = gated(shared, 'claim');
  const b = await node(cleanup, gate.store, 'b');
  cleanup.add(() => gate.open()); // before the node closes: its close waits for the store
  const s = await openRaw(a.url);
  const session = a.sessions[0];
  assert.ok(session);
  // Node a dies as far as the store can tell (its heartbeat goes), so b will try to take the session over.
  await shared.forgetNode('a');

  gate.hold();
  const poll = post(`${b.url}/poll`, pollBody(s));
  await gate.waiting.until(() => gate.count() > 0, 5_000, () => 'node b claims the session');
  // Meanwhile its owner closes it: removed from the store, a tombstone left.
  const closed = new Promise((r) => session.once('close', r));
  session.close({ code: 'server_closed', message: 'kicked' });
  await closed;
  await new Promise((r) => setTimeout(r, 50));
  gate.open();
  const answer = await withTimeout(poll, 3_000, 'the poll is answered');
  assert.equal(answer.status, 200, answer.text);
  assert.equal(closeOf(answer.text), 'server_closed');
  assert.equal(b.sessions.length, 0, 'node b took nothing over');
  assert.deepEqual([...a.errors, ...b.errors], []);
});

it('a poll on another node whose session its owner closes mid-request (after the lookup, before the ack): the close frame, not 404', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const shared = new MemoryStore();
  const a = await node(cleanup, shared, 'a');
  const gate = gated(shared, 'ackOutbound');
  const b = await node(cleanup, gate.store, 'b');
  cleanup.add(() => gate.open()); // before the node closes: its close waits for the store
  const s = await openRaw(a.url);
  const session = a.sessions[0];
  assert.ok(session);

  gate.hold();
  // Node a is alive: b serves the poll from the store without taking the session over.
  const poll = post(`${b.url}/poll`, pollBody(s));
  await gate.waiting.until(() => gate.count() > 0, 5_000, () => "node b applies the poll's ack in the store");
  const closed = new Promise((r) => session.once('close', r));
  session.close({ code: 'server_closed', message: 'kicked' });
  await closed;
  await new Promise((r) => setTimeout(r, 50));
  gate.open();
  const answer = await withTimeout(poll, 3_000, 'the poll is answered');
  assert.equal(answer.status, 200, answer.text);
  assert.equal(closeOf(answer.text), 'server_closed');
  assert.equal(b.sessions.length, 0, 'node b took nothing over');
  assert.deepEqual([...a.errors, ...b.errors], []);
});
