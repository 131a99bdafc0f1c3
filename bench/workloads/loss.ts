/**
 * Workload 4: delivery under faults. The client reaches the server through
 * the fault-injection proxy (test/helpers/fault-proxy.ts, run in the parent
 * process), which kills `killRate` of the HTTP exchanges at a random point
 * (mid-request, before the response, mid-response, right after it).
 * `s2c` numbered messages go server-to-client and `c2s` client-to-server at
 * the same time; each receiver counts what arrives: lost, duplicated, out of
 * order.
 *
 * Engine.IO drops its session when a poll fails; its client adapter then
 * opens a new session (reconnect: true) and the server's sender carries on
 * with the newest session, so the counts cover everything that arrived.
 * Engine.IO's ping is shortened to 500 ms here (see AdapterOptions).
 */
import { startFaultProxy, type FaultProxyStats } from '../../test/helpers/fault-proxy.js';
import { connectClient, startServer, type BenchClient, type BenchServer, type BenchSession, type LibArgs } from '../lib/adapters/index.js';
import type { BenchConfig } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { perLib, type PerLib } from '../lib/measure.js';
import { until } from '../lib/pump.js';
import { defineRole, started } from '../lib/roles.js';
import { SequenceChecker, headOf, padded, sleep, type SequenceReport } from '../lib/stats.js';

interface StartArgs extends LibArgs {
  /** Messages this end will receive. */
  expect: number;
}
interface ConnectArgs extends StartArgs {
  url: string;
}
interface SendArgs {
  count: number;
  payloadBytes: number;
  timeoutMs: number;
}
interface Report {
  stream: SequenceReport;
  /** Sessions seen by the server / opened after the first by the client. */
  sessions: number;
  retries: number;
  sendDone: boolean;
  sendError: string | undefined;
  errors: string[];
}

// ---- child side (one end per process) ----

let server: BenchServer | undefined;
let current: BenchSession | undefined;
let sessions = 0;
/** Resolved (and replaced) whenever a new session opens. */
let newSession = signal();

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
let client: BenchClient | undefined;
let inbound = new SequenceChecker(0);
let sendDone = false;
let sendError: string | undefined;

const record = (d: string) => inbound.record(Number(headOf(d)));

function startSending(send: () => Promise<unknown>): void {
  send().then(
    () => {
      sendDone = true;
    },
    (e: unknown) => {
      sendDone = true;
      sendError = e instanceof Error ? e.message : String(e);
    },
  );
}

const serverStart = defineRole<StartArgs, { port: number }>('loss.server.start', async (a) => {
  inbound = new SequenceChecker(a.expect);
  server = await startServer(a.lib, a);
  server.onSession((s) => {
    sessions++;
    current = s; // the newest session is the client's
    s.onMessage(record);
    newSession.resolve();
    newSession = signal();
  });
  return { port: Number(new URL(server.url).port) };
});

/** Starts sending and returns at once; progress is read with loss.server.report. */
const serverSend = defineRole<SendArgs, null>('loss.server.send', (a) => {
  startSending(async () => {
    const deadline = performance.now() + a.timeoutMs;
    for (let i = 0; i < a.count; i++) {
      // Between sessions (Engine.IO after a failure): wait for the next one.
      await until(() => current?.open === true, deadline, 'an open session', 10);
      const wait = started(current, 'the session').send(padded(String(i), a.payloadBytes));
      // A full window on a session the client has left (Engine.IO notices only
      // at its ping timeout) must not hold up the new session.
      if (wait) await Promise.race([wait, newSession.promise]);
    }
  });
  return null;
});

const serverReport = defineRole<Record<string, never>, Report>('loss.server.report', () => ({
  stream: inbound.report(),
  sessions,
  retries: 0,
  sendDone,
  sendError,
  errors: server?.errors ?? [],
}));

const clientConnect = defineRole<ConnectArgs, null>('loss.client.connect', async (a) => {
  inbound = new SequenceChecker(a.expect);
  // The open itself may be killed by the proxy: try again, a bounded number of times.
  for (let attempt = 1; !client; attempt++) {
    try {
      client = await connectClient(a.lib, a.url, { ...a, reconnect: true });
    } catch (e) {
      if (attempt >= 20) throw e;
      await sleep(100);
    }
  }
  client.onMessage(record);
  return null;
});

