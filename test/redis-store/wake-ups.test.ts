/**
 * RedisStore's wake-ups (pub/sub), on a redis-server of this file's own: an
 * event published on one handle reaches every subscriber on another, over one
 * subscriber connection per store; stores with different key prefixes hear
 * nothing of each other (and see none of each other's sessions).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../server/redis.js';
import type { StoreEvent } from '../../server/store.js';
import { freshPrefix, sleep, testRedis } from './helpers.js';

const { redis, inspector } = await testRedis();

describe('RedisStore: wake-ups', () => {
  test('publish on one handle reaches subscribers on another, over one subscriber connection per store', async (t) => {
    const keyPrefix = freshPrefix();
    const a = new RedisStore({ url: redis.url, keyPrefix });
    const b = new RedisStore({ url: redis.url, keyPrefix });
    t.after(() => a.close());
    t.after(() => b.close());
    const heard: [string, string, StoreEvent][] = [];
    for (const tag of ['b1', 'b2', 'b3']) t.after(b.subscribe((sid, event) => heard.push([tag, sid, event])));
    t.after(a.subscribe(() => undefined));
    const deadline = Date.now() + 5000;
    while ((await inspector.pubsub('NUMSUB', `${keyPrefix}events`))[1] !== 2) {
      assert.ok(Date.now() < deadline, 'both stores subscribed within 5 s');
      await sleep(10);
    }
    const event: StoreEvent = { type: 'ack', node: 'node-A', ack: 3, bufferedBytes: 10 };
    await a.publish('sid-x', event);
    while (heard.length < 3) {
      assert.ok(Date.now() < deadline, 'the event arrived within 5 s');
      await sleep(5);
    }
    assert.deepEqual(heard, [['b1', 'sid-x', event], ['b2', 'sid-x', event], ['b3', 'sid-x', event]]);
    assert.deepEqual(await inspector.pubsub('NUMSUB', `${keyPrefix}events`), [`${keyPrefix}events`, 2], 'two stores, two subscriber connections');
  });

  test('stores with different prefixes hear nothing of each other', async (t) => {
    const a = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    const b = new RedisStore({ url: redis.url, keyPrefix: freshPrefix() });
    t.after(() => a.close());
    t.after(() => b.close());
    const onA: string[] = [];
    const onB: string[] = [];
    t.after(a.subscribe((sid) => onA.push(sid)));
    t.after(b.subscribe((sid) => onB.push(sid)));
    const deadline = Date.now() + 5000;
    while (onA.length === 0 || onB.length === 0) {
      assert.ok(Date.now() < deadline, 'both subscriptions live within 5 s');
      await a.publish('to-a', { type: 'out', node: 'n' });
      await b.publish('to-b', { type: 'out', node: 'n' });
      await sleep(10);
    }
    await a.create({ sid: 'sid-a', token: 't', attempt: '' }, 'n');
    assert.equal(await b.get('sid-a'), undefined);
    assert.equal(await b.count(), 0);
    assert.ok(onA.every((s) => s === 'to-a') && onB.every((s) => s === 'to-b'), `a heard ${onA.join()}, b heard ${onB.join()}`);
  });
});
