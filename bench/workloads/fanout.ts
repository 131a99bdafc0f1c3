/**
 * Workload 3: fan-out. `sessions` clients (all in one client process; on
 * polling, or on WebSocket where runSize is told so) and a server (another
 * process) that broadcasts a stamped message every intervalMs for
 * durationMs.
 * - Idle memory per session: server RSS and heap after a full GC with every
 *   client connected and idle, minus the same before the first client,
 *   divided by the sessions (the server runs with --expose-gc).
 * - Delivery: latency from the broadcast call to each client's message event
 *   (shared clock), and delivered / expected, where expected counts each
 *   broadcast once per session open at the time.
 * - CPU% of both processes over the broadcast phase.
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { Agent as UndiciAgent, request } from 'undici';
import { connectClient, listenLocal, startServer, type BenchClient, type BenchServer, type BenchTransport, type LibArgs, type LibName, type StoreSpec } from '../lib/adapters/index.js';
import { fanoutKey, type BenchConfig, type FanoutSize } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { attempt, perLib, withCpu, type Outcome, type PerLib } from '../lib/measure.js';
import { until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { Samples, headOf, medianBy, padded, round, sharedClockMs, sleep, summarize, withTimeout, type LatencySummary } from '../lib/stats.js';

type StartArgs = LibArgs;
interface ConnectArgs extends StartArgs {
  url: string;
  count: number;
  concurrency: number;
  timeoutMs: number;
}
interface BroadcastArgs {
  intervalMs: number;
  durationMs: number;
  payloadBytes: number;
}
interface Broadcasted {
  broadcasts: number;
  /** Sum over broadcasts of the sessions each was queued to. */
  expected: number;
  /** Longest time one broadcast call took, ms. */
  maxCallMs: number;
  /**
   * Per broadcast, from the broadcast call until the server had finished
   * writing as many HTTP responses as it had sessions (median and max):
   * how much of the delivery latency is spent in the server process.
   */
  writeSpanMs: { p50: number; max: number };
  /** TCP connections the server accepted while broadcasting (clients re-connecting between polls). */
  connectionsOpened: number;
  /**
   * Holdline only (null for Engine.IO, which has no broadcast call of its
   * own): per broadcast, ms from the `hl.broadcast()` call until its promise
   * settled (every session of this node had the message queued).
   */
  settleMs: SpanSummary | null;
}

/**
 * Median and largest of a few per-broadcast spans, ms, how many there were,
 * and the first broadcast's (the one with no earlier broadcast in flight).
 */
export interface SpanSummary {
  p50: number;
  max: number;
  count: number;
  first: number;
}

/** `values` in broadcast order. */
function spanSummary(values: number[]): SpanSummary {
  const s = summarize(values);
  return { p50: round(s.p50, 1), max: round(s.max, 1), count: s.count, first: round(values[0] ?? NaN, 1) };
}

// ---- child side ----

let server: BenchServer | undefined;
const clients: BenchClient[] = [];
const latency = new Samples();
/** Per broadcast (by its stamp): the latest delivery so far, ms after the stamp. */
const lastDelivery = new Map<number, number>();

/** When each HTTP response finished (shared clock), while broadcasting. */
let finishes: number[] | undefined;
let connections = 0;

const serverStart = defineRole<StartArgs, { url: string }>('fanout.server.start', async (a) => {
  server = await startServer(a.lib, a);
  // Response ends are counted through Node's diagnostics channel rather than a
  // 'finish' listener per response: a listener on every held poll would add
  // its own few hundred bytes to each idle session's heap, for both libraries.
  const httpServer = server.http;
  diagnostics.subscribe('http.server.response.finish', (msg) => {
    if ((msg as { server?: unknown }).server === httpServer) finishes?.push(sharedClockMs());
  });
  server.http.on('connection', () => connections++);
  return { url: server.url };
});

/** Per broadcast (started at `starts[i]`, to `sessions[i]` sessions): ms until that many responses were written. */
function writeSpans(starts: number[], sessions: number[], done: number[]): number[] {
  const spans: number[] = [];
  let j = 0;
  for (const [i, start] of starts.entries()) {
    while ((done[j] ?? Infinity) < start) j++;
    const end = done[j + (sessions[i] ?? 0) - 1];
    const next = starts[i + 1] ?? Infinity;
    spans.push(end !== undefined && end < next ? end - start : NaN); // NaN: not all written before the next broadcast
  }
  return spans;
}

