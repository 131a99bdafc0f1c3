/**
 * The WebSocket section (`--only=websocket`): Holdline on its WebSocket
 * transport against raw `ws` and against Engine.IO's websocket transport, in
 * one run, the three taking turns run by run:
 * - throughput both ways (the throughput workload's roles, on a WebSocket);
 * - echo round trip and one-way push, paced (the latency workload's roles);
 * - server heap per idle session: `idleSessions` clients, each with one
 *   round trip done (so Holdline's WebSocket has carried the session) and
 *   then idle, against the server's heap after `idleWarmup` of them; full
 *   collections before each reading (the server runs with --expose-gc).
 *
 * Holdline's clients use `transports: ['websocket']` (the session opens over
 * HTTP, then the WebSocket carries it: no polls), Engine.IO's the websocket
 * transport alone on both ends, raw `ws` one text frame per message. Holdline
 * carries acknowledgements, heartbeats and the session; the others do not.
 */
import { connectClient, startServer, type AnyLib, type BenchClient, type BenchServer } from '../lib/adapters/index.js';
import type { BenchConfig } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { attempt, inTurns, type Outcome } from '../lib/measure.js';
import { until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { medianBy, sleep } from '../lib/stats.js';
import { runOnce as latencyOnce, type LatencyResult, type TickArgs } from './latency.js';
import { runOnce as throughputOnce, type DirectionResult, type ThroughputResult } from './throughput.js';

/** The three compared here, in the order they take turns. */
export const WS_LIBS = ['holdline', 'ws', 'engine.io'] as const;
export type WsLib = (typeof WS_LIBS)[number];
export type PerWsLib<T> = Partial<Record<WsLib, Outcome<T>>>;

// ---- child side: the idle-heap part ----

let idleServer: BenchServer | undefined;
const idleClients: BenchClient[] = [];
let echoed = 0;

const idleServerStart = defineRole<{ lib: AnyLib }, { url: string }>('websocket.idle.server.start', async ({ lib }) => {
  idleServer = await startServer(lib, { window: 1000, payloadBytes: 100, transport: 'websocket' });
  idleServer.onSession((s) => s.onMessage((d) => void s.send(d)));
  return { url: idleServer.url };
});

/**
 * Wait until the server holds no more connections than `count` (one per
 * session, its WebSocket): Holdline's sessions open over HTTP, and node:http
 * keeps that connection alive until the client's idle timeout (4 s) or its
 * own (5 s) ends it, about 3.4 KB each, which is not what an idle session
 * keeps. The same wait for the others (their connections are the sessions').
 */
const idleServerConnections = defineRole<{ count: number; timeoutMs: number }, number>('websocket.idle.server.connections', async ({ count, timeoutMs }) => {
  const server = started(idleServer, 'the idle server').http;
  const open = () => new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  const deadline = performance.now() + timeoutMs;
  let n = await open();
  while (n > count && performance.now() < deadline) {
    await sleep(100);
    n = await open();
  }
  return n;
});

const idleServerErrors = defineRole<Record<string, never>, string[]>('websocket.idle.server.errors', () => started(idleServer, 'the idle server').errors);

/** Open `count` clients, `concurrency` at a time; each sends one message and waits for its echo. */
const idleOpen = defineRole<{ lib: AnyLib; url: string; count: number; concurrency: number; timeoutMs: number }, number>('websocket.idle.clients.open', async (a) => {
  const deadline = performance.now() + a.timeoutMs;
  let next = 0;
  const one = async () => {
    const c = await connectClient(a.lib, a.url, { window: 1000, payloadBytes: 100, transport: 'websocket', reconnect: false });
    idleClients.push(c);
    let got = false;
    c.onMessage(() => {
      got = true;
      echoed++;
    });
    void c.send('hello');
    await until(() => got, deadline, 'an echo');
  };
  const worker = async () => {
    while (next < a.count) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, a.count) }, worker));
  return echoed;
});

const idleClientErrors = defineRole<Record<string, never>, string[]>('websocket.idle.clients.errors', () => idleClients.flatMap((c) => c.errors).slice(0, 20));

// ---- parent side ----

export interface IdleWsHeap {
  sessions: number;
  /** Server heap growth per idle session after full collections, bytes. */
  heapPerSession: number;
  rssPerSession: number;
  /** Connections the server held at the reading (one per session when the opens' HTTP connections are gone). */
  connections: number;
  errors: string[];
}

