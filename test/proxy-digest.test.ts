/**
 * Issue 18, Digest: the Node client through a real squid that asks for
 * Digest (digest_file_auth with a password file the test writes; squid 5
 * offers MD5 only: SHA-256 is checked against RFC 7616's vector in
 * client/node/digest.test.ts). squid's nonce_max_count is 10 (see squid.ts), so the 5,000
 * messages also meet stale nonces, which the client answers again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHoldline } from './helpers/holdline.js';
import { exchangeThrough, noProxyEnv, refused } from './helpers/proxy-auth.js';
import { startSquid } from './middlebox/squid.js';

const USER = 'carol';
// No colon: digest_file_auth's file is user:password (or user:realm:HA1).
const PASSWORD = 'd1gest pass';

test('Digest: 5,000 messages each way on polling, exactly once; stale nonces answered again', { timeout: 180_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ digest: { user: USER, password: PASSWORD } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 5_000 });
  const { log } = await exchangeThrough(t, hl, squid, { url: squid.url, username: USER, password: PASSWORD });
  const passed = log.filter((e) => e.httpStatus === 200);
  const challenged = log.filter((e) => e.httpStatus === 407);
  t.diagnostic(`${passed.length} requests passed, ${challenged.length} 407s`);
  assert.ok(passed.some((e) => e.url.endsWith('/poll')) && passed.some((e) => e.url.endsWith('/send')), 'polls and sends went through squid');
  assert.ok(passed.every((e) => e.user === USER), 'every request that passed was carol\'s');
  // Digest answers up front once challenged: fewer 407s than requests, a
  // first one per lane and one per stale nonce (a nonce serves 10 requests).
  assert.ok(challenged.length * 2 < passed.length, `${challenged.length} 407s for ${passed.length} requests`);
  assert.ok(challenged.length > 3, `stale nonces met and answered (${challenged.length} 407s)`);
});

test('Digest, a wrong password: proxy_auth_required naming Digest at once, no retry storm', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ digest: { user: USER, password: PASSWORD } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  const { err, ms, reported, client } = await refused(t, hl, `http://${USER}:wrong@127.0.0.1:${squid.port}`);
  assert.equal(err?.code, 'proxy_auth_required');
  assert.match(err.message, /\bDigest\b/);
  // At once, not after connectTimeoutMs (30 s by default) of retries: a bound a busy machine cannot miss.
  assert.ok(ms < 10_000, `failed at once, not after retries (${Math.round(ms)} ms)`);
  assert.deepEqual(reported, ['proxy_auth_required']);
  assert.equal(client.state, 'closed');
  await new Promise((r) => setTimeout(r, 500));
  const denied = await squid.waitForAccessEntries((e) => e.httpStatus === 407, 1);
  // Basic up front (the URL has credentials and no domain), then one Digest answer.
  assert.ok(denied.length <= 2, `no loop: ${denied.length} 407s`);
});

test('Digest, no credentials: proxy_auth_required naming Digest, asked once', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ digest: { user: USER, password: PASSWORD } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t);
  const { err, reported } = await refused(t, hl, squid.url);
  assert.equal(err?.code, 'proxy_auth_required');
  assert.match(err.message, /\bDigest\b/);
  assert.deepEqual(reported, ['proxy_auth_required']);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await squid.waitForAccessEntries((e) => e.httpStatus === 407, 1)).length, 1);
});
