/**
 * RedisStore through Redis Sentinel, configured as the issue asks: through
 * the client's own options (an ioredis client made with `sentinels` and
 * `name`, given as `new RedisStore({ client })`). The test starts its own
 * redis-server and a Sentinel monitoring it (test/middlebox/redis.ts), both
 * on free loopback ports: the client finds the master through the Sentinel,
 * the store's subscriber (a duplicate of that client) too, and a session runs
 * both ways over it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, it } from 'node:test';
import { Redis } from 'ioredis';
import { HoldlineClient } from '../client/index.js';
import { HoldlineServer, type Session } from '../server/index.js';
import { RedisStore } from '../server/redis.js';
import { Cleanup, closeHttpServer, Condition, listen } from './helpers/server.js';
import { startRedis, startSentinel } from './middlebox/redis.js';

const master = await startRedis();
const sentinel = await startSentinel(master);
after(async () => {
  await sentinel.stop();
  await master.stop();
});

it('a RedisStore on a client configured with sentinels finds the master through Sentinel and serves a session both ways', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const client = new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: sentinel.masterName });
  cleanup.add(() => client.quit());
  const store = new RedisStore({ client, keyPrefix: 'sentinel-test:' });
  cleanup.add(() => store.close());
  const hl = new HoldlineServer({ store });
  const server = http.createServer();
  hl.attach(server, { path: '/holdline' });
  const origin = await listen(server);
  cleanup.add(() => closeHttpServer(server));
  cleanup.add(() => hl.close());

  const changed = new Condition();
  const atServer: unknown[] = [];
  const atClient: unknown[] = [];
  hl.on('session', (s: Session) => {
    s.on('message', (m) => {
      atServer.push(m);
      void s.send(`echo ${String(m)}`);
      changed.notify();
    });
  });
  const c = new HoldlineClient(`${origin}/holdline`, { transports: ['polling'] });
  cleanup.add(() => c.close());
  c.on('message', (m) => {
    atClient.push(m);
    changed.notify();
  });
  await c.connect();
  for (let i = 0; i < 20; i++) void c.send(`m${i}`);
  await changed.until(() => atClient.length === 20, 10_000, () => `echoes: ${atClient.length} of 20`);
  assert.deepEqual(atServer, Array.from({ length: 20 }, (_, i) => `m${i}`));
  assert.deepEqual(atClient, Array.from({ length: 20 }, (_, i) => `echo m${i}`));

  // It is the master the Sentinel names that holds the session's keys.
  const direct = new Redis(master.url);
  cleanup.add(() => direct.quit());
  const keys = await direct.keys('sentinel-test:*');
  assert.ok(keys.some((k) => k.endsWith(':meta')), `the master holds the session: ${keys.join(', ')}`);
  const ask = new Redis({ host: '127.0.0.1', port: sentinel.port });
  cleanup.add(() => ask.disconnect());
  assert.deepEqual(await ask.call('SENTINEL', 'get-master-addr-by-name', sentinel.masterName), ['127.0.0.1', String(master.port)]);
});