export interface WebSocketResults {
  throughput: PerWsLib<ThroughputResult>;
  latency: PerWsLib<LatencyResult>;
  idle: PerWsLib<IdleWsHeap>;
}

async function idleHeap(cfg: BenchConfig, lib: WsLib): Promise<IdleWsHeap> {
  return measureWsIdleHeap(lib, cfg.websocket.idleSessions, cfg.websocket.idleWarmup);
}

/** Server heap per idle WebSocket session of `lib`, in fresh child processes (also test/websocket-idle-heap.test.ts). */
export async function measureWsIdleHeap(lib: WsLib, idleSessions: number, idleWarmup: number): Promise<IdleWsHeap> {
  return withAgents([{ name: 'server', exposeGc: true }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(idleServerStart, { lib }, 10_000);
    const open = (count: number) => cli.call(idleOpen, { lib, url, count, concurrency: 50, timeoutMs: 60_000 + count * 20 }, 70_000 + count * 20);
    const settle = (count: number) => srv.call(idleServerConnections, { count, timeoutMs: 20_000 }, 25_000);
    await open(idleWarmup);
    await settle(idleWarmup);
    await sleep(500);
    const before = await srv.memory();
    await open(idleSessions);
    const connections = await settle(idleWarmup + idleSessions);
    await sleep(500);
    const idle = await srv.memory();
    if (!idle.afterGc) throw new Error('the server child has no gc(): it must run with --expose-gc');
    const errors = [...(await srv.call(idleServerErrors, {}, 5_000)), ...(await cli.call(idleClientErrors, {}, 5_000))];
    return {
      sessions: idleSessions,
      heapPerSession: Math.round((idle.heapUsed - before.heapUsed) / idleSessions),
      rssPerSession: Math.round((idle.rss - before.rss) / idleSessions),
      connections,
      errors,
    };
  });
}

/** Every run of a library must succeed (a failed one would leave a median of fewer); `pick` makes its figure of them. */
function collect<T, U>(runs: Map<WsLib, Array<Outcome<T>>>, pick: (ok: T[]) => U): PerWsLib<U> {
  const out: PerWsLib<U> = {};
  for (const [lib, outcomes] of runs) {
    const ok = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
    const failed = outcomes.find((o) => !o.ok);
    out[lib] = failed?.ok === false ? failed : (ok.length === 0 ? { ok: false, error: 'not run' } : { ok: true, value: pick(ok) });
  }
  return out;
}

const byRate = (runs: DirectionResult[]) => medianBy(runs, (r) => r.msgPerSec);

export async function runWebSocket(cfg: BenchConfig): Promise<WebSocketResults> {
  const w = cfg.websocket;
  const libs = WS_LIBS.filter((l) => l !== 'engine.io' || cfg.libs.includes('engine.io'));
  const tpTimeout = cfg.smoke ? 20_000 : 120_000;
  const tp = await inTurns(libs, w.repeat, 'websocket throughput', (lib) =>
    throughputOnce(cfg, lib, tpTimeout, { transport: 'websocket', messages: w.messages, warmup: w.warmup }),
  );
  const throughput = collect(tp, (ok): ThroughputResult => ({
    s2c: byRate(ok.map((v) => v.s2c)),
    c2s: byRate(ok.map((v) => v.c2s)),
    runs: { s2c: ok.map((v) => v.s2c.msgPerSec), c2s: ok.map((v) => v.c2s.msgPerSec) },
    errors: ok.flatMap((v) => v.errors),
  }));
  const { intervalMs, warmup } = cfg.latency;
  const tickArgs: TickArgs = { intervalMs, durationMs: w.latencyDurationMs, warmup, payloadBytes: cfg.payloadBytes };
  const latTimeout = w.latencyDurationMs + warmup * 20 + 15_000;
  const lat = await inTurns(libs, w.repeat, 'websocket latency', (lib) => latencyOnce(cfg, lib, tickArgs, latTimeout, undefined, 'websocket'));
  const latency = collect(lat, (ok) => ({ ...medianBy(ok, (v) => v.echo.latency.p50), runs: ok.map((v) => v.echo.latency.p50) }));
  const idle: PerWsLib<IdleWsHeap> = {};
  for (const lib of libs) idle[lib] = await attempt(`websocket idle heap / ${lib}`, () => idleHeap(cfg, lib));
  return { throughput, latency, idle };
}
