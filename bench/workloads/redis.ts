/**
 * The Redis section (Holdline only). The bench starts a redis-server of its
 * own (lib/redis.ts) and stops it afterwards.
 *
 * - One node, Redis store against memory store: the throughput, latency and
 *   fan-out workloads as they are, run with the server's default
 *   MemoryStore and with a RedisStore (`holdline/redis` from dist/), the
 *   two taking turns: once each, but the echo `latency.repeat` times each
 *   (the median run reported). Redis is emptied (FLUSHALL) before each
 *   Redis run.
 *   The fan-out runs also time every broadcast: from the `hl.broadcast()`
 *   call to its promise settling, and to the last client receiving it. Each
 *   size runs with the clients on polling, then on WebSocket (what a Node
 *   client that reaches the server directly ends up on by default).
 * - One raw Redis round trip (redis-rtt.ts), paced like the echo: the yardstick
 *   for the echo's extra time with the Redis store.
 * - A cluster: `nodes` HoldlineServer processes sharing one redis-server,
 *   `sessionsPerNode` polling clients connected straight to each (all in one
 *   client process), and node 0 broadcasting every intervalMs: it reaches the
 *   other nodes' sessions through Redis. Delivered / expected, latency, CPU
 *   per process, and the Redis commands the broadcast phase cost
 *   (`INFO commandstats` before and after).
 *
 * Redis commands and round trips: commandstats counts every command,
 * including those a Lua script runs inside Redis (HSET, RPUSH, ... under an
 * EVALSHA). Calls of commands only scripts use are reported as "inside
 * scripts"; the rest are the store's round trips (an upper bound: DEL, GET,
 * HGET and HMGET are used both ways and counted as round trips).
 */
import type { StoreSpec } from '../lib/adapters/index.js';
import { fanoutKey, type BenchConfig } from '../lib/config.js';
import { withAgents, type AgentOptions } from '../lib/harness.js';
import { attempt, inTurns, withCpu, type Outcome } from '../lib/measure.js';
import { commandCalls, redisCommand, redisCpuSeconds, redisInfo, startBenchRedis, type BenchRedis } from '../lib/redis.js';
import { round, roundedSummary, sleep, type LatencySummary } from '../lib/stats.js';
import { fanoutRoles, runSize, type FanoutResult, type SpanSummary } from './fanout.js';
import { medianEchoRun, runOnce as latencyRun, type LatencyResult } from './latency.js';
import { runRedisRtt } from './redis-rtt.js';
import { runOnce as throughputRun, type DirectionResult } from './throughput.js';

/** Commands RedisStore's Lua scripts call and nothing calls directly (server/redis-store.ts). */
const INSIDE_SCRIPTS = new Set(['hset', 'hincrby', 'rpush', 'lrange', 'ltrim', 'pexpire']);
/** The bench's own commands to Redis, not the store's. */
const OURS = new Set(['info', 'flushall', 'config|resetstat', 'config']);

export interface RedisCommands {
  /** Every command Redis ran, inside scripts too. */
  total: number;
  /** The store's requests to Redis (upper bound: see the file comment). */
  roundTrips: number;
  /** Commands run inside Lua scripts (EVALSHA). */
  insideScripts: number;
  /** Calls per command, most first (at most 10). */
  top: Array<[string, number]>;
  /** CPU time of redis-server over the same interval, percent of one core. */
  cpuPct: number;
  /** The same, divided by `per` (messages or deliveries: see where used). */
  per: number;
  roundTripsPer: number;
  totalPer: number;
}

interface RedisSnapshot {
  calls: Record<string, number>;
  cpuSeconds: number;
  at: number;
}

async function snapshot(redis: BenchRedis): Promise<RedisSnapshot> {
  return { calls: await commandCalls(redis.port), cpuSeconds: await redisCpuSeconds(redis.port), at: performance.now() };
}

function commandsBetween(a: RedisSnapshot, b: RedisSnapshot, per: number): RedisCommands {
  const delta: Array<[string, number]> = [];
  for (const [cmd, calls] of Object.entries(b.calls)) {
    const d = calls - (a.calls[cmd] ?? 0);
    if (d > 0 && !OURS.has(cmd)) delta.push([cmd, d]);
  }
  delta.sort((x, y) => y[1] - x[1]);
  const total = delta.reduce((n, [, d]) => n + d, 0);
  const insideScripts = delta.reduce((n, [cmd, d]) => n + (INSIDE_SCRIPTS.has(cmd) ? d : 0), 0);
  const roundTrips = total - insideScripts;
  return {
    total,
    roundTrips,
    insideScripts,
    top: delta.slice(0, 10),
    cpuPct: round(((b.cpuSeconds - a.cpuSeconds) * 1000 * 100) / (b.at - a.at), 1),
    per,
    roundTripsPer: round(roundTrips / per, 2),
    totalPer: round(total / per, 2),
  };
}

