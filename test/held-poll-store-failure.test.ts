/**
 * A held poll whose batch the store cannot give (its calls fail): at the
 * end of its hold it is answered with an empty batch, not held until the
 * client's deadline (the client would count a lost poll, and go
 * `reconnecting`). The failure is reported as an 'error' of the server.
 * A read that keeps failing while the rest of the store works (a message
 * pending that no poll can read) gets one answer per hold, not a loop of
 * polls answered at once.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore } from '../server/index.js';
import { Cleanup, openRaw, post, startServer, withTimeout } from './helpers/server.js';
import { killable } from './multi-node/helpers.js';

describe('a held poll whose batch the store cannot give', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('is answered empty at the end of its hold, not held until the client gives up', async () => {
    const cut = killable(new MemoryStore());
    const h = await startServer({ store: cut.store, pollTimeoutMs: 1_000 });
    cleanup.add(() => h.close());
    const errors: unknown[] = [];
    h.hl.on('error', (e) => errors.push(e));
    const s = await openRaw(h.url);
    const held = post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0 }));
    await new Promise((r) => setTimeout(r, 100));
    cut.kill();
    const answer = await withTimeout(held, 5_000, 'the held poll answered at the end of its hold (1 s)');
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { ack: 0, seq: 0, m: [] }, 'an empty batch, its ack 0 (the client ignores an ack below its own)');
    assert.ok(errors.some((e) => e instanceof Error && e.message === 'store connection lost'), 'the store failure reported');
  });
});

describe('a held poll whose batch read keeps failing while the rest of the store works', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('is answered at the end of each hold, not at once: one poll per hold, not a loop', async () => {
    const memory = new MemoryStore();
    // Only the batch read fails (a record that no longer decodes, say): a poll is taken, and finds a message pending.
    const store = new Proxy(memory, {
      get(target, prop, receiver) {
        if (prop === 'readOutbound') return () => Promise.reject(new Error('batch read failed'));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const HOLD_MS = 400;
    const h = await startServer({ store, pollTimeoutMs: HOLD_MS });
    cleanup.add(() => h.close());
    const errors: unknown[] = [];
    h.hl.on('error', (e) => errors.push(e));
    const s = await openRaw(h.url);
    const session = h.hl.session(s.sid);
    assert.ok(session);
    await session.send('pending');
    // A client that polls again as soon as each answer comes, never acking the message.
    const started = Date.now();
    let polls = 0;
    while (Date.now() - started < 2_000) {
      const answer = await post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0 }));
      assert.equal(answer.status, 200, answer.text);
      polls++;
    }
    assert.ok(polls <= Math.ceil(2_000 / HOLD_MS) + 1, `${polls} polls in 2 s with a ${HOLD_MS} ms hold`);
    assert.ok(polls >= 2, `${polls} polls answered`);
    assert.ok(errors.length > 0, 'the failed reads reported');
  });
});