const serverSessions = defineRole<{ count: number; timeoutMs: number }, number>('fanout.server.sessions', async (a) => {
  const s = started(server, 'the fan-out server');
  await until(() => s.sessionCount >= a.count, performance.now() + a.timeoutMs, `${a.count} sessions`, 20).catch(() => undefined);
  return s.sessionCount;
});

const serverBroadcast = defineRole<BroadcastArgs, Broadcasted>('fanout.server.broadcast', async (a) => {
  const s = started(server, 'the fan-out server');
  const start = performance.now();
  let broadcasts = 0;
  let expected = 0;
  let maxCallMs = 0;
  const starts: number[] = [];
  const counts: number[] = [];
  const settles: Array<Promise<number>> = [];
  finishes = [];
  const connectionsBefore = connections;
  // On a fixed schedule (no drift); a late tick goes out at once.
  for (let due = start; due < start + a.durationMs; due += a.intervalMs) {
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    const stamp = sharedClockMs();
    const data = padded(String(stamp), a.payloadBytes);
    let n: number;
    if (s.broadcastTimed) {
      const timed = s.broadcastTimed(data);
      n = timed.sessions;
      settles.push(timed.settled.then(() => performance.now() - t0));
    } else n = s.broadcast(data);
    starts.push(stamp);
    counts.push(n);
    expected += n;
    maxCallMs = Math.max(maxCallMs, performance.now() - t0);
    broadcasts++;
  }
  await sleep(Math.min(a.intervalMs, 2_000));
  // Broadcasts still under way (a slow store) settle within a bound.
  const settleMs = settles.length === 0 ? null : spanSummary(await withTimeout(Promise.all(settles), 30_000, 'broadcast promises').catch(() => [NaN]));
  const spans = summarize(writeSpans(starts, counts, finishes).filter(Number.isFinite));
  finishes = undefined;
  return {
    broadcasts,
    expected,
    maxCallMs: round(maxCallMs, 1),
    writeSpanMs: { p50: round(spans.p50, 1), max: round(spans.max, 1) },
    connectionsOpened: connections - connectionsBefore,
    settleMs,
  };
});

const serverErrors = defineRole<Record<string, never>, string[]>('fanout.server.errors', () => server?.errors ?? []);

const clientConnect = defineRole<ConnectArgs, { connected: number; failed: number; ms: number; errors: string[] }>('fanout.client.connect', async (a) => {
  const started = performance.now();
  const deadline = started + a.timeoutMs;
  const onMessage = (d: string) => {
    const stamp = Number(headOf(d));
    if (!Number.isFinite(stamp)) return;
    const ms = sharedClockMs() - stamp;
    latency.add(ms);
    if (!((lastDelivery.get(stamp) ?? -Infinity) >= ms)) lastDelivery.set(stamp, ms);
  };
  let next = 0;
  let failed = 0;
  const errors: string[] = [];
  const worker = async () => {
    while (next < a.count && performance.now() < deadline) {
      next++;
      try {
        const c = await connectClient(a.lib, a.url, { ...a, reconnect: false });
        c.onMessage(onMessage);
        clients.push(c);
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push(e instanceof Error ? e.message : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, a.count) }, worker));
  return { connected: clients.length, failed, ms: Math.round(performance.now() - started), errors };
});

interface Collected {
  delivered: number;
  latency: LatencySummary;
  /** Per broadcast: ms from the broadcast call until the last client that got it had it. */
  lastDeliveryMs: SpanSummary;
  errors: string[];
}

const clientCollect = defineRole<{ expected: number; graceMs: number }, Collected>('fanout.client.collect', async (a) => {
  await until(() => latency.length >= a.expected, performance.now() + a.graceMs, 'deliveries', 20).catch(() => undefined);
  const errors = clients.flatMap((c) => c.errors).slice(0, 10);
  return { delivered: latency.length, latency: latency.summary(), lastDeliveryMs: spanSummary([...lastDelivery.entries()].sort((a, b) => a[0] - b[0]).map(([, ms]) => ms)), errors };
});

/** The fan-out roles, for workloads that arrange them otherwise (several server nodes: workloads/redis.ts). */
export const fanoutRoles = { serverStart, serverSessions, serverBroadcast, serverErrors, clientConnect, clientCollect } as const;

// ---- the floor: a bare node:http server holding one POST per client ----

let floorServer: http.Server | undefined;
const floorHeld: http.ServerResponse[] = [];
const floorClients: UndiciAgent[] = [];

