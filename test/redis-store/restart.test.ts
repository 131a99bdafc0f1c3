/**
 * A RedisStore whose Redis restarts without its data (a redis-server of this
 * test's own, stopped and started again on its port): the owner closes the
 * sessions the store lost at its next heartbeat, with session_unknown, not
 * at their idle timeout; a send on such a session fails with session_closed,
 * and the client resets to a new session.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import { HoldlineError } from '../../shared/index.js';
import { recordingClient, startNode } from '../helpers/nodes.js';
import { Cleanup, Condition } from '../helpers/server.js';
import { startRedis } from '../middlebox/redis.js';
import { freshPrefix } from './helpers.js';

describe('RedisStore: Redis restarted without its data', () => {
  test('the owner closes its sessions the store lost at its next heartbeat (session_unknown), not at their idle timeout', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    // A Redis of this test's own, to restart.
    let own = await startRedis();
    cleanup.add(() => own.stop());
    const store = new RedisStore({ url: own.url, keyPrefix: freshPrefix() });
    cleanup.add(() => store.close());
    // Idle timeout far beyond the test: only the heartbeat's check can close the session in time.
    const { hl, origin } = await startNode(cleanup, { store, nodeId: 'restart-node', ownerLeaseMs: 600, sessionIdleTimeoutMs: 300_000, pollTimeoutMs: 1_000 });
    const changed = new Condition();
    const closes: { sid: string; code: string }[] = [];
    hl.on('session', (s) => {
      s.on('close', (reason) => {
        closes.push({ sid: s.id, code: reason.code });
        changed.notify();
      });
    });
    const { client, resets } = await recordingClient(cleanup, origin, changed);
    const sid = client.sessionId ?? '';
    const session = hl.session(sid);
    assert.ok(session, 'the node owns the session');
    await session.send('before');

    const { port } = own;
    await own.stop();
    own = await startRedis({ port });

    await changed.until(() => closes.some((c) => c.sid === sid), 20_000, () => `closes ${JSON.stringify(closes)}`);
    assert.deepEqual(closes.filter((c) => c.sid === sid), [{ sid, code: 'session_unknown' }], 'closed once, with the reason');
    assert.equal(hl.session(sid), undefined, 'the node no longer holds it');
    await assert.rejects(session.send('after'), (e: unknown) => e instanceof HoldlineError && e.code === 'session_closed');
    // The client learns it too (its next poll), and goes on with a new session.
    await changed.until(() => resets.length > 0, 20_000, () => 'the client resets');
    assert.equal(resets[0]?.previousSessionId, sid);
    assert.notEqual(client.sessionId, sid);
  });
});
