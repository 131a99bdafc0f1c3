/**
 * Workload 2: latency over one session, server and client in separate
 * processes.
 * - Echo round trip: the client sends a stamped message every intervalMs;
 *   the server sends it back; RTT is taken in the client (one clock).
 * - Server push, one way: the server sends a stamped message every
 *   intervalMs; the client subtracts the stamp from the shared clock
 *   (performance.timeOrigin + performance.now(), same machine).
 */
import { connectClient, startServer, type BenchClient, type BenchServer, type BenchSession, type AnyLib, type BenchTransport, type LibArgs, type LibName, type StoreSpec } from '../lib/adapters/index.js';
import type { BenchConfig } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { inTurns, type Outcome, type PerLib } from '../lib/measure.js';
import { until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { Samples, headOf, medianBy, padded, round, sharedClockMs, sleep, type LatencySummary } from '../lib/stats.js';

type StartArgs = LibArgs;
interface ConnectArgs extends StartArgs {
  url: string;
}
export interface TickArgs {
  intervalMs: number;
  durationMs: number;
  warmup: number;
  payloadBytes: number;
}
interface Measured {
  sent: number;
  received: number;
  latency: LatencySummary;
}

// ---- child side ----
// Messages are `e:<stamp>|xxx` (echo) and `p:<stamp>|xxx` (push).

let server: BenchServer | undefined;
let session: BenchSession | undefined;
let client: BenchClient | undefined;
const rtt = new Samples();
const oneWay = new Samples();

/**
 * Send `warmup` unstamped messages (`e:w|...`, not sampled), then one stamped
 * message every intervalMs for durationMs; returns how many were stamped.
 */
async function tick(send: (data: string) => void, kind: 'e' | 'p', a: TickArgs): Promise<number> {
  for (let i = 0; i < a.warmup; i++) {
    send(padded(`${kind}:w`, a.payloadBytes));
    await sleep(1);
  }
  await sleep(50);
  const end = performance.now() + a.durationMs;
  let sent = 0;
  while (performance.now() < end) {
    send(padded(`${kind}:${sharedClockMs()}`, a.payloadBytes));
    sent++;
    await sleep(a.intervalMs);
  }
  return sent;
}

const serverStart = defineRole<StartArgs, { url: string }>('latency.server.start', async (a) => {
  server = await startServer(a.lib, a);
  server.onSession((s) => {
    session ??= s;
    s.onMessage((d) => void s.send(d));
  });
  return { url: server.url };
});

const serverPush = defineRole<TickArgs, number>('latency.server.push', async (a) => {
  await until(() => session !== undefined, performance.now() + 5_000, 'the session');
  const s = started(session, 'the session');
  return tick((d) => void s.send(d), 'p', a);
});

const clientConnect = defineRole<ConnectArgs, null>('latency.client.connect', async (a) => {
  client = await connectClient(a.lib, a.url, { ...a, reconnect: false });
  client.onMessage((d) => {
    const head = headOf(d);
    const stamp = Number(head.slice(2));
    if (!Number.isFinite(stamp)) return; // warm-up
    (head.startsWith('e:') ? rtt : oneWay).add(sharedClockMs() - stamp);
  });
  return null;
});

const clientEcho = defineRole<TickArgs, Measured>('latency.client.echo', async (a) => {
  const c = started(client, 'the client');
  const sent = await tick((d) => void c.send(d), 'e', a);
  await until(() => rtt.length >= sent, performance.now() + 5_000, 'echoes').catch(() => undefined);
  return { sent, received: rtt.length, latency: rtt.summary() };
});

const clientPushReport = defineRole<{ sent: number }, Measured>('latency.client.pushReport', async (a) => {
  await until(() => oneWay.length >= a.sent, performance.now() + 5_000, 'pushes').catch(() => undefined);
  return { sent: a.sent, received: oneWay.length, latency: oneWay.summary() };
});

// ---- parent side ----

export interface LatencyResult {
  echo: Measured;
  push: Measured;
  /** Echo p50 of every run (the figures above are the median run's). */
  runs?: number[];
}

/**
 * One run in fresh processes; `store`: the Holdline server's session store
 * (default its own MemoryStore); `transport`: what carries the session
 * (default polling).
 */
export function runOnce(cfg: BenchConfig, lib: AnyLib, tickArgs: TickArgs, timeoutMs: number, store?: StoreSpec, transport?: BenchTransport): Promise<LatencyResult> {
  return withAgents([{ name: 'server' }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(serverStart, { lib, window: cfg.window, payloadBytes: cfg.payloadBytes, store, transport }, 10_000);
    await cli.call(clientConnect, { lib, url, window: cfg.window, payloadBytes: cfg.payloadBytes, transport }, 10_000);
    const echo = await cli.call(clientEcho, tickArgs, timeoutMs);
    const sent = await srv.call(serverPush, tickArgs, timeoutMs);
    const push = await cli.call(clientPushReport, { sent }, 10_000);
    for (const m of [echo, push]) {
      for (const k of ['mean', 'p50', 'p90', 'p99', 'max'] as const) m.latency[k] = round(m.latency[k]);
    }
    return { echo, push };
  });
}

export interface LatencyRuns {
  perLib: PerLib<LatencyResult>;
  /**
   * The raw held poll (adapters/raw-poll.ts), measured alike in the same
   * turns: the polling echo with no protocol, the floor under both libraries.
   */
  floor: Outcome<LatencyResult>;
}

export async function runLatency(cfg: BenchConfig): Promise<LatencyRuns> {
  const { intervalMs, durationMs, warmup, repeat } = cfg.latency;
  const tickArgs: TickArgs = { intervalMs, durationMs, warmup, payloadBytes: cfg.payloadBytes };
  const timeoutMs = durationMs + warmup * 20 + 15_000;
  const libs: Array<LibName | 'poll'> = [...cfg.libs, 'poll'];
  const runs = await inTurns(libs, repeat, 'latency', (lib) => runOnce(cfg, lib, tickArgs, timeoutMs));
  const perLib: PerLib<LatencyResult> = {};
  let floor: Outcome<LatencyResult> = { ok: false, error: 'not run' };
  for (const [lib, outcomes] of runs) {
    if (lib === 'poll') floor = medianEchoRun(outcomes);
    else perLib[lib] = medianEchoRun(outcomes);
  }
  return { perLib, floor };
}

/** The run with the median echo p50, with every run's echo p50 (`runs`); the first failure if none ran. */
export function medianEchoRun<T extends LatencyResult>(outcomes: ReadonlyArray<Outcome<T>>): Outcome<T> {
  const ok = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
  if (ok.length === 0) return outcomes[0] ?? { ok: false, error: 'not run' };
  const median = medianBy(ok, (v) => v.echo.latency.p50);
  return { ok: true, value: { ...median, runs: ok.map((v) => v.echo.latency.p50) } };
}
