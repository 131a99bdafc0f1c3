/**
 * Checks that a FaultProxy's faults really hit a test's traffic, at the rate
 * asked for, without a flaky fixed count: the number of HTTP exchanges a
 * workload takes varies from run to run (batches fill differently), so the
 * bound is the binomial one, five standard deviations under the mean, for the
 * exchanges this run took. A proxy that stopped faulting, or faulted at a
 * fraction of its rate, fails it; chance alone fails it about once in 3.5
 * million runs.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { FaultProxy } from './fault-proxy.js';

/** Fewer exchanges than this and a fault count says little: the workload itself is off. */
const MIN_REQUESTS = 100;

/** The least count, at least 1, that chance explains for `n` draws at probability `p`. */
function binomialFloor(n: number, p: number): number {
  return Math.max(1, Math.floor(n * p - 5 * Math.sqrt(n * p * (1 - p))));
}

/** For a proxy drawing all four fault kinds at `killRate` (three of them on the response side). */
export function assertFaultsHit(t: TestContext, proxy: FaultProxy, killRate: number): void {
  const { requests, faults: f } = proxy.stats;
  const facts = `${requests} requests, faults ${JSON.stringify(f)}, seed ${proxy.seed}`;
  t.diagnostic(`proxy: ${facts}`);
  assert.ok(requests >= MIN_REQUESTS, `the workload took at least ${MIN_REQUESTS} exchanges for the faults to hit: ${facts}`);
  const total = binomialFloor(requests, killRate);
  assert.ok(f.total >= total, `at least ${total} faults expected at ${killRate * 100}%: ${facts}`);
  const responseSide = binomialFloor(requests, (killRate * 3) / 4);
  const got = f.midResponse + f.afterResponse + f.beforeResponse;
  assert.ok(got >= responseSide, `at least ${responseSide} response-side faults expected: ${facts}`);
}