/** `fn` with Redis emptied first, and the commands it cost counted (divided by `per(value)`). */
async function counted<T>(redis: BenchRedis, fn: () => Promise<T>, per: (value: T) => number): Promise<{ value: T; redis: RedisCommands }> {
  await redisCommand(redis.port, ['FLUSHALL']);
  const a = await snapshot(redis);
  const value = await fn();
  const b = await snapshot(redis);
  return { value, redis: commandsBetween(a, b, per(value)) };
}

// ---- one node: Redis store against memory store ----

export interface StorePair<T> {
  memory: Outcome<T>;
  redis: Outcome<T>;
}

export interface ThroughputRun {
  s2c: DirectionResult;
  c2s: DirectionResult;
  errors: string[];
  /** Redis runs only: commands over the whole run, per message sent (both directions, warm-up included). */
  redisCommands?: RedisCommands;
}

export interface LatencyRun extends LatencyResult {
  redisCommands?: RedisCommands;
}

export interface FanoutRun extends FanoutResult {
  /** Redis runs only: commands over the whole run (connects included), per message delivered. */
  redisCommands?: RedisCommands;
}

// ---- the cluster ----

export interface ClusterResult {
  nodes: number;
  sessionsPerNode: number;
  intervalMs: number;
  /** Sessions each node owned when the broadcasts began. */
  sessions: number[];
  connectMs: number;
  broadcasts: number;
  /** broadcasts × every node's sessions. */
  expected: number;
  delivered: number;
  deliveredRatio: number;
  latency: LatencySummary;
  /** Per broadcast, from node 0's call until the last client of any node had it. */
  lastDeliveryMs: SpanSummary;
  /** Per broadcast, from node 0's call until its promise settled (node 0's own sessions queued). */
  broadcastSettleMs: SpanSummary | null;
  /** CPU% of each server node (node 0 broadcasts), the client process and redis-server, over the broadcast phase. */
  cpu: { servers: number[]; client: number; redis: number };
  /** Commands of the broadcast phase, per message delivered. */
  redisCommands: RedisCommands;
  errors: string[];
}

async function runCluster(cfg: BenchConfig, redis: BenchRedis): Promise<ClusterResult> {
  const { nodes, sessionsPerNode, intervalMs, durationMs } = cfg.redis.cluster;
  const { serverStart, serverSessions, serverBroadcast, serverErrors, clientConnect, clientCollect } = fanoutRoles;
  const options: AgentOptions[] = [...Array.from({ length: nodes }, (_, i) => ({ name: `node ${i}` })), { name: 'clients' }];
  await redisCommand(redis.port, ['FLUSHALL']);
  return withAgents(options, async (agents) => {
    const servers = agents.slice(0, nodes);
    const cli = agents[nodes];
    const node0 = servers[0];
    if (!cli || !node0) throw new Error('the cluster has no client process or no node');
    const base = { lib: 'holdline' as const, window: cfg.window, payloadBytes: cfg.payloadBytes };
    const urls = await Promise.all(
      servers.map(async (srv, i) => {
        const store: StoreSpec = { kind: 'redis', url: redis.url, nodeId: `bench-node-${i}` };
        return (await srv.call(serverStart, { ...base, store }, 15_000)).url;
      }),
    );
    const connectTimeoutMs = Math.max(20_000, sessionsPerNode * 20);
    const t0 = performance.now();
    const connected: number[] = [];
    const errors: string[] = [];
    for (const url of urls) {
      const conn = await cli.call(
        clientConnect,
        { ...base, url, count: sessionsPerNode, concurrency: cfg.fanout.connectConcurrency, timeoutMs: connectTimeoutMs },
        connectTimeoutMs + 10_000,
      );
      // clientConnect reports every client of the process so far.
      connected.push(conn.connected - connected.reduce((a, b) => a + b, 0));
      errors.push(...conn.errors);
    }
    const connectMs = Math.round(performance.now() - t0);
    const sessions = await Promise.all(servers.map((srv, i) => srv.call(serverSessions, { count: connected[i] ?? 0, timeoutMs: 10_000 }, 15_000)));
    const total = sessions.reduce((a, b) => a + b, 0);
    if (total === 0) throw new Error(`no session opened: ${errors.join('; ')}`);
    await sleep(1_000);
    const before = await snapshot(redis);
    const { value, cpu } = await withCpu([...servers, cli], () =>
      node0.call(serverBroadcast, { intervalMs, durationMs, payloadBytes: cfg.payloadBytes }, durationMs + 60_000),
    );
    const after = await snapshot(redis);
    const expected = value.broadcasts * total;
    const graceMs = Math.max(5_000, intervalMs * 3, total);
    const got = await cli.call(clientCollect, { expected, graceMs }, graceMs + 120_000);
    for (const srv of servers) errors.push(...(await srv.call(serverErrors, {}, 5_000)));
    const redisCommands = commandsBetween(before, after, Math.max(1, got.delivered));
    return {
      nodes,
      sessionsPerNode,
      intervalMs,
      sessions,
      connectMs,
      broadcasts: value.broadcasts,
      expected,
      delivered: got.delivered,
      deliveredRatio: expected === 0 ? 0 : round(got.delivered / expected, 4),
      latency: roundedSummary(got.latency, 2),
      lastDeliveryMs: got.lastDeliveryMs,
      broadcastSettleMs: value.settleMs,
      cpu: { servers: cpu.slice(0, nodes).map((c) => c.cpuPct), client: cpu[nodes]?.cpuPct ?? NaN, redis: redisCommands.cpuPct },
      redisCommands,
      errors: [...errors, ...got.errors].slice(0, 20),
    };
  });
}

