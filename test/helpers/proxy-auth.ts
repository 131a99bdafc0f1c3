/**
 * The shared shapes of the proxy-authentication tests (NTLM, Digest): a
 * client through an authenticating squid, 5,000 messages each way on
 * polling, and a client whose credentials squid refuses.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { HoldlineClient } from '../../client/index.js';
import type { ProxySetting } from '../../client/options.js';
import type { HoldlineError } from '../../shared/index.js';
import type { SquidProxy } from '../middlebox/squid.js';
import { exchangeBothWays } from './exchange.js';
import type { RunningHoldline } from './holdline.js';

/** Clears the proxy environment for one test, and puts it back as it was afterwards (whatever the test set). */
export function noProxyEnv(t: TestContext): void {
  const saved: Record<string, string | undefined> = {};
  for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

/** 5,000 messages each way through `squid` on polling (polls, sends, opens all authenticated); returns squid's log of our requests. */
export async function exchangeThrough(t: TestContext, hl: RunningHoldline, squid: SquidProxy, proxy: ProxySetting) {
  const c = new HoldlineClient(hl.url, { proxy, transports: ['polling'], reconnect: { minDelayMs: 10, maxDelayMs: 200 } });
  t.after(() => c.close());
  const errors: string[] = [];
  c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
  // Pauses make many requests of the 5,000 messages (without them a few large batches carry all).
  await exchangeBothWays(hl.server, c, { count: 5_000, pauseMs: 20 });
  assert.deepEqual(errors, [], 'no error on the way');
  const log = (await squid.accessLog()).filter((e) => e.url.startsWith(`http://127.0.0.1:${hl.port}/holdline/`));
  return { log, client: c };
}

/** connect() through a proxy that refuses the client: the error, how long it took, and the errors reported. */
export async function refused(t: TestContext, hl: RunningHoldline, proxy: ProxySetting) {
  const c = new HoldlineClient(hl.url, { proxy, transports: ['polling'], reconnect: { minDelayMs: 10, maxDelayMs: 50 } });
  t.after(() => c.close());
  const reported: string[] = [];
  c.on('error', (e) => reported.push(e.code));
  const started = performance.now();
  const err = (await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  )) as HoldlineError | undefined;
  return { err, ms: performance.now() - started, reported, client: c };
}
