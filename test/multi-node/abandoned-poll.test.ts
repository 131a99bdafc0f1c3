/**
 * A poll the client gave up on the owner (a dead poll replaced, or a
 * balancer sending its next poll elsewhere) while the owner still holds it.
 * A poll held on the owner is where the owner's commits go, and then it
 * wakes no other node. So a commit the owner makes after the client's new
 * poll is held on another node, but before the owner hears of that poll,
 * goes on the poll nobody reads; the new poll must still get it, at once,
 * not when its hold ends. With one MemoryStore shared in this process, and
 * with a RedisStore on each node (one redis-server of the test's own).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../../server/index.js';
import { Cleanup, openRaw, post, startServer, withTimeout } from '../helpers/server.js';
import { assertTestScheme } from '../helpers/tls.js';
import { heldAfter300, messagesOf, pausableEvents, storeKinds } from './helpers.js';

/** Long enough that an answer at the end of a hold fails the test's deadline. */
const HOLD_MS = 10_000;

describe('a poll the client gave up on the owner, its next one held on another node', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  for (const [name, makeStores] of storeKinds(cleanup, 'abandoned')) {
    it(`what the owner commits before it hears of the new poll reaches that poll at once (${name})`, async () => {
      const storeFor = await makeStores();
      const events = pausableEvents(storeFor());
      const a = await startServer({ store: events.store, nodeId: 'abandoned-a', pollTimeoutMs: HOLD_MS });
      cleanup.add(() => a.close());
      const b = await startServer({ store: storeFor(), nodeId: 'abandoned-b', pollTimeoutMs: HOLD_MS });
      cleanup.add(() => b.close());
      assertTestScheme(a.url, 'node a');
      assertTestScheme(b.url, 'node b');
      const ownerP = new Promise<Session>((resolve) => a.hl.once('session', resolve));
      const s = await openRaw(a.url);
      const owner = await ownerP;
      const body = JSON.stringify({ sid: s.sid, token: s.token, ack: 0, hold: HOLD_MS });
      const old = post(`${a.url}/poll`, body);
      assert.equal(await heldAfter300(old), 'held', 'the owner holds the first poll');
      // The client gives that poll up and polls node B; the owner does not hear of it yet.
      events.pause();
      const next = post(`${b.url}/poll`, body);
      assert.equal(await heldAfter300(next), 'held', 'B holds the new poll: nothing was pending');
      await owner.send('while the owner held the old poll');
      assert.deepEqual(messagesOf(await withTimeout(old, 5_000, 'the answer to the old poll')), ['while the owner held the old poll'], 'the old poll took it (nobody reads that answer)');
      events.resume();
      await events.delivered((sid, e) => sid === s.sid && e.type === 'poll' && e.node === 'abandoned-b', "B's poll's wake-up on the owner");
      const answer = await withTimeout(next, 3_000, 'the new poll answered before its hold ends');
      assert.deepEqual(messagesOf(answer), ['while the owner held the old poll']);
    });
  }
});
