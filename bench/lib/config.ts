/**
 * Command-line flags and the two presets: the full run (default, a few
 * minutes) and --smoke (a few seconds, run by `npm test`).
 */
import { parseArgs } from 'node:util';
import { LIBS, type BenchTransport, type LibName } from './adapters/types.js';

export const WORKLOADS = ['baseline', 'throughput', 'latency', 'fanout', 'loss', 'ackpaced', 'redis', 'websocket'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/** The parts of the Redis section (workloads/redis.ts), each can run alone with --redis-parts. */
export const REDIS_PARTS = ['throughput', 'latency', 'fanout', 'cluster'] as const;
export type RedisPart = (typeof REDIS_PARTS)[number];

export interface FanoutSize {
  sessions: number;
  intervalMs: number;
}

/** Results key of a fan-out size: "1000" or, when a size repeats, "1000@100ms". */
export function fanoutKey(size: FanoutSize, all: readonly FanoutSize[]): string {
  const clash = all.filter((s) => s.sessions === size.sessions).length > 1;
  return clash ? `${size.sessions}@${size.intervalMs}ms` : String(size.sessions);
}

export interface BenchConfig {
  smoke: boolean;
  libs: LibName[];
  workloads: WorkloadName[];
  /** Bytes per message (ASCII string). */
  payloadBytes: number;
  /** Messages a sender may keep queued in the library before waiting. */
  window: number;
  /**
   * What Holdline's window counts: 'unsent', messages not yet written to the
   * network (what Engine.IO's writeBuffer and 'drain' count: like for like),
   * or 'unacked', messages not yet acknowledged (a stricter window Engine.IO
   * has no equivalent of). The throughput targets are judged on 'unsent'.
   */
  holdlineWindow: 'unsent' | 'unacked';
  /** Keep Engine.IO's default HTTP compression (off by default here: see adapters/engineio.ts). */
  eioCompression: boolean;
  /** Each direction is measured `repeat` times; the median run is reported. */
  throughput: { messages: number; warmup: number; repeat: number };
  /**
   * repeat: runs per library, the libraries taking turns (H, E, H, E, ...) so
   * that a change in the machine's state (this VM's wake-up latency swings
   * between runs) falls on both; the run with the median echo p50 is reported.
   */
  latency: { intervalMs: number; durationMs: number; warmup: number; repeat: number };
  /** settleMs: idle time before the memory reading (past node's 5 s keep-alive timeout); repeat: runs per size. */
  fanout: { sizes: FanoutSize[]; durationMs: number; connectConcurrency: number; settleMs: number; repeat: number };
  /** `window` here is the send window for this workload: small, so that many exchanges can be cut. */
  loss: { s2c: number; c2s: number; killRate: number; seed: number; window: number; timeoutMs: number };
  /** requests: back-to-back round trips; paced: round trips one every latency.intervalMs. */
  baseline: { requests: number; paced: number; wsMessages: number };
  /** Ack-paced against unpaced senders (Holdline only), both ways: messages per run, warm-up, runs (median reported). */
  ackpaced: { messages: number; warmup: number; repeat: number };
  /**
   * The Redis section (Holdline only): the Redis store against the memory
   * store on one node (throughput, echo, fan-out), then a cluster of
   * `cluster.nodes` server processes sharing one redis-server.
   */
  redis: {
    parts: RedisPart[];
    /** Throughput: messages per direction and warm-up (one run per store). */
    messages: number;
    warmup: number;
    /** Echo and push: for this long per store (latency.intervalMs apart). */
    latencyDurationMs: number;
    fanoutSizes: FanoutSize[];
    fanoutDurationMs: number;
    /** What carries the fan-out clients' sessions: each size runs once per transport and store. */
    fanoutTransports: BenchTransport[];
    /** sessionsPerNode clients on each node; one node broadcasts every intervalMs for durationMs. */
    cluster: { nodes: number; sessionsPerNode: number; intervalMs: number; durationMs: number };
  };
  /**
   * The WebSocket section: Holdline on a WebSocket against raw `ws` and
   * Engine.IO's websocket transport. Throughput: messages per direction,
   * warm-up; echo and push for latencyDurationMs (latency.intervalMs apart);
   * `repeat` runs of each, the three taking turns (median reported); idle
   * heap per session over idleSessions, after idleWarmup.
   */
  websocket: { messages: number; warmup: number; repeat: number; latencyDurationMs: number; idleSessions: number; idleWarmup: number };
  /**
   * Extra node flags for every child (--node-flags), e.g. --trace-gc or a
   * V8 heap size. Kept in the results' config: flags that tune V8 change
   * what is measured.
   */
  nodeFlags: string[];
  out: string;
  /** Directory for --cpu-prof profiles of every child, when set. */
  cpuProfDir: string | undefined;
}

const FULL: Omit<BenchConfig, 'out' | 'cpuProfDir'> = {
  smoke: false,
  nodeFlags: [],
  libs: [...LIBS],
  workloads: [...WORKLOADS],
  payloadBytes: 100,
  window: 1000,
  holdlineWindow: 'unsent',
  eioCompression: false,
  throughput: { messages: 200_000, warmup: 20_000, repeat: 3 },
  latency: { intervalMs: 10, durationMs: 5_000, warmup: 100, repeat: 3 },
  fanout: {
    sizes: [
      { sessions: 1_000, intervalMs: 100 },
      { sessions: 10_000, intervalMs: 1_000 },
    ],
    durationMs: 10_000,
    connectConcurrency: 100,
    settleMs: 6_000,
    repeat: 3,
  },
  loss: { s2c: 20_000, c2s: 1_000, killRate: 0.1, seed: 1, window: 20, timeoutMs: 120_000 },
  baseline: { requests: 5_000, paced: 500, wsMessages: 200_000 },
  ackpaced: { messages: 200_000, warmup: 20_000, repeat: 5 },
  redis: {
    parts: [...REDIS_PARTS],
    messages: 100_000,
    warmup: 10_000,
    latencyDurationMs: 5_000,
    fanoutSizes: [
      { sessions: 1_000, intervalMs: 100 },
      { sessions: 10_000, intervalMs: 1_000 },
    ],
    fanoutDurationMs: 10_000,
    fanoutTransports: ['polling', 'websocket'],
    cluster: { nodes: 3, sessionsPerNode: 3_000, intervalMs: 1_000, durationMs: 10_000 },
  },
  websocket: { messages: 200_000, warmup: 20_000, repeat: 3, latencyDurationMs: 5_000, idleSessions: 2_000, idleWarmup: 200 },
};

const SMOKE: Omit<BenchConfig, 'out' | 'cpuProfDir'> = {
  ...FULL,
  smoke: true,
  throughput: { messages: 3_000, warmup: 500, repeat: 1 },
  latency: { intervalMs: 10, durationMs: 200, warmup: 10, repeat: 1 },
  fanout: { sizes: [{ sessions: 20, intervalMs: 100 }], durationMs: 500, connectConcurrency: 20, settleMs: 100, repeat: 1 },
  loss: { s2c: 500, c2s: 100, killRate: 0.1, seed: 1, window: 20, timeoutMs: 20_000 },
  baseline: { requests: 200, paced: 20, wsMessages: 5_000 },
  ackpaced: { messages: 3_000, warmup: 500, repeat: 1 },
  redis: {
    parts: [...REDIS_PARTS],
    messages: 2_000,
    warmup: 200,
    latencyDurationMs: 200,
    fanoutSizes: [{ sessions: 20, intervalMs: 100 }],
    fanoutDurationMs: 500,
    fanoutTransports: ['polling', 'websocket'],
    cluster: { nodes: 3, sessionsPerNode: 10, intervalMs: 100, durationMs: 500 },
  },
  websocket: { messages: 3_000, warmup: 500, repeat: 1, latencyDurationMs: 200, idleSessions: 20, idleWarmup: 5 },
};

function nodeFlags(v: string | undefined): string[] {
  if (v === undefined) return [];
  const flags = v.split(/\s+/).filter(Boolean);
  for (const f of flags) {
    if (!f.startsWith('--')) throw new TypeError(`--node-flags: "${f}" is not a node flag (they start with --)`);
  }
  return flags;
}

function holdlineWindow(v: string | undefined, def: BenchConfig['holdlineWindow']): BenchConfig['holdlineWindow'] {
  if (v === undefined) return def;
  if (v === 'unsent' || v === 'unacked') return v;
  throw new TypeError(`--holdline-window must be unsent or unacked, got ${JSON.stringify(v)}`);
}

export const USAGE = `Usage: npm run bench -- [flags]   (builds dist/, then runs tsx bench/run.ts [flags])

  --smoke                   tiny run (a few seconds); default is the full run
  --only=LIST               workloads, comma-separated: ${WORKLOADS.join(',')}
  --libs=LIST               libraries: ${LIBS.join(',')}
  --payload=BYTES           message size (default 100)
  --window=N                messages queued in a library before the sender waits (default 1000)
  --eio-compression         keep Engine.IO's default HTTP compression (default: off, which makes it faster here)
  --holdline-window=MODE    what Holdline's window counts: unsent (like Engine.IO's drain) or unacked (default unsent)
  --messages=N              throughput: messages per direction (default 200000)
  --repeat=N                throughput: runs per direction, median reported (default 3)
  --latency-interval=MS     latency: one message every MS (default 10)
  --latency-duration=MS     latency: for MS per measurement (default 5000)
  --latency-repeat=N        latency: runs per library, taking turns, median run reported (default 3)
  --fanout=LIST             fan-out sizes, SESSIONS:INTERVAL_MS,... (default 1000:100,10000:1000)
  --fanout-duration=MS      fan-out: broadcast for MS (default 10000)
  --fanout-repeat=N         fan-out: runs per size, median p99 reported (default 3)
  --loss-s2c=N              loss: server-to-client messages (default 20000)
  --loss-c2s=N              loss: client-to-server messages (default 1000)
  --kill-rate=P             loss: fraction of HTTP exchanges the proxy kills (default 0.1)
  --seed=N                  loss: fault proxy seed (default 1)
  --loss-window=N           loss: send window, small so that many exchanges can be cut (default 20)
  --requests=N              baseline: back-to-back HTTP round trips (default 5000)
  --paced=N                 baseline: HTTP round trips paced like the echo test (default 500)
  --ws-messages=N           baseline: ws messages (default 200000)
  --ackpaced-messages=N     ackpaced: messages per run, each direction and sender (default 200000)
  --ackpaced-repeat=N       ackpaced: runs, median reported (default 5)
  --redis-parts=LIST        redis: parts to run, comma-separated: ${REDIS_PARTS.join(',')}
  --redis-messages=N        redis: throughput messages per direction and store (default 100000)
  --redis-latency-duration=MS  redis: echo and push for MS per store (default 5000)
  --redis-fanout=LIST       redis: fan-out sizes per store, SESSIONS:INTERVAL_MS,... (default 1000:100,10000:1000)
  --redis-fanout-duration=MS   redis: fan-out broadcasts for MS (default 10000)
  --redis-fanout-transports=LIST  redis: fan-out clients on polling, websocket or both (default polling,websocket)
  --cluster=NODESxSESSIONS  redis: server nodes and sessions per node (default 3x3000)
  --cluster-interval=MS     redis: one broadcast every MS in the cluster (default 1000)
  --cluster-duration=MS     redis: cluster broadcasts for MS (default 10000)
  --websocket-messages=N    websocket: throughput messages per direction (default 200000)
  --websocket-repeat=N      websocket: runs of throughput and of latency per library, median reported (default 3)
  --websocket-latency-duration=MS  websocket: echo and push for MS per run (default 5000)
  --websocket-idle=N        websocket: idle sessions for the heap figure (default 2000)
  --out=FILE                JSON results (default bench/results/latest.json)
  --cpu-prof=DIR            run every child with --cpu-prof, profiles in DIR
  --node-flags="FLAGS"      extra node flags for every child, space-separated (e.g. "--trace-gc"; recorded in the results)
  --help
`;

function int(name: string, v: string | undefined, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new TypeError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function list<T extends string>(name: string, v: string | undefined, allowed: readonly T[], def: T[]): T[] {
  if (v === undefined) return def;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new TypeError(`--${name}: unknown "${item}" (choose from ${allowed.join(', ')})`);
  }
  return items as T[];
}

function fanoutSizes(v: string | undefined, def: FanoutSize[], flag = 'fanout'): FanoutSize[] {
  if (v === undefined) return def;
  return v.split(',').map((part) => {
    const m = /^(\d+):(\d+)$/.exec(part.trim());
    if (!m) throw new TypeError(`--${flag}: expected SESSIONS:INTERVAL_MS, got ${JSON.stringify(part)}`);
    return { sessions: int(flag, m[1], 1), intervalMs: int(flag, m[2], 1) };
  });
}

function clusterShape(v: string | undefined, def: { nodes: number; sessionsPerNode: number }): { nodes: number; sessionsPerNode: number } {
  if (v === undefined) return def;
  const m = /^(\d+)x(\d+)$/.exec(v.trim());
  if (!m) throw new TypeError(`--cluster: expected NODESxSESSIONS (e.g. 3x3000), got ${JSON.stringify(v)}`);
  return { nodes: int('cluster', m[1], 1), sessionsPerNode: int('cluster', m[2], 1) };
}

/** Parse argv into a config; returns undefined for --help. */
export function parseConfig(argv: string[]): BenchConfig | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      smoke: { type: 'boolean' },
      help: { type: 'boolean' },
      only: { type: 'string' },
      libs: { type: 'string' },
      payload: { type: 'string' },
      window: { type: 'string' },
      'holdline-window': { type: 'string' },
      'eio-compression': { type: 'boolean' },
      messages: { type: 'string' },
      repeat: { type: 'string' },
      'latency-interval': { type: 'string' },
      'latency-duration': { type: 'string' },
      'latency-repeat': { type: 'string' },
      fanout: { type: 'string' },
      'fanout-duration': { type: 'string' },
      'fanout-repeat': { type: 'string' },
      'loss-s2c': { type: 'string' },
      'loss-c2s': { type: 'string' },
      'kill-rate': { type: 'string' },
      seed: { type: 'string' },
      'loss-window': { type: 'string' },
      requests: { type: 'string' },
      paced: { type: 'string' },
      'ws-messages': { type: 'string' },
      'ackpaced-messages': { type: 'string' },
      'ackpaced-repeat': { type: 'string' },
      'redis-parts': { type: 'string' },
      'redis-messages': { type: 'string' },
      'redis-latency-duration': { type: 'string' },
      'redis-fanout': { type: 'string' },
      'redis-fanout-transports': { type: 'string' },
      'redis-fanout-duration': { type: 'string' },
      cluster: { type: 'string' },
      'cluster-interval': { type: 'string' },
      'cluster-duration': { type: 'string' },
      'websocket-messages': { type: 'string' },
      'websocket-repeat': { type: 'string' },
      'websocket-latency-duration': { type: 'string' },
      'websocket-idle': { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'node-flags': { type: 'string' },
    },
  });
  if (values.help) return undefined;
  const base = values.smoke ? SMOKE : FULL;
  const killRate = values['kill-rate'] === undefined ? base.loss.killRate : Number(values['kill-rate']);
  if (!(killRate >= 0 && killRate <= 1)) throw new TypeError(`--kill-rate must be in 0..1, got ${JSON.stringify(values['kill-rate'])}`);
  const payloadBytes = int('payload', values.payload, base.payloadBytes, 24);
  const messages = int('messages', values.messages, base.throughput.messages);
  const ackMessages = int('ackpaced-messages', values['ackpaced-messages'], base.ackpaced.messages);
  const redisMessages = int('redis-messages', values['redis-messages'], base.redis.messages);
  const wsMessages = int('websocket-messages', values['websocket-messages'], base.websocket.messages);
  return {
    ...base,
    libs: list('libs', values.libs, LIBS, base.libs),
    workloads: list('only', values.only, WORKLOADS, base.workloads),
    payloadBytes,
    window: int('window', values.window, base.window),
    holdlineWindow: holdlineWindow(values['holdline-window'], base.holdlineWindow),
    eioCompression: values['eio-compression'] ?? base.eioCompression,
    throughput: {
      messages,
      warmup: Math.min(base.throughput.warmup, Math.ceil(messages / 10)),
      repeat: int('repeat', values.repeat, base.throughput.repeat),
    },
    latency: {
      ...base.latency,
      intervalMs: int('latency-interval', values['latency-interval'], base.latency.intervalMs),
      durationMs: int('latency-duration', values['latency-duration'], base.latency.durationMs),
      repeat: int('latency-repeat', values['latency-repeat'], base.latency.repeat),
    },
    fanout: {
      ...base.fanout,
      sizes: fanoutSizes(values.fanout, base.fanout.sizes),
      durationMs: int('fanout-duration', values['fanout-duration'], base.fanout.durationMs),
      repeat: int('fanout-repeat', values['fanout-repeat'], base.fanout.repeat),
    },
    loss: {
      ...base.loss,
      s2c: int('loss-s2c', values['loss-s2c'], base.loss.s2c),
      c2s: int('loss-c2s', values['loss-c2s'], base.loss.c2s),
      killRate,
      seed: int('seed', values.seed, base.loss.seed, 0),
      window: int('loss-window', values['loss-window'], base.loss.window),
    },
    baseline: {
      requests: int('requests', values.requests, base.baseline.requests),
      paced: int('paced', values.paced, base.baseline.paced),
      wsMessages: int('ws-messages', values['ws-messages'], base.baseline.wsMessages),
    },
    ackpaced: {
      messages: ackMessages,
      warmup: Math.min(base.ackpaced.warmup, Math.ceil(ackMessages / 10)),
      repeat: int('ackpaced-repeat', values['ackpaced-repeat'], base.ackpaced.repeat),
    },
    redis: {
      parts: list('redis-parts', values['redis-parts'], REDIS_PARTS, base.redis.parts),
      messages: redisMessages,
      warmup: Math.min(base.redis.warmup, Math.ceil(redisMessages / 10)),
      latencyDurationMs: int('redis-latency-duration', values['redis-latency-duration'], base.redis.latencyDurationMs),
      fanoutSizes: fanoutSizes(values['redis-fanout'], base.redis.fanoutSizes, 'redis-fanout'),
      fanoutDurationMs: int('redis-fanout-duration', values['redis-fanout-duration'], base.redis.fanoutDurationMs),
      fanoutTransports: list('redis-fanout-transports', values['redis-fanout-transports'], ['polling', 'websocket'] as const, base.redis.fanoutTransports),
      cluster: {
        ...clusterShape(values.cluster, base.redis.cluster),
        intervalMs: int('cluster-interval', values['cluster-interval'], base.redis.cluster.intervalMs),
        durationMs: int('cluster-duration', values['cluster-duration'], base.redis.cluster.durationMs),
      },
    },
    websocket: {
      ...base.websocket,
      messages: wsMessages,
      warmup: Math.min(base.websocket.warmup, Math.ceil(wsMessages / 10)),
      repeat: int('websocket-repeat', values['websocket-repeat'], base.websocket.repeat),
      latencyDurationMs: int('websocket-latency-duration', values['websocket-latency-duration'], base.websocket.latencyDurationMs),
      idleSessions: int('websocket-idle', values['websocket-idle'], base.websocket.idleSessions),
    },
    nodeFlags: nodeFlags(values['node-flags']),
    out: values.out ?? 'bench/results/latest.json',
    cpuProfDir: values['cpu-prof'],
  };
}
