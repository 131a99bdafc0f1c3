/**
 * Issue 18, NTLM: the Node client through a real squid that asks for NTLM
 * (ntlm_fake_auth, the squid package's test helper). ntlm_fake_auth runs the
 * Type 1/2/3 handshake and decodes the Type 3, but checks no password: any
 * answer passes as the user it names. So "wrong credentials" here is a user
 * squid's `proxy_auth` ACL does not list (squid then answers 407 again), and
 * "no credentials" a client that has none to offer. What this shows: the
 * handshake is well-formed enough for squid, it is kept per connection, and
 * refusals end at once. It does not show that an NTLMv2 response verifies
 * against a real domain controller (ntlm.test.ts checks the response against
 * the MS-NLMP test vector instead).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHoldline } from './helpers/holdline.js';
import { exchangeThrough, noProxyEnv, refused } from './helpers/proxy-auth.js';
import { startSquid } from './middlebox/squid.js';

test('NTLM (DOMAIN%5Cuser in the proxy URL): 5,000 messages each way on polling, exactly once; one handshake per connection', { timeout: 180_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ ntlm: {} });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 5_000 });
  const { log, client } = await exchangeThrough(t, hl, squid, `http://CORP%5Calice:pa%3Ass@127.0.0.1:${squid.port}`);
  const passed = log.filter((e) => e.httpStatus === 200);
  const challenged = log.filter((e) => e.httpStatus === 407);
  t.diagnostic(`${passed.length} requests passed, ${challenged.length} 407s`);
  assert.ok(passed.some((e) => e.url.endsWith('/poll')) && passed.some((e) => e.url.endsWith('/send')), 'polls and sends went through squid');
  assert.ok(passed.every((e) => e.user !== null && /alice/i.test(e.user)), 'every request that passed was alice\'s');
  // NTLM authenticates connections, not requests: the handshake's connection
  // carries the requests that follow without one. Two 407s per handshake
  // (bare, then Type 2; later ones send Type 1 up front: one) would be 1-2 per request otherwise.
  assert.ok(passed.length >= 20, `enough requests to tell (${passed.length})`);
  assert.ok(challenged.length * 3 < passed.length, `a handshake per connection, not per request: ${challenged.length} 407s for ${passed.length} requests`);

  // A new connection authenticates again: the send lane's idles out (4 s), the next send opens another.
  await new Promise((r) => setTimeout(r, 5_000));
  const idleAt = Date.now();
  const session = [...hl.server.sessions()][0];
  const got = new Promise((r) => session?.once('message', r));
  await client.send('after idle');
  assert.equal(await got, 'after idle');
  await squid.waitForAccessEntry((e) => e.url.endsWith('/send') && e.httpStatus === 200 && e.timeMs >= idleAt);
  const after = (await squid.accessLog()).filter((e) => e.url.endsWith('/send') && e.timeMs >= idleAt).map((e) => e.httpStatus);
  // Type 1 up front (the client knows the proxy wants NTLM), Type 2 in the 407, Type 3 with the request.
  assert.deepEqual(after, [407, 200], 'the new connection ran the handshake again');
});

test('NTLM with the proxy option { url, username, password, domain }', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ ntlm: { users: ['bob', 'CORP\\bob'] } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  const { client } = await refused(t, hl, { url: squid.url, username: 'bob', password: 'x', domain: 'CORP' });
  assert.equal(client.state, 'open');
  // squid writes its access log line after the answer: wait for it (read at once, it was missing once in CI).
  const open = await squid.waitForAccessEntry((e) => e.url.endsWith('/open') && e.httpStatus === 200 && e.user !== null && /bob/i.test(e.user));
  assert.ok(open.user !== null && /bob/i.test(open.user));
});

test('NTLM, a user the proxy refuses: proxy_auth_required naming NTLM at once, no retry storm', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ ntlm: { users: ['alice', 'CORP\\alice'] } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  const { err, ms, reported, client } = await refused(t, hl, `http://CORP%5Cmallory:pw@127.0.0.1:${squid.port}`);
  assert.equal(err?.code, 'proxy_auth_required');
  assert.match(err.message, /\bNTLM\b/);
  // At once, not after connectTimeoutMs (30 s by default) of retries: a bound a busy machine cannot miss.
  assert.ok(ms < 10_000, `failed at once, not after retries (${Math.round(ms)} ms)`);
  assert.deepEqual(reported, ['proxy_auth_required']);
  assert.equal(client.state, 'closed');
  assert.equal(hl.server.sessionCount, 0);
  await new Promise((r) => setTimeout(r, 500));
  const denied = await squid.waitForAccessEntries((e) => e.httpStatus === 407, 1);
  assert.ok(denied.length <= 3, `one handshake, not a loop: ${denied.length} 407s`);
});

test('NTLM, no credentials: proxy_auth_required naming NTLM, asked once', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ ntlm: {} });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  const { err, ms, reported } = await refused(t, hl, squid.url);
  assert.equal(err?.code, 'proxy_auth_required');
  assert.match(err.message, /\bNTLM\b/);
  // At once, not after connectTimeoutMs (30 s by default) of retries: a bound a busy machine cannot miss.
  assert.ok(ms < 10_000, `failed at once, not after retries (${Math.round(ms)} ms)`);
  assert.deepEqual(reported, ['proxy_auth_required']);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await squid.waitForAccessEntries((e) => e.httpStatus === 407, 1)).length, 1);
});
