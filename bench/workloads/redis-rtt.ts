/**
 * The Redis section's yardstick: one Redis round trip with no Holdline code,
 * paced like the echo. A child process (an idle process between round
 * trips, as the echo's server is) runs a one-key EVALSHA through ioredis,
 * the client RedisStore uses, against the bench's redis-server, one every
 * latency.intervalMs. An echo with the Redis store costs two such round
 * trips more than with the memory store (the client's send accepted, the
 * reply queued), so the report divides the echo's extra time by this.
 */
import { Redis } from 'ioredis';
import type { BenchConfig } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { attempt, type Outcome } from '../lib/measure.js';
import { defineRole } from '../lib/roles.js';
import { roundedSummary, timedRounds, type LatencySummary } from '../lib/stats.js';

interface RttArgs {
  url: string;
  count: number;
  warmup: number;
  gapMs: number;
  payloadBytes: number;
}

/** A write of one key, as small as a script of the store's gets. */
const SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)";

const redisRtt = defineRole<RttArgs, LatencySummary>('redis.rtt', async (a) => {
  const redis = new Redis(a.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const sha = String(await redis.script('LOAD', SCRIPT));
    const value = 'x'.repeat(a.payloadBytes);
    const summary = await timedRounds(a.count, a.warmup, a.gapMs, (i) => redis.evalsha(sha, 1, `bench:rtt:${i % 16}`, value));
    await redis.del(...Array.from({ length: 16 }, (_, i) => `bench:rtt:${i}`));
    return summary;
  } finally {
    redis.disconnect();
  }
});

/** p50 / p99 of `count` round trips paced like the echo (the section's latency duration's worth). */
export function runRedisRtt(cfg: BenchConfig, url: string): Promise<Outcome<LatencySummary>> {
  const gapMs = cfg.latency.intervalMs;
  const count = Math.max(20, Math.round(cfg.redis.latencyDurationMs / gapMs));
  return attempt('redis: one raw round trip, paced', () =>
    withAgents([{ name: 'redis client' }], async ([client]) => {
      const s = await client.call(redisRtt, { url, count, warmup: Math.ceil(count / 10), gapMs, payloadBytes: cfg.payloadBytes }, count * (gapMs + 20) + 30_000);
      return roundedSummary(s);
    }),
  );
}
