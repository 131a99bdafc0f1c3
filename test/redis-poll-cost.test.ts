/**
 * What a held poll costs the Redis store: its ack and what is pending in one
 * call (test/poll-ack.test.ts shows it on any store), and the batch of a
 * message committed while the poll is held read in the same script as the
 * append (Store.enqueueAndRead): one round trip from the application's
 * send() to the poll's answer, not an append and then a read.
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { RedisStore } from '../server/redis.js';
import type { Session } from '../server/index.js';
import { gated } from './helpers/gated-store.js';
import { Cleanup, openRaw, post, startServer } from './helpers/server.js';
import { startRedis } from './middlebox/redis.js';

const redis = await startRedis();
after(() => redis.stop());

it('a message sent while the poll is held is appended and read for it in one store call', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const counted = gated(new RedisStore({ url: redis.url, keyPrefix: `cost-${process.pid}:` }), 'enqueue');
  cleanup.add(() => counted.store.close?.());
  const h = await startServer({ store: counted.store, pollTimeoutMs: 10_000 });
  cleanup.add(() => h.close());
  const sessions: Session[] = [];
  h.hl.on('session', (s) => sessions.push(s));
  const s = await openRaw(h.url);
  const session = sessions[0];
  assert.ok(session);
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
