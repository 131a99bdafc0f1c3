/**
 * Issue 3, items 1 and 2: the Node client behind a real squid forward proxy
 * (caching on, Basic auth), configured only through HTTP_PROXY; a proxy that
 * wants credentials it was not given; NO_PROXY; and a proxy whose read
 * timeout cuts held polls, which the client learns to stay under.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import type { HoldlineError } from '../shared/index.js';
import { exchangeBothWays } from './helpers/exchange.js';
import { sessionIdOf, startHoldline } from './helpers/holdline.js';
import { startSquid } from './middlebox/squid.js';

const USER = 'alice';
const PASSWORD = 's3cret:pa ss';

/** Set proxy variables for one test, restoring them afterwards. */
function withEnv(t: import('node:test').TestContext, vars: Record<string, string | undefined>): void {
  const saved: Record<string, string | undefined> = {};
  for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) process.env[k] = v;
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

function proxyUrl(port: number, auth: boolean): string {
  return auth ? `http://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}` : `http://127.0.0.1:${port}`;
}

test('through squid (Basic auth, caching on) via HTTP_PROXY only: 5,000 messages each way, exactly once, in order', { timeout: 120_000 }, async (t) => {
  const squid = await startSquid({ auth: { user: USER, password: PASSWORD }, caching: true });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 5_000 });
  withEnv(t, { HTTP_PROXY: proxyUrl(squid.port, true) });

  const c = new HoldlineClient(hl.url, { reconnect: { minDelayMs: 10, maxDelayMs: 200 } });
  t.after(() => c.close());
  await exchangeBothWays(hl.server, c, { count: 5_000 });

  const log = await squid.accessLog();
  const ours = log.filter((e) => e.url.startsWith(`http://127.0.0.1:${hl.port}/holdline/`));
  const polls = ours.filter((e) => e.url.endsWith('/poll'));
  assert.ok(ours.some((e) => e.url.endsWith('/open') && e.httpStatus === 200), 'the open went through squid');
  assert.ok(polls.length >= 1, `polls went through squid (${polls.length})`);
  assert.ok(ours.some((e) => e.url.endsWith('/send')), 'sends went through squid');
  assert.ok(ours.every((e) => e.user === USER), 'every request carried the credentials');
  // A caching proxy never answers a poll from its cache.
  assert.deepEqual(polls.filter((e) => /HIT/.test(e.squidStatus)), []);
});

test('a proxy that wants credentials it was not given: proxy_auth_required, no retry loop', { timeout: 60_000 }, async (t) => {
  const squid = await startSquid({ auth: { user: USER, password: PASSWORD } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  withEnv(t, { http_proxy: proxyUrl(squid.port, false) });
  const c = new HoldlineClient(hl.url, { reconnect: { minDelayMs: 10, maxDelayMs: 50 } });
  t.after(() => c.close());
  const errors: string[] = [];
  c.on('error', (e) => errors.push(e.code));
  const err = (await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  )) as HoldlineError | undefined;
  assert.equal(err?.code, 'proxy_auth_required');
  assert.deepEqual(errors, ['proxy_auth_required']);
  assert.equal(c.state, 'closed');
  assert.equal(hl.server.sessionCount, 0);
  await new Promise((r) => setTimeout(r, 300));
  const denied = await squid.waitForAccessEntries((e) => e.httpStatus === 407, 1);
  assert.equal(denied.length, 1, 'asked once, not in a loop');
});

test('NO_PROXY bypasses the proxy', async (t) => {
  const squid = await startSquid({ auth: { user: USER, password: PASSWORD } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  withEnv(t, { HTTP_PROXY: proxyUrl(squid.port, false), NO_PROXY: 'localhost,127.0.0.1' });
  const c = new HoldlineClient(hl.url);
  t.after(() => c.close());
  await c.connect();
  const got = new Promise((r) => c.once('message', r));
  const session = hl.server.session(sessionIdOf(c));
  assert.ok(session);
  const sent = session.send('direct');
  assert.equal(await got, 'direct');
  await sent;
  assert.deepEqual(await squid.accessLog(), [], 'nothing went through squid');
});

test('a proxy that cuts held polls at 10 s (hold 25 s): nothing lost, and the hold settles below 10 s', { timeout: 90_000 }, async (t) => {
  const squid = await startSquid({ readTimeoutSec: 10 });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 25_000 });
  const c = new HoldlineClient(hl.url, { proxy: squid.url, reconnect: { minDelayMs: 10, maxDelayMs: 200 } });
  t.after(() => c.close());
  const received: string[] = [];
  c.on('message', (d) => received.push(String(d)));
  await c.connect();
  assert.equal(c.stats.holdMs, 25_000);
  const session = hl.server.session(sessionIdOf(c));
  assert.ok(session);

  // Idle polls are cut by squid at ~10 s. A message before the first cut and after each one.
  let sent = 0;
  await session.send(`m${sent++}`);
  let cutsSeen = 0;
  const deadline = Date.now() + 60_000;
  while (c.stats.holdMs >= 10_000 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (c.stats.pollCuts > cutsSeen) {
      cutsSeen = c.stats.pollCuts;
      await session.send(`m${sent++}`);
    }
  }
  const { holdMs, pollCuts } = c.stats;
  t.diagnostic(`hold ${holdMs} ms after ${pollCuts} cuts`);
  assert.ok(holdMs < 10_000, `hold settled below the cut age (${holdMs})`);
  assert.ok(pollCuts >= 2);
  // Waits for the lines: squid logs a transaction after its answer.
  await squid.waitForAccessEntries((e) => e.httpStatus === 504 && e.url.endsWith('/poll'), 2);

  // A whole hold at the new length passes without a cut, and messages still flow.
  const cutsBefore = c.stats.pollCuts;
  await new Promise((r) => setTimeout(r, holdMs + 1_500));
  await session.send(`m${sent++}`);
  const until = Date.now() + 10_000;
  while (received.length < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.stats.pollCuts, cutsBefore, 'no cut once the hold is under the proxy timeout');
  assert.deepEqual(received, Array.from({ length: sent }, (_, i) => `m${i}`));
});
