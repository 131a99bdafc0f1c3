/**
 * Issue 18, item 5: a proxy that refuses the destination itself (squid's ACL:
 * 403 ERR_ACCESS_DENIED) is proxy_refused, naming the proxy and squid's
 * reason, not network_error and not the server's bad_credential (a 403 the
 * client would otherwise take as the server's). The client retries it with
 * back-off: a rule can change, a server come back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import type { HoldlineError } from '../shared/index.js';
import { startHoldline } from './helpers/holdline.js';
import { noProxyEnv } from './helpers/proxy-auth.js';
import { startSquid } from './middlebox/squid.js';

test('squid refusing the destination port (ACL 403): proxy_refused naming the proxy, retried', { timeout: 60_000 }, async (t) => {
  noProxyEnv(t);
  const hl = await startHoldline(t);
  const squid = await startSquid({ denyPort: hl.port });
  t.after(() => squid.stop());
  const c = new HoldlineClient(hl.url, { proxy: squid.url, transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 200 }, connectTimeoutMs: 1_500 });
  t.after(() => c.close());
  const reported: HoldlineError[] = [];
  c.on('error', (e) => reported.push(e));
  const err = (await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  )) as HoldlineError | undefined;
  assert.equal(err?.code, 'timeout', 'retried until connectTimeoutMs');
  assert.match(err.message, new RegExp(`last error: proxy_refused: the proxy 127\\.0\\.0\\.1:${squid.port} refused POST http://127\\.0\\.0\\.1:${hl.port}/holdline/open: HTTP 403 \\(ERR_ACCESS_DENIED`));
  assert.equal(hl.server.sessionCount, 0);
  const denied = await squid.waitForAccessEntries((e) => e.httpStatus === 403, 2);
  assert.ok(denied.length >= 2, `asked again after a back-off: ${denied.length}`);
  assert.ok(denied.length < 40, `with back-off, not in a storm: ${denied.length}`);
});