// ---- the section ----

export interface RedisResults {
  /** redis-server's version, and its pid (for `top` while it runs). */
  server: { version: string; pid: number } | null;
  throughput?: StorePair<ThroughputRun>;
  latency?: StorePair<LatencyRun>;
  /** One Redis round trip with no Holdline code, paced like the echo (redis-rtt.ts): with `latency`. */
  roundTrip?: Outcome<LatencySummary>;
  /** Per fan-out size and transport, keyed by sessions ("1000", "10000"; "10000 websocket" for clients on WebSocket). */
  fanout?: Record<string, StorePair<FanoutRun>>;
  cluster?: Outcome<ClusterResult>;
  /** The redis-server could not be started (nothing else ran). */
  error?: string;
}

export async function runRedis(cfg: BenchConfig): Promise<RedisResults> {
  const wants = (p: BenchConfig['redis']['parts'][number]) => cfg.redis.parts.includes(p);
  let redis: BenchRedis;
  try {
    redis = await startBenchRedis();
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    process.stderr.write(`  redis: FAILED: ${error.split('\n')[0]}\n`);
    return { server: null, error };
  }
  try {
    const version = (await redisInfo(redis.port, 'server')).get('redis_version') ?? 'unknown';
    const out: RedisResults = { server: { version, pid: redis.pid } };
    const store: StoreSpec = { kind: 'redis', url: redis.url };
    if (wants('throughput')) {
      const { messages, warmup } = cfg.redis;
      const timeoutMs = cfg.smoke ? 20_000 : 180_000;
      const memory = await attempt('redis: throughput / memory store', () => throughputRun(cfg, 'holdline', timeoutMs, { messages, warmup }));
      const viaRedis = await attempt('redis: throughput / redis store', async () => {
        const r = await counted(redis, () => throughputRun(cfg, 'holdline', timeoutMs, { messages, warmup, store }), () => 2 * (messages + warmup));
        return { ...r.value, redisCommands: r.redis };
      });
      out.throughput = { memory, redis: viaRedis };
    }
    if (wants('latency')) {
      const tick = { intervalMs: cfg.latency.intervalMs, durationMs: cfg.redis.latencyDurationMs, warmup: cfg.latency.warmup, payloadBytes: cfg.payloadBytes };
      const timeoutMs = tick.durationMs + tick.warmup * 20 + 15_000;
      // The two stores take turns, `latency.repeat` runs each, as the latency
      // section's libraries do: one run of each left the ratio to whichever
      // runs fell in a slow spell of the machine.
      const runs = await inTurns(['memory store', 'redis store'] as const, cfg.latency.repeat, 'redis: latency', async (s): Promise<LatencyRun> => {
        if (s === 'memory store') return latencyRun(cfg, 'holdline', tick, timeoutMs);
        const r = await counted(redis, () => latencyRun(cfg, 'holdline', tick, timeoutMs, store), (v) => Math.max(1, 2 * v.echo.received + v.push.received));
        return { ...r.value, redisCommands: r.redis };
      });
      out.latency = { memory: medianEchoRun(runs.get('memory store') ?? []), redis: medianEchoRun(runs.get('redis store') ?? []) };
      out.roundTrip = await runRedisRtt(cfg, redis.url);
    }
    if (wants('fanout')) {
      const fanout: Record<string, StorePair<FanoutRun>> = {};
      for (const transport of cfg.redis.fanoutTransports) {
        for (const size of cfg.redis.fanoutSizes) {
          const key = fanoutKey(size, cfg.redis.fanoutSizes) + (transport === 'polling' ? '' : ` ${transport}`);
          const memory = await attempt(`redis: fan-out ${key} / memory store`, () => runSize(cfg, 'holdline', size, undefined, cfg.redis.fanoutDurationMs, transport));
          const viaRedis = await attempt(`redis: fan-out ${key} / redis store`, async () => {
            const r = await counted(redis, () => runSize(cfg, 'holdline', size, store, cfg.redis.fanoutDurationMs, transport), (v) => Math.max(1, v.delivered));
            return { ...r.value, redisCommands: r.redis };
          });
          fanout[key] = { memory, redis: viaRedis };
        }
      }
      out.fanout = fanout;
    }
    if (wants('cluster')) {
      const { nodes, sessionsPerNode } = cfg.redis.cluster;
      out.cluster = await attempt(`redis: cluster of ${nodes} nodes x ${sessionsPerNode} sessions`, () => runCluster(cfg, redis));
    }
    return out;
  } finally {
    await redis.stop();
  }
}
