/**
 * A poll's ack is applied once the poll is held, and the store's answer to
 * it says what is pending: one store call per poll, not an ack and then a
 * second look at the stream (with a networked store, one round trip less on
 * every poll). While the ack is in flight the poll is not answered: a
 * message committed meanwhile wakes it once the ack is in (and starts past
 * the ack), and a refused ack is answered bad_ack, never a batch.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryStore, type Session } from '../server/index.js';
import { gated } from './helpers/gated-store.js';
import { Cleanup, errorCode, openRaw, post, startServer, withTimeout, type RawSession } from './helpers/server.js';

interface Batch {
  ack: number;
  seq: number;
  m: unknown[];
}

const poll = (url: string, s: RawSession, ack: number, hold: number) => post(`${url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack, hold }));

async function setup(t: { after(fn: () => unknown): void }) {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const gate = gated(new MemoryStore(), 'ackOutbound');
  const h = await startServer({ store: gate.store, pollTimeoutMs: 10_000 });
  cleanup.add(() => h.close());
  cleanup.add(() => gate.open()); // runs first: a gated call must not hold up the server's close
  const sessions: Session[] = [];
  h.hl.on('session', (s) => sessions.push(s));
  const s = await openRaw(h.url);
  const session = sessions[0];
  assert.ok(session);
  // One message out and read: the next poll's ack (1) is new.
  await session.send('first');
  const first = await poll(h.url, s, 0, 0);
  assert.deepEqual((JSON.parse(first.text) as Batch).m, ['first']);
  return { h, gate, s, session };
}

it('a poll carrying a new ack costs one store call for its ack and what is pending (no pendingOutbound)', async (t) => {
  const { h, gate, s } = await setup(t);
  const acks = gate.calls('ackOutbound');
  const looks = gate.calls('pendingOutbound');
  const res = await poll(h.url, s, 1, 100);
  assert.equal(res.status, 200);
  assert.deepEqual((JSON.parse(res.text) as Batch).m, [], 'held, then answered empty at the end of its hold');
  assert.equal(gate.calls('ackOutbound') - acks, 1, 'the ack was applied once');
  assert.equal(gate.calls('pendingOutbound') - looks, 0, 'no second store call to learn what is pending');
});

it('a message committed while the held poll\'s ack is in flight is its answer once the ack is in, starting past the ack', async (t) => {
  const { h, gate, s, session } = await setup(t);
  gate.hold();
  const answer = poll(h.url, s, 1, 8_000);
  await gate.waiting.until(() => gate.count() > 0, 5_000, () => 'the poll applies its ack');
  await session.send('second');
  // The wake-up (at the end of the turn) finds the poll waiting for its ack.
  await new Promise((r) => setImmediate(r));
  gate.open();
  const res = await withTimeout(answer, 4_000, 'the poll answered with the message (not at the end of its 8 s hold)');
  const b = JSON.parse(res.text) as Batch;
  assert.equal(b.seq, 2, 'the acked message is not sent again');
  assert.deepEqual(b.m, ['second']);
});

it('a poll whose ack is refused is answered 400 bad_ack, even when a message woke it while the ack was in flight; the message goes on the next poll', async (t) => {
  const { h, gate, s, session } = await setup(t);
  gate.hold();
  const answer = poll(h.url, s, 9, 8_000);
  await gate.waiting.until(() => gate.count() > 0, 5_000, () => 'the poll applies its ack');
  await session.send('second');
  // The wake-up (at the end of the turn) finds the poll waiting for its ack.
  await new Promise((r) => setImmediate(r));
  gate.open();
  const res = await withTimeout(answer, 4_000, 'the refused poll answered');
  assert.equal(res.status, 400);
  assert.equal(errorCode(res), 'bad_ack');
  const next = await poll(h.url, s, 1, 0);
  assert.deepEqual((JSON.parse(next.text) as Batch).m, ['second']);
});
