/**
 * Robustness, item 5: `reconnecting` must end as soon as the server answers.
 *
 * After one failed poll while idle, the client reported `reconnecting` until
 * its replacement poll ended, a whole hold later (up to pollTimeoutMs),
 * although that poll reached the server at once. The replacement now asks for
 * no hold: the server answers it at once, and that answer makes the state
 * `open` again; the poll after it is held as usual.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type ReconnectingEvent } from '../client/index.js';
import type { Session } from '../server/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startHoldline } from './helpers/holdline.js';
import { assertTestScheme } from './helpers/tls.js';

test('one idle poll killed: the state is open again within seconds (poll hold 10 s), while no message flows', { timeout: 30_000 }, async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000 });
  let session: Session | undefined;
  hl.server.on('session', (s) => (session = s));
  let faults = 0;
  const proxy = await startFaultProxy({
    target: { host: '127.0.0.1', port: hl.port },
    killRate: 0,
    faults: ['request'],
    seed: 7,
    onDecision: (d) => {
      // The Node client sends a request lost on its connection once more at
      // once: kill that one too, so that the poll fails; nothing after it.
      if (d.fault !== null && ++faults === 2) proxy.setKillRate(0);
    },
  });
  t.after(() => proxy.close());
  // In the https run the proxy ends the client's TLS and speaks TLS to the server.
  assertTestScheme(proxy.url, 'the fault proxy');
  const client = new HoldlineClient(`${proxy.url}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 200 } });
  t.after(() => client.close());
  const reconnecting: ReconnectingEvent[] = [];
  let reconnectingAt = 0;
  let openAgainAt = 0;
  client.on('reconnecting', (e) => {
    reconnecting.push(e);
    reconnectingAt ||= Date.now();
  });
  client.on('open', (e) => {
    if (e.resumed) openAgainAt = Date.now();
  });
  let received = 0;
  client.on('message', () => received++);
  await client.connect();
  await sleep(300); // idle: the first poll is held
  assert.ok(session, 'the server has the session');

  // One message ends the held poll; the poll after it (idle again) is killed, twice.
  proxy.setKillRate(1);
  await session.send('wake');
  const end = Date.now() + 9_000;
  while (openAgainAt === 0 && Date.now() < end) await sleep(20);

  assert.equal(faults, 2, 'the poll after the message was killed, and its resend');
  assert.ok(reconnecting.length >= 1, 'the failed poll made the client reconnecting');
  assert.ok(openAgainAt > 0, `open again before the replacement's 10 s hold ended (state: ${client.state})`);
  const took = openAgainAt - reconnectingAt;
  assert.ok(took < 3_000, `open ${took} ms after reconnecting (back-off up to 200 ms, then one round trip)`);
  assert.equal(client.state, 'open');
  assert.equal(received, 1, 'no message flowed meanwhile');
  assert.equal(client.stats.reconnects, 1);
  // And the poll after the unheld one is held again: the client does not poll in a loop.
  const polls = client.stats.polls;
  await sleep(1_000);
  assert.ok(client.stats.polls - polls <= 1, `polls in the next second: ${client.stats.polls - polls}`);
});
