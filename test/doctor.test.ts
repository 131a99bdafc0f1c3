/**
 * Issue 18, item 6: diagnose() (what `holdline doctor URL` prints) against a
 * real squid with read_timeout 12 s and Digest auth: it names the proxy and
 * why, the scheme asked, a cut near 12 s and a hold below it, and that a
 * WebSocket does not get through (squid allows CONNECT to 443 only).
 * squid checks its timeouts about once a second, and the poll's start is
 * sampled every 50 ms: the cut is seen between 12 and ~14 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose } from '../client/node/doctor.js';
import { diagnose as doctor } from '../client/doctor.js';
import { startHoldline } from './helpers/holdline.js';
import { noProxyEnv } from './helpers/proxy-auth.js';
import { startSquid } from './middlebox/squid.js';

test('doctor through squid (read_timeout 12 s, Digest): the proxy and why, Digest, a cut near 12 s, a hold below it', { timeout: 90_000 }, async (t) => {
  noProxyEnv(t);
  const squid = await startSquid({ readTimeoutSec: 12, digest: { user: 'dave', password: 'pw' } });
  t.after(() => squid.stop());
  const hl = await startHoldline(t, { pollTimeoutMs: 25_000 });
  process.env.HTTP_PROXY = `http://dave:pw@127.0.0.1:${squid.port}`;
  const progress: string[] = [];
  const { report, text } = await diagnose(hl.url, { maxHoldMs: 25_000, log: (l) => progress.push(l) });
  assert.ok(progress.length >= 3, `progress lines: ${progress.join(' | ')}`);
  t.diagnostic(text);
  assert.equal(report.proxy.url, `http://127.0.0.1:${squid.port}/`);
  assert.match(report.proxy.why, /HTTP_PROXY/);
  assert.equal(report.auth.required, true);
  assert.deepEqual(report.auth.offered, ['Digest']);
  assert.equal(report.auth.answeredWith, 'Digest');
  assert.equal(report.session.opened, true);
  assert.equal(report.hold.grantedMs, 25_000);
  const cut = report.hold.cutAfterMs;
  assert.ok(cut !== null && cut >= 11_000 && cut <= 15_000, `a cut near 12 s: ${cut}`);
  const suggested = report.hold.suggestedHoldMs;
  assert.ok(suggested !== null && suggested < 12_000 && suggested >= 8_000, `a hold below the cut: ${suggested}`);
  assert.equal(report.websocket.gotThrough, false);
  assert.deepEqual(report.suggestion, { holdMs: suggested, transports: ['polling'] });
  assert.match(text, /cut after 1[1-4]\d{3} ms/);
  assert.match(text, new RegExp(`holdMs ${suggested}`));
});

test('the CLI entry (client/doctor.ts): ok false and a printable report when no session opens', { timeout: 30_000 }, async (t) => {
  noProxyEnv(t);
  // Nothing listens on port 1.
  const report = await doctor('http://127.0.0.1:1/holdline', { maxHoldMs: 2_000 });
  assert.equal(report.ok, false);
  assert.equal(report.proxy.url, null);
  assert.match(String(report), /session: +not opened/);
});
