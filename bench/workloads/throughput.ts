/**
 * Workload 1: throughput over one session, server-to-client then
 * client-to-server. Server and client run in separate processes; each
 * direction sends `messages` messages through the send window, after an
 * unmeasured warm-up; `repeat` runs, each in fresh processes, the libraries
 * taking turns (the median run of each direction is reported). Time runs from the sender's first send to the
 * receiver's last message, on the shared clock; CPU% is measured in both
 * processes over the same interval.
 */
import { connectClient, startServer, type BenchClient, type BenchServer, type BenchSession, type AnyLib, type BenchTransport, type LibArgs, type StoreSpec } from '../lib/adapters/index.js';
import type { BenchConfig } from '../lib/config.js';
import { Agent, withAgents } from '../lib/harness.js';
import { inTurns, withCpu, type PerLib } from '../lib/measure.js';
import { pump, until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { medianBy, round, sharedClockMs } from '../lib/stats.js';

type StartArgs = LibArgs;
interface ConnectArgs extends StartArgs {
  url: string;
}
interface SendArgs {
  count: number;
  timeoutMs: number;
}
interface ReceiveArgs {
  /** Wait until this many messages have arrived since start (cumulative). */
  total: number;
  timeoutMs: number;
}
interface Sent {
  startedAt: number;
}
interface Received {
  lastAt: number;
  received: number;
}

// ---- child side ----

let server: BenchServer | undefined;
let session: BenchSession | undefined;
let client: BenchClient | undefined;
let received = 0;
let lastAt = 0;
let payload = '';

const count = () => {
  received++;
  lastAt = sharedClockMs();
};

const serverStart = defineRole<StartArgs, { url: string }>('throughput.server.start', async (a) => {
  payload = 'x'.repeat(a.payloadBytes);
  server = await startServer(a.lib, a);
  server.onSession((s) => {
    session ??= s;
    s.onMessage(count);
  });
  return { url: server.url };
});

const serverSend = defineRole<SendArgs, Sent>('throughput.server.send', async (a) => {
  const deadline = performance.now() + a.timeoutMs;
  await until(() => session !== undefined, deadline, 'the session');
  const startedAt = sharedClockMs();
  await pump(started(session, 'the session'), a.count, () => payload, deadline);
  return { startedAt };
});

const serverReceive = defineRole<ReceiveArgs, Received>('throughput.server.receive', async (a) => {
  await until(() => received >= a.total, performance.now() + a.timeoutMs, `${a.total} messages (got ${received})`, 2);
  return { lastAt, received };
});

const clientConnect = defineRole<ConnectArgs, null>('throughput.client.connect', async (a) => {
  payload = 'x'.repeat(a.payloadBytes);
  client = await connectClient(a.lib, a.url, { ...a, reconnect: false });
  client.onMessage(count);
  return null;
});

const clientSend = defineRole<SendArgs, Sent>('throughput.client.send', async (a) => {
  if (!client) throw new Error('not connected');
  const startedAt = sharedClockMs();
  await pump(client, a.count, () => payload, performance.now() + a.timeoutMs);
  return { startedAt };
});

const clientReceive = defineRole<ReceiveArgs, Received>('throughput.client.receive', async (a) => {
  await until(() => received >= a.total, performance.now() + a.timeoutMs, `${a.total} messages (got ${received})`, 2);
  return { lastAt, received };
});

const errorsRole = defineRole<Record<string, never>, string[]>('throughput.errors', () => [...(server?.errors ?? []), ...(client?.errors ?? [])]);

// ---- parent side ----

export interface DirectionResult {
  messages: number;
  durationMs: number;
  msgPerSec: number;
  mbPerSec: number;
  serverCpuPct: number;
  clientCpuPct: number;
}

export interface ThroughputResult {
  /** The median run of each direction (by msg/s). */
  s2c: DirectionResult;
  c2s: DirectionResult;
  /** msg/s of every run, in order. */
  runs: { s2c: number[]; c2s: number[] };
  errors: string[];
}

function median(runs: DirectionResult[]): DirectionResult {
  return medianBy(runs, (r) => r.msgPerSec);
}

async function direction(
  cfg: BenchConfig,
  srv: Agent,
  cli: Agent,
  dir: 's2c' | 'c2s',
  count: number,
  already: number,
  timeoutMs: number,
): Promise<DirectionResult> {
  const [sender, receiver] = dir === 's2c' ? [srv, cli] : [cli, srv];
  const [sendRole, receiveRole] = dir === 's2c' ? [serverSend, clientReceive] : [clientSend, serverReceive];
  const { value, cpu } = await withCpu([srv, cli], async () => {
    const got = receiver.call(receiveRole, { total: already + count, timeoutMs }, timeoutMs + 5_000);
    const sent = await sender.call(sendRole, { count, timeoutMs }, timeoutMs + 5_000);
    return { sent, got: await got };
  });
  const durationMs = value.got.lastAt - value.sent.startedAt;
  return {
    messages: count,
    durationMs: round(durationMs, 1),
    msgPerSec: Math.round((count / durationMs) * 1000),
    mbPerSec: round((count * cfg.payloadBytes) / durationMs / 1000, 2),
    serverCpuPct: cpu[0].cpuPct,
    clientCpuPct: cpu[1].cpuPct,
  };
}

/** Options of one run beyond the config: the server's store, the transport (default polling), and the counts (default cfg.throughput's). */
export interface RunOptions {
  store?: StoreSpec | undefined;
  transport?: BenchTransport | undefined;
  messages?: number;
  warmup?: number;
}

/** One run: fresh processes, an unmeasured warm-up of both directions, then one measured run of each. */
export function runOnce(cfg: BenchConfig, lib: AnyLib, timeoutMs: number, options: RunOptions = {}): Promise<{ s2c: DirectionResult; c2s: DirectionResult; errors: string[] }> {
  const { messages = cfg.throughput.messages, warmup = cfg.throughput.warmup, store, transport } = options;
  return withAgents([{ name: 'server' }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(serverStart, { lib, window: cfg.window, payloadBytes: cfg.payloadBytes, store, transport }, 10_000);
    await cli.call(clientConnect, { lib, url, window: cfg.window, payloadBytes: cfg.payloadBytes, transport }, 10_000);
    // Warm up both directions (JIT, connection pools), unmeasured.
    await direction(cfg, srv, cli, 's2c', warmup, 0, timeoutMs);
    await direction(cfg, srv, cli, 'c2s', warmup, 0, timeoutMs);
    // Receivers count cumulatively: the warm-up, then this run.
    const s2c = await direction(cfg, srv, cli, 's2c', messages, warmup, timeoutMs);
    const c2s = await direction(cfg, srv, cli, 'c2s', messages, warmup, timeoutMs);
    const errors = [...(await srv.call(errorsRole, {}, 5_000)), ...(await cli.call(errorsRole, {}, 5_000))];
    return { s2c, c2s, errors };
  });
}

export async function runThroughput(cfg: BenchConfig): Promise<PerLib<ThroughputResult>> {
  const { repeat } = cfg.throughput;
  const timeoutMs = cfg.smoke ? 20_000 : 120_000;
  // Each run in fresh processes.
  const runs = await inTurns(cfg.libs, repeat, 'throughput', (lib) => runOnce(cfg, lib, timeoutMs));
  const out: PerLib<ThroughputResult> = {};
  for (const [lib, outcomes] of runs) {
    const ok = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
    // Every run must succeed: a failed one would leave a median of fewer.
    const failed = outcomes.find((o) => !o.ok);
    if (failed || ok.length === 0) {
      out[lib] = failed ?? { ok: false, error: 'not run' };
      continue;
    }
    out[lib] = {
      ok: true,
      value: {
        s2c: median(ok.map((v) => v.s2c)),
        c2s: median(ok.map((v) => v.c2s)),
        runs: { s2c: ok.map((v) => v.s2c.msgPerSec), c2s: ok.map((v) => v.c2s.msgPerSec) },
        errors: ok.flatMap((v) => v.errors),
      },
    };
  }
  return out;
}
