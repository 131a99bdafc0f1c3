/**
 * A request whose ack the server has applied already does not ask the store
 * again (the echo path's send carries the ack its poll just gave); a new ack
 * does, and a wrong one is still refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../server/index.js';
import { startHoldline } from './helpers/holdline.js';
import { errorCode, openRaw, post } from './helpers/server.js';

const json = (v: unknown) => JSON.stringify(v);

test('an ack applied already skips the store; a new one is applied; one past the last message is bad_ack', async (t) => {
  class CountingStore extends MemoryStore {
    acks: number[] = [];
    override ackOutbound(sid: string, ack: number) {
      this.acks.push(ack);
      return super.ackOutbound(sid, ack);
    }
  }
  const store = new CountingStore();
  const hl = await startHoldline(t, { store, pollTimeoutMs: 1_000 });
  const s = await openRaw(hl.url);
  const session = hl.server.session(s.sid);
  assert.ok(session);
  const auth = { sid: s.sid, token: s.token };
  const send = (ack: number, seq: number) => post(`${hl.url}/send`, json({ ...auth, ack, seq, m: [`c${seq}`] }));
  const poll = (ack: number) => post(`${hl.url}/poll`, json({ ...auth, ack, hold: 0 }));

  // Nothing sent to the client yet: ack 0 is applied by definition.
  assert.equal((await send(0, 1)).status, 200);
  assert.deepEqual(store.acks, []);
  await session.send('s1');
  await session.send('s2');
  assert.equal((await poll(0)).status, 200);
  assert.deepEqual(store.acks, [], 'a poll whose ack is unchanged skips the store too');
  // A new ack goes to the store once; repeating it does not.
  assert.equal((await poll(2)).status, 200);
  assert.equal((await send(2, 2)).status, 200);
  assert.deepEqual(store.acks, [2]);
  assert.equal(session.bufferedAmount, 0, 'the ack was applied');
  // Past the last message: refused, as before.
  const bad = await send(3, 3);
  assert.equal(bad.status, 400);
  assert.equal(errorCode(bad), 'bad_ack');
  assert.deepEqual(store.acks, [2, 3]);
});