const floorStart = defineRole<Record<string, never>, { url: string }>('fanout.floor.start', async () => {
  floorServer = http.createServer((req, res) => {
    req.resume();
    floorHeld.push(res); // held, never answered: an idle long poll and nothing else
  });
  return { url: await listenLocal(floorServer) };
});

const floorHolding = defineRole<{ count: number; timeoutMs: number }, number>('fanout.floor.holding', async (a) => {
  await until(() => floorHeld.length >= a.count, performance.now() + a.timeoutMs, `${a.count} held requests`, 20).catch(() => undefined);
  return floorHeld.length;
});

/** `count` clients, each with its own undici Agent (as Holdline's), each with one POST held. */
const floorConnect = defineRole<{ url: string; count: number; payloadBytes: number }, number>('fanout.floor.connect', async (a) => {
  const body = 'x'.repeat(a.payloadBytes);
  for (let i = 0; i < a.count; i++) {
    const agent = new UndiciAgent({ headersTimeout: 0, bodyTimeout: 0, connections: 1 });
    floorClients.push(agent);
    request(a.url, { method: 'POST', body, headers: { 'content-type': 'text/plain' }, dispatcher: agent }).catch(() => undefined);
    if (i % 100 === 99) await sleep(1); // let the server accept
  }
  return floorClients.length;
});

export interface FloorResult {
  sessions: number;
  heapPerSession: number;
  rssPerSession: number;
}

/** Server heap and RSS per idle held request on bare node:http: what any long-polling server pays. */
async function runFloor(cfg: BenchConfig, size: FanoutSize): Promise<FloorResult> {
  return withAgents([{ name: 'server', exposeGc: true }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(floorStart, {}, 10_000);
    const before = await srv.memory();
    await cli.call(floorConnect, { url, count: size.sessions, payloadBytes: cfg.payloadBytes }, 120_000);
    const held = await srv.call(floorHolding, { count: size.sessions, timeoutMs: 60_000 }, 65_000);
    await sleep(cfg.fanout.settleMs);
    const idle = await srv.memory();
    return {
      sessions: held,
      heapPerSession: Math.round((idle.heapUsed - before.heapUsed) / held),
      rssPerSession: Math.round((idle.rss - before.rss) / held),
    };
  });
}

// ---- parent side ----

export interface FanoutResult {
  /** What carried the clients' sessions (absent in results recorded before it was: polling). */
  transport?: BenchTransport;
  sessions: number;
  intervalMs: number;
  connected: number;
  connectMs: number;
  broadcasts: number;
  expected: number;
  delivered: number;
  deliveredRatio: number;
  latency: LatencySummary;
  serverCpuPct: number;
  clientCpuPct: number;
  maxBroadcastCallMs: number;
  /** See Broadcasted.writeSpanMs. */
  serverWriteSpanMs: { p50: number; max: number };
  /** TCP connections accepted by the server during the broadcast phase. */
  connectionsOpened: number;
  /** See Broadcasted.settleMs (null for Engine.IO). */
  broadcastSettleMs: SpanSummary | null;
  /** Per broadcast, from the call until its last delivery (see Collected). */
  lastDeliveryMs: SpanSummary;
  idle: {
    rssPerSession: number;
    heapPerSession: number;
    rssBefore: number;
    rssIdle: number;
    heapBefore: number;
    heapIdle: number;
    afterGc: boolean;
  };
  errors: string[];
  /** p50/p99 of every run of this size (the figures above are the median run's). */
  runs?: Array<{ p50: number; p99: number }>;
}

/**
 * One run of one size, in fresh processes. `store`: the Holdline server's
 * session store (default its own MemoryStore); `durationMs`: how long to
 * broadcast (default cfg.fanout.durationMs); `transport`: what carries each
 * client's session (default polling).
 */