const clientSend = defineRole<SendArgs, null>('loss.client.send', (a) => {
  const c = started(client, 'the client');
  startSending(async () => {
    const deadline = performance.now() + a.timeoutMs;
    for (let i = 0; i < a.count; i++) {
      const wait = c.send(padded(String(i), a.payloadBytes));
      if (wait) await wait;
      if (performance.now() > deadline) throw new Error(`sending timed out after ${i + 1} messages`);
    }
  });
  return null;
});

const clientReport = defineRole<Record<string, never>, Report>('loss.client.report', () => ({
  stream: inbound.report(),
  sessions: 1 + (client?.newSessions ?? 0),
  retries: client?.retries ?? 0,
  sendDone,
  sendError,
  errors: client?.errors ?? [],
}));

// ---- parent side ----

export interface LossResult {
  s2c: SequenceReport;
  c2s: SequenceReport;
  /** lost + duplicated + out of order, both directions. */
  faultsSeen: number;
  sessions: number;
  clientRetries: number;
  durationMs: number;
  /** The proxy's counters; faultsDecided counts exchanges drawn for a fault (faults.total those executed). */
  proxy: FaultProxyStats & { faultsDecided: number; seed: number; killRate: number };
  notes: string[];
}

export function runLoss(cfg: BenchConfig): Promise<PerLib<LossResult>> {
  const { s2c, c2s, killRate, seed, timeoutMs, window } = cfg.loss;
  const quietMs = cfg.smoke ? 1_000 : 10_000;
  return perLib(cfg.libs, 'loss', (lib) =>
    withAgents([{ name: 'server' }, { name: 'client' }], async ([srv, cli]) => {
      const common = { lib, window, payloadBytes: cfg.payloadBytes };
      const { port } = await srv.call(serverStart, { ...common, expect: c2s, engineIoPingMs: 500 }, 10_000);
      // Count decisions here: the proxy's own `requests` counter only advances
      // when an onDecision callback is given.
      const decided = { requests: 0, faulted: 0 };
      const proxy = await startFaultProxy({
        target: { host: '127.0.0.1', port },
        killRate,
        seed,
        onDecision: (d) => {
          decided.requests++;
          if (d.fault !== null) decided.faulted++;
        },
      });
      try {
        const started = performance.now();
        await cli.call(clientConnect, { ...common, url: proxy.url, expect: s2c }, 60_000);
        await srv.call(serverSend, { count: s2c, payloadBytes: cfg.payloadBytes, timeoutMs }, 5_000);
        await cli.call(clientSend, { count: c2s, payloadBytes: cfg.payloadBytes, timeoutMs }, 5_000);
        // Until both streams are complete, or nothing has moved for quietMs
        // after both senders finished, or the deadline.
        let last = -1;
        let lastChange = performance.now();
        let server: Report;
        let client: Report;
        for (;;) {
          [server, client] = await Promise.all([srv.call(serverReport, {}, 5_000), cli.call(clientReport, {}, 5_000)]);
          const now = performance.now();
          const progress = server.stream.received + client.stream.received;
          if (progress !== last) [last, lastChange] = [progress, now];
          const complete = server.stream.received === c2s && client.stream.received === s2c;
          const stalled = server.sendDone && client.sendDone && now - lastChange > quietMs;
          if (complete || stalled || now - started > timeoutMs) break;
          await sleep(100);
        }
        const notes = [...new Set([server.sendError, client.sendError].filter((e): e is string => e !== undefined))];
        notes.push(...new Set([...client.errors, ...server.errors].map((e) => e.slice(0, 160))));
        const faultsSeen = [client.stream, server.stream].reduce((n, r) => n + r.lost + r.duplicated + r.outOfOrder + r.invalid, 0);
        return {
          s2c: client.stream,
          c2s: server.stream,
          faultsSeen,
          sessions: server.sessions,
          clientRetries: client.retries,
          durationMs: Math.round(performance.now() - started),
          proxy: { ...proxy.stats, requests: decided.requests, faultsDecided: decided.faulted, seed: proxy.seed, killRate },
          notes: notes.slice(0, 12),
        };
      } finally {
        await proxy.close();
      }
    }),
  );
}
