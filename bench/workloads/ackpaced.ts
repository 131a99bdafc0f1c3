/**
 * Ack-paced throughput (Holdline only): a sender that paces itself by the
 * receiver's acknowledgements, as an application using the library's flow
 * control does, against the unpaced sender of the throughput workload,
 * measured in the same processes, in turns.
 *
 * - Ack-paced, server to client: the server awaits every `session.send()` on
 *   a HoldlineServer whose maxQueuedBytes holds `window` messages (each is
 *   counted with 64 bytes of overhead: window × (payload + 64) bytes), so
 *   send() waits whenever `window` messages are unacknowledged.
 * - Ack-paced, client to server: the client awaits every `client.send()` on a
 *   HoldlineClient whose maxBufferedBytes holds `window` messages (the
 *   client counts payload bytes only: window × payload).
 * - Unpaced: the throughput workload's sender (lib/adapters/holdline.ts,
 *   default options): it sends without awaiting and waits only while
 *   `window` messages are not yet written to the network.
 *
 * Time runs from the sender's first send to the receiver's last message on
 * the shared clock. The paced sender also records the most bytes it ever had
 * unacknowledged, to show the window was what held it back.
 */
import http from 'node:http';
import { connectClient, listenLocal, startServer, type BenchClient, type BenchServer, type BenchSession } from '../lib/adapters/index.js';
import { POLLING_ONLY } from '../lib/adapters/holdline.js';
import type { BenchConfig } from '../lib/config.js';
import { withAgents, type Agent } from '../lib/harness.js';
import { loadHoldline, type HoldlineClient, type HoldlineServer, type Session } from '../lib/holdline-dist.js';
import { attempt, type Outcome } from '../lib/measure.js';
import { pump, until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { round, sharedClockMs } from '../lib/stats.js';

/** Bytes the server counts per message on top of its payload (server/session-send.ts MESSAGE_OVERHEAD). */
export const SERVER_MESSAGE_OVERHEAD = 64;
const PATH = '/holdline';

type Mode = 'paced' | 'unpaced';

interface StartArgs {
  window: number;
  payloadBytes: number;
}
interface Started {
  /** Origin of the unpaced server (the adapter adds its path). */
  unpacedUrl: string;
  /** Endpoint of the paced server. */
  pacedEndpoint: string;
  maxQueuedBytes: number;
}
interface ConnectArgs extends StartArgs {
  unpacedUrl: string;
  pacedEndpoint: string;
}
interface SendArgs {
  mode: Mode;
  count: number;
  timeoutMs: number;
}
interface Sent {
  startedAt: number;
  /** Paced only: the most payload bytes the sender had unacknowledged (bufferedAmount) after a send. */
  maxUnackedBytes: number;
}
interface ReceiveArgs {
  mode: Mode;
  /** Wait until this many messages of `mode` have arrived since start (cumulative). */
  total: number;
  timeoutMs: number;
}
interface Received {
  lastAt: number;
  received: number;
}

// ---- child side ----

let payload = '';
let unpacedServer: BenchServer | undefined;
let unpacedSession: BenchSession | undefined;
let pacedServer: HoldlineServer | undefined;
let pacedHttp: http.Server | undefined;
let pacedSession: Session | undefined;
let unpacedClient: BenchClient | undefined;
let pacedClient: HoldlineClient | undefined;
const errors: string[] = [];
const received: Record<Mode, number> = { paced: 0, unpaced: 0 };
const lastAt: Record<Mode, number> = { paced: 0, unpaced: 0 };

function counter(mode: Mode): () => void {
  return () => {
    received[mode]++;
    lastAt[mode] = sharedClockMs();
  };
}

function noteError(e: unknown): void {
  if (errors.length < 20) errors.push(e instanceof Error ? `${(e as { code?: unknown }).code ?? e.name}: ${e.message}` : String(e));
}

const serverStart = defineRole<StartArgs, Started>('ackpaced.server.start', async (a) => {
  payload = 'x'.repeat(a.payloadBytes);
  unpacedServer = await startServer('holdline', { window: a.window, payloadBytes: a.payloadBytes });
  unpacedServer.onSession((s) => {
    unpacedSession ??= s;
    s.onMessage(counter('unpaced'));
  });
  const { HoldlineServer } = await loadHoldline();
  const maxQueuedBytes = a.window * (a.payloadBytes + SERVER_MESSAGE_OVERHEAD);
  // maxQueuedBytes must be at least maxMessageBytes (default 1 MiB): lowered to fit.
  pacedServer = new HoldlineServer({ maxQueuedBytes, maxMessageBytes: Math.min(maxQueuedBytes, 64 * 1024) });
  pacedServer.on('error', noteError);
  pacedServer.on('session', (s) => {
    pacedSession ??= s;
    s.on('message', counter('paced'));
  });
  pacedHttp = http.createServer();
  pacedServer.attach(pacedHttp, { path: PATH });
  const origin = await listenLocal(pacedHttp);
  return { unpacedUrl: unpacedServer.url, pacedEndpoint: origin + PATH, maxQueuedBytes };
});

const clientConnect = defineRole<ConnectArgs, { maxBufferedBytes: number }>('ackpaced.client.connect', async (a) => {
  payload = 'x'.repeat(a.payloadBytes);
  unpacedClient = await connectClient('holdline', a.unpacedUrl, { window: a.window, payloadBytes: a.payloadBytes, reconnect: false });
  unpacedClient.onMessage(counter('unpaced'));
  const { HoldlineClient } = await loadHoldline();
  const maxBufferedBytes = a.window * a.payloadBytes;
  pacedClient = new HoldlineClient(a.pacedEndpoint, { maxBufferedBytes, transports: POLLING_ONLY });
  pacedClient.on('error', noteError);
  pacedClient.on('message', counter('paced'));
  await pacedClient.connect();
  return { maxBufferedBytes };
});

/** Await every send; `unacked()` is read after each, to record the most the window let through. */
async function pacedLoop(send: () => Promise<void>, unacked: () => number, count: number, deadline: number): Promise<number> {
  let most = 0;
  for (let i = 0; i < count; i++) {
    await send();
    const u = unacked();
    if (u > most) most = u;
    if ((i & 1023) === 1023 && performance.now() > deadline) throw new Error(`ack-paced sending timed out after ${i + 1} of ${count} messages`);
  }
  return most;
}

const serverSend = defineRole<SendArgs, Sent>('ackpaced.server.send', async (a) => {
  const deadline = performance.now() + a.timeoutMs;
  if (a.mode === 'unpaced') {
    await until(() => unpacedSession !== undefined, deadline, 'the unpaced session');
    const startedAt = sharedClockMs();
    await pump(started(unpacedSession, 'the unpaced session'), a.count, () => payload, deadline);
    return { startedAt, maxUnackedBytes: 0 };
  }
  await until(() => pacedSession !== undefined, deadline, 'the paced session');
  const s = started(pacedSession, 'the paced session');
  const startedAt = sharedClockMs();
  const maxUnackedBytes = await pacedLoop(() => s.send(payload), () => s.bufferedAmount, a.count, deadline);
  return { startedAt, maxUnackedBytes };
});

const clientSend = defineRole<SendArgs, Sent>('ackpaced.client.send', async (a) => {
  const deadline = performance.now() + a.timeoutMs;
  const startedAt = sharedClockMs();
  if (a.mode === 'unpaced') {
    await pump(started(unpacedClient, 'the unpaced client'), a.count, () => payload, deadline);
    return { startedAt, maxUnackedBytes: 0 };
  }
  const c = started(pacedClient, 'the paced client');
  const maxUnackedBytes = await pacedLoop(() => c.send(payload), () => c.bufferedAmount, a.count, deadline);
  return { startedAt, maxUnackedBytes };
});

const receive = defineRole<ReceiveArgs, Received>('ackpaced.receive', async (a) => {
  await until(() => received[a.mode] >= a.total, performance.now() + a.timeoutMs, `${a.total} ${a.mode} messages (got ${received[a.mode]})`, 2);
  return { lastAt: lastAt[a.mode], received: received[a.mode] };
});

const errorsRole = defineRole<Record<string, never>, string[]>('ackpaced.errors', () => [...errors, ...(unpacedServer?.errors ?? []), ...(unpacedClient?.errors ?? [])]);

// ---- parent side ----

export interface AckPacedDirection {
  /** msg/s of the median run of each sender. */
  unpacedMsgPerSec: number;
  pacedMsgPerSec: number;
  /** paced / unpaced */
  ratio: number;
  runs: { unpaced: number[]; paced: number[] };
  /** The most messages the paced sender had unacknowledged at once (payload bytes / message size). */
  pacedMaxUnacked: number;
}

export interface AckPacedResult {
  /** Messages per measured run, each direction and sender. */
  messages: number;
  /** The paced window, in messages, and as the two ends were configured. */
  window: number;
  serverMaxQueuedBytes: number;
  clientMaxBufferedBytes: number;
  s2c: AckPacedDirection;
  c2s: AckPacedDirection;
  errors: string[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1] ?? NaN;
}

/** Totals each receiver has counted so far, per direction and mode (receivers count cumulatively). */
type Totals = Record<'s2c' | 'c2s', Record<Mode, number>>;

async function measure(srv: Agent, cli: Agent, totals: Totals, dir: 's2c' | 'c2s', mode: Mode, count: number, timeoutMs: number): Promise<{ msgPerSec: number; maxUnackedBytes: number }> {
  const [sender, receiver] = dir === 's2c' ? [srv, cli] : [cli, srv];
  const sendRole = dir === 's2c' ? serverSend : clientSend;
  totals[dir][mode] += count;
  const got = receiver.call(receive, { mode, total: totals[dir][mode], timeoutMs }, timeoutMs + 5_000);
  const sent = await sender.call(sendRole, { mode, count, timeoutMs }, timeoutMs + 5_000);
  const r = await got;
  const durationMs = r.lastAt - sent.startedAt;
  return { msgPerSec: Math.round((count / durationMs) * 1000), maxUnackedBytes: sent.maxUnackedBytes };
}

export async function runAckPaced(cfg: BenchConfig): Promise<Outcome<AckPacedResult>> {
  const { messages, warmup, repeat } = cfg.ackpaced;
  const timeoutMs = cfg.smoke ? 20_000 : 120_000;
  return attempt('ack-paced / holdline', () =>
    withAgents([{ name: 'server' }, { name: 'client' }], async ([srv, cli]) => {
      const args = { window: cfg.window, payloadBytes: cfg.payloadBytes };
      const st = await srv.call(serverStart, args, 10_000);
      const { maxBufferedBytes } = await cli.call(clientConnect, { ...args, unpacedUrl: st.unpacedUrl, pacedEndpoint: st.pacedEndpoint }, 10_000);
      const totals: Totals = { s2c: { paced: 0, unpaced: 0 }, c2s: { paced: 0, unpaced: 0 } };
      // Warm-up of every direction and sender (JIT, connections), unmeasured.
      for (const dir of ['s2c', 'c2s'] as const) for (const mode of ['unpaced', 'paced'] as const) await measure(srv, cli, totals, dir, mode, warmup, timeoutMs);
      const runs: Record<'s2c' | 'c2s', { unpaced: number[]; paced: number[]; maxUnacked: number }> = {
        s2c: { unpaced: [], paced: [], maxUnacked: 0 },
        c2s: { unpaced: [], paced: [], maxUnacked: 0 },
      };
      for (let r = 0; r < repeat; r++) {
        // The two senders take turns, and which goes first alternates run by run.
        const order: Mode[] = r % 2 === 0 ? ['unpaced', 'paced'] : ['paced', 'unpaced'];
        for (const dir of ['s2c', 'c2s'] as const) {
          for (const mode of order) {
            const m = await measure(srv, cli, totals, dir, mode, messages, timeoutMs);
            runs[dir][mode].push(m.msgPerSec);
            if (mode === 'paced') runs[dir].maxUnacked = Math.max(runs[dir].maxUnacked, m.maxUnackedBytes);
          }
        }
      }
      const direction = (dir: 's2c' | 'c2s'): AckPacedDirection => {
        const d = runs[dir];
        const unpaced = median(d.unpaced);
        const paced = median(d.paced);
        return {
          unpacedMsgPerSec: unpaced,
          pacedMsgPerSec: paced,
          ratio: round(paced / unpaced, 3),
          runs: { unpaced: d.unpaced, paced: d.paced },
          pacedMaxUnacked: Math.round(d.maxUnacked / cfg.payloadBytes),
        };
      };
      const errs = [...(await srv.call(errorsRole, {}, 5_000)), ...(await cli.call(errorsRole, {}, 5_000))];
      return {
        messages,
        window: cfg.window,
        serverMaxQueuedBytes: st.maxQueuedBytes,
        clientMaxBufferedBytes: maxBufferedBytes,
        s2c: direction('s2c'),
        c2s: direction('c2s'),
        errors: errs,
      };
    }),
  );
}
