/**
 * What a held poll costs the Redis store: its ack and what is pending in one
 * call (test/poll-ack.test.ts shows it on any store), and with messages
 * pending, their batch read in that same call (Store.ackAndRead); and the
 * batch of a message committed while the poll is held read in the same
 * script as the append (Store.enqueueAndRead): one round trip from the
 * application's send() to the poll's answer, not an append and then a read.
 */
import assert from 'node:assert/strict';
import { after, it, type TestContext } from 'node:test';
import { RedisStore } from '../server/redis.js';
import type { Session } from '../server/index.js';
import { gated } from './helpers/gated-store.js';
import { Cleanup, openRaw, post, startServer } from './helpers/server.js';
import { startRedis } from './middlebox/redis.js';

const redis = await startRedis();
after(() => redis.stop());

/** A server on a counting RedisStore (keys under `prefix`) and one session opened on it. */
async function oneSession(t: TestContext, prefix: string) {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const counted = gated(new RedisStore({ url: redis.url, keyPrefix: `${prefix}${process.pid}:` }), 'enqueue');
  cleanup.add(() => counted.store.close?.());
  const h = await startServer({ store: counted.store, pollTimeoutMs: 10_000 });
  cleanup.add(() => h.close());
  const sessions: Session[] = [];
  h.hl.on('session', (s) => sessions.push(s));
  const s = await openRaw(h.url);
  const session = sessions[0];
  assert.ok(session);
  return { counted, h, s, session };
}

it('a message sent while the poll is held is appended and read for it in one store call', async (t) => {
  const { counted, h, s, session } = await oneSession(t, 'cost-');
  const answer = post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 8_000 }));
  // The poll is held once its store calls are done.
  for (let i = 0; i < 100 && h.hl.metrics().heldPolls === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.hl.metrics().heldPolls, 1);
  const before = { enqueue: counted.calls('enqueue'), both: counted.calls('enqueueAndRead'), read: counted.calls('readOutbound') };
  await session.send('to the held poll');
  const res = await answer;
  assert.deepEqual((JSON.parse(res.text) as { m: unknown[] }).m, ['to the held poll']);
  assert.equal(counted.calls('enqueueAndRead') - before.both, 1, 'appended and read in one call');
  assert.equal(counted.calls('enqueue') - before.enqueue, 0);
  assert.equal(counted.calls('readOutbound') - before.read, 0, 'no read of its own');
});

it("a poll whose ack leaves messages pending is answered with the batch read in the ack's call", async (t) => {
  const { counted, h, s, session } = await oneSession(t, 'cost-ack-');
  await session.send('a');
  await session.send('b');
  const first = await post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: 0 }));
  assert.deepEqual((JSON.parse(first.text) as { m: unknown[] }).m, ['a', 'b']);
  // Queued while no poll is held: the next poll's ack (2) finds it pending.
  await session.send('c');
  const before = { both: counted.calls('ackAndRead'), ack: counted.calls('ackOutbound'), read: counted.calls('readOutbound'), pending: counted.calls('pendingOutbound') };
  const res = await post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 2, hold: 8_000 }));
  assert.deepEqual((JSON.parse(res.text) as { seq: number; m: unknown[] }).m, ['c']);
  assert.equal((JSON.parse(res.text) as { seq: number }).seq, 3);
  assert.equal(counted.calls('ackAndRead') - before.both, 1, 'the ack and the read in one call');
  assert.equal(counted.calls('ackOutbound') - before.ack, 0);
  assert.equal(counted.calls('readOutbound') - before.read, 0, 'no read of its own');
  assert.equal(counted.calls('pendingOutbound') - before.pending, 0);
  assert.equal(session.bufferedAmount, 1, "the ack is applied: only 'c' is unacknowledged");
});
