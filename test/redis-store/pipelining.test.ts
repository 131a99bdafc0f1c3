/**
 * RedisStore's command path, on a redis-server of this file's own: calls of
 * many sessions issued together run as a few many-session scripts, each with
 * its own reply, in order; after SCRIPT FLUSH, calls alone and in a pipeline
 * run from the source; calls issued turn by turn while a pipeline waits go
 * out together when its replies come.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import { HoldlineError } from '../../shared/index.js';
import { freshPrefix, testRedis } from './helpers.js';

const { redis, inspector } = await testRedis();

describe('RedisStore: pipelining', () => {
  /** EVALSHA calls Redis has run so far (INFO commandstats). */
  async function evalshaCalls(): Promise<number> {
    const m = /cmdstat_evalsha:calls=(\d+)/.exec(await inspector.info('commandstats'));
    return Number(m?.[1] ?? 0);
  }

  test('calls of many sessions issued together run as a few many-session scripts, each with its own reply, in order', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = Array.from({ length: 300 }, (_, i) => `p${i}`);
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    await store.delete('p150');
    await store.enqueue('p7', [{ wire: 'first', bytes: 5 }]);
    const before = await evalshaCalls();
    // As a broadcast issues them: one enqueue per session in one turn, a session the store lost among them.
    const enqueued = await Promise.allSettled(sids.map((sid) => store.enqueue(sid, [{ wire: `to ${sid}`, bytes: 3 + sid.length }])));
    const reads = await Promise.all(sids.filter((s) => s !== 'p150').map((sid) => store.readOutbound(sid, 1_000_000)));
    const calls = (await evalshaCalls()) - before;
    assert.ok(calls <= 10, `600 calls ran as ${calls} scripts`);
    enqueued.forEach((r, i) => {
      if (sids[i] === 'p150') {
        assert.equal(r.status, 'rejected');
        assert.ok(r.status === 'rejected' && r.reason instanceof HoldlineError && r.reason.code === 'session_unknown');
      } else {
        assert.equal(r.status, 'fulfilled');
        assert.deepEqual(r.status === 'fulfilled' && r.value, {
          lastSeq: sids[i] === 'p7' ? 2 : 1,
          bufferedBytes: (sids[i] === 'p7' ? 5 : 0) + 3 + (sids[i]?.length ?? 0),
        });
      }
    });
    const p7 = reads[7];
    assert.ok(p7);
    assert.equal(p7.m, '["first","to p7"]', 'each session got its own message, after what it had');
    assert.equal(reads[200]?.m, `["to p201"]`);
  });

  test('after Redis lost its scripts (SCRIPT FLUSH), a call alone and calls in a pipeline run from the source (NOSCRIPT, then EVAL)', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = ['n0', 'n1', 'n2'];
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    await inspector.call('SCRIPT', 'FLUSH');
    assert.deepEqual(await store.enqueue('n0', [{ wire: 'alone', bytes: 5 }]), { lastSeq: 1, bufferedBytes: 5 });
    await inspector.call('SCRIPT', 'FLUSH');
    const together = await Promise.all(sids.map((sid) => store.enqueue(sid, [{ wire: 'together', bytes: 8 }])));
    assert.deepEqual(together.map((r) => r.lastSeq), [2, 1, 1]);
    assert.equal((await store.readOutbound('n0', 1_000_000)).m, '["alone","together"]');
  });

  test('calls issued turn by turn while a pipeline waits for its replies go out together when they come, as one many-session script', async (t) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => store.close());
    const sids = Array.from({ length: 50 }, (_, i) => `q${i}`);
    await Promise.all(sids.map((sid) => store.create({ sid, token: 't', attempt: '' }, 'n')));
    const before = await evalshaCalls();
    // Redis holds every client's commands for a while: the first call's pipeline stays in flight.
    await inspector.call('CLIENT', 'PAUSE', '300', 'ALL');
    const enqueued: Promise<unknown>[] = [];
    for (const sid of sids) {
      enqueued.push(store.enqueue(sid, [{ wire: `to ${sid}`, bytes: 3 + sid.length }]));
      // One call per event-loop turn, as polls arriving one by one issue them.
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(enqueued);
    const calls = (await evalshaCalls()) - before;
    assert.ok(calls <= 3, `50 calls issued in 50 turns ran as ${calls} scripts (the first alone, the rest together)`);
    assert.deepEqual(results[49], { lastSeq: 1, bufferedBytes: 6 });
  });
});