export async function runSize(cfg: BenchConfig, lib: LibName, size: FanoutSize, store?: StoreSpec, durationMs = cfg.fanout.durationMs, transport: BenchTransport = 'polling'): Promise<FanoutResult> {
  const { connectConcurrency, settleMs } = cfg.fanout;
  const connectTimeoutMs = Math.max(20_000, size.sessions * 20);
  return withAgents([{ name: 'server', exposeGc: true }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(serverStart, { lib, window: cfg.window, payloadBytes: cfg.payloadBytes, store, transport }, 10_000);
    const before = await srv.memory();
    const conn = await cli.call(
      clientConnect,
      { lib, url, window: cfg.window, payloadBytes: cfg.payloadBytes, transport, count: size.sessions, concurrency: connectConcurrency, timeoutMs: connectTimeoutMs },
      connectTimeoutMs + 10_000,
    );
    if (conn.connected === 0) throw new Error(`no client connected: ${conn.errors.join('; ')}`);
    const sessions = await srv.call(serverSessions, { count: conn.connected, timeoutMs: 10_000 }, 15_000);
    await sleep(settleMs);
    const idle = await srv.memory();
    // Until every message arrived (returns early), at most this long after the last broadcast.
    const graceMs = Math.max(5_000, size.intervalMs * 3, size.sessions);
    const { value, cpu } = await withCpu([srv, cli], () =>
      srv.call(serverBroadcast, { intervalMs: size.intervalMs, durationMs, payloadBytes: cfg.payloadBytes }, durationMs + 30_000),
    );
    // A client process saturated by its clients (10,000 Engine.IO ones here) answers late; wait for it.
    const got = await cli.call(clientCollect, { expected: value.expected, graceMs }, graceMs + 120_000);
    for (const k of ['mean', 'p50', 'p90', 'p99', 'max'] as const) got.latency[k] = round(got.latency[k], 2);
    const errors = [...conn.errors, ...got.errors, ...(await srv.call(serverErrors, {}, 5_000))];
    return {
      transport,
      sessions,
      intervalMs: size.intervalMs,
      connected: conn.connected,
      connectMs: conn.ms,
      broadcasts: value.broadcasts,
      expected: value.expected,
      delivered: got.delivered,
      deliveredRatio: value.expected === 0 ? 0 : round(got.delivered / value.expected, 4),
      latency: got.latency,
      serverCpuPct: cpu[0].cpuPct,
      clientCpuPct: cpu[1].cpuPct,
      maxBroadcastCallMs: value.maxCallMs,
      serverWriteSpanMs: value.writeSpanMs,
      connectionsOpened: value.connectionsOpened,
      broadcastSettleMs: value.settleMs,
      lastDeliveryMs: got.lastDeliveryMs,
      idle: {
        rssPerSession: Math.round((idle.rss - before.rss) / sessions),
        heapPerSession: Math.round((idle.heapUsed - before.heapUsed) / sessions),
        rssBefore: before.rss,
        rssIdle: idle.rss,
        heapBefore: before.heapUsed,
        heapIdle: idle.heapUsed,
        afterGc: idle.afterGc,
      },
      errors,
    };
  });
}

export interface FanoutResults {
  /** Per size, keyed by fanoutKey(). */
  sizes: Record<string, PerLib<FanoutResult>>;
  /** Per size: the bare node:http held-request floor of idle memory. */
  floor: Record<string, Outcome<FloorResult>>;
}

/**
 * One entry per fan-out size, keyed by fanoutKey(). Each size runs `repeat`
 * times, the libraries taking turns (so that a slow spell of the machine
 * hits both); the run with the median p99 is reported, with the p50/p99 of
 * every run in `runs`. Then the idle-memory floor of the same size.
 */
export async function runFanout(cfg: BenchConfig): Promise<FanoutResults> {
  const out: Record<string, PerLib<FanoutResult>> = {};
  const floor: Record<string, Outcome<FloorResult>> = {};
  for (const size of cfg.fanout.sizes) {
    const key = fanoutKey(size, cfg.fanout.sizes);
    const runs: PerLib<FanoutResult>[] = [];
    for (let r = 1; r <= cfg.fanout.repeat; r++) {
      runs.push(await perLib(cfg.libs, `fan-out ${key} (run ${r}/${cfg.fanout.repeat})`, (lib) => runSize(cfg, lib, size)));
    }
    const per: PerLib<FanoutResult> = {};
    for (const lib of cfg.libs) {
      const outcomes = runs.map((p) => p[lib]).filter((o) => o !== undefined);
      const ok = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
      if (ok.length < outcomes.length || ok.length === 0) {
        per[lib] = outcomes.find((o) => !o.ok) ?? { ok: false, error: 'not run' };
        continue;
      }
      const median = medianBy(ok, (v) => v.latency.p99);
      per[lib] = { ok: true, value: { ...median, runs: ok.map((v) => ({ p50: v.latency.p50, p99: v.latency.p99 })) } };
    }
    out[key] = per;
    floor[key] = await attempt(`fan-out ${key}: bare node:http held-request floor`, () => runFloor(cfg, size));
  }
  return { sizes: out, floor };
}
