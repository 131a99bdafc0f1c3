/**
 * Workload 5: what this machine does without either library, as a yardstick.
 * - Raw node:http keep-alive round trip: one POST of a payload answered with
 *   a payload, on one kept-alive connection (client and server in separate
 *   processes). Measured two ways: back to back (hot), and paced one every
 *   latency.intervalMs like the echo test (both processes idle between
 *   round trips, as in the echo test; the echo target compares with this).
 *   With undici's request API too, which Holdline's Node client uses, both
 *   ways: paced, it is what a Node client on undici pays per request
 *   before any library code (undici checks a kept-alive socket that sat
 *   idle before it writes on it: one event-loop turn).
 * - Raw ws one-way message rate: the server sends `wsMessages` payloads to
 *   one client, at most `window` unconfirmed at a time.
 */
import http from 'node:http';
import { Agent as UndiciAgent, request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import type { BenchConfig } from '../lib/config.js';
import { withAgents } from '../lib/harness.js';
import { attempt, withCpu, type Outcome } from '../lib/measure.js';
import { listenLocal } from '../lib/adapters/types.js';
import { defineRole } from '../lib/roles.js';
import { round, roundedSummary, sharedClockMs, timedRounds, type LatencySummary } from '../lib/stats.js';

interface RttArgs {
  url: string;
  count: number;
  warmup: number;
  payloadBytes: number;
  /** Pause between round trips, ms (0: back to back). */
  gapMs: number;
}

// ---- child side ----

const httpStart = defineRole<{ payloadBytes: number }, { url: string }>('baseline.http.start', async (a) => {
  const body = 'x'.repeat(a.payloadBytes);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
    });
  });
  return { url: await listenLocal(server) };
});

const httpRtt = defineRole<RttArgs, LatencySummary>('baseline.http.rtt', async (a) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = 'x'.repeat(a.payloadBytes);
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(a.url, { method: 'POST', agent, headers: { 'Content-Type': 'text/plain', 'Content-Length': body.length } }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const summary = await timedRounds(a.count, a.warmup, a.gapMs, once);
  agent.destroy();
  return summary;
});

const undiciRtt = defineRole<RttArgs, LatencySummary>('baseline.undici.rtt', async (a) => {
  const dispatcher = new UndiciAgent({ connections: 1 });
  const body = 'x'.repeat(a.payloadBytes);
  const summary = await timedRounds(a.count, a.warmup, a.gapMs, async () => {
    const res = await request(a.url, { method: 'POST', body, headers: { 'content-type': 'text/plain' }, dispatcher });
    await res.body.text();
  });
  await dispatcher.close();
  return summary;
});

interface WsArgs {
  count: number;
  window: number;
  payloadBytes: number;
}

/** A ws server that, once a client says "go", sends `count` payloads then "end". */
const wsStart = defineRole<WsArgs, { url: string }>('baseline.ws.start', async (a) => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const payload = 'x'.repeat(a.payloadBytes);
  wss.on('connection', (ws) => {
    const sendAll = async () => {
      for (let i = 0; i < a.count; i++) {
        // Every `window` messages, wait until the previous ones reached the socket.
        if ((i + 1) % a.window === 0) await new Promise<void>((resolve) => ws.send(payload, () => resolve()));
        else ws.send(payload);
      }
    };
    // A send that throws ends the connection: the client's count then falls short, and says so.
    ws.once('message', () => void sendAll().catch(() => ws.terminate()));
  });
  const url = await listenLocal(server);
  return { url: url.replace('http:', 'ws:') };
});

const wsReceive = defineRole<{ url: string; count: number; timeoutMs: number }, { durationMs: number }>('baseline.ws.receive', (a) => {
  const ws = new WebSocket(a.url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    let got = 0;
    let started = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`ws: ${got} of ${a.count} messages within ${a.timeoutMs} ms`));
    }, a.timeoutMs);
    ws.on('error', reject);
    ws.on('open', () => {
      started = sharedClockMs();
      ws.send('go');
    });
    ws.on('message', () => {
      if (++got < a.count) return;
      clearTimeout(timer);
      ws.terminate();
      resolve({ durationMs: sharedClockMs() - started });
    });
  });
});

// ---- parent side ----

export interface BaselineResult {
  /** Paced like the echo test: the yardstick for Holdline's echo RTT. */
  httpRtt: LatencySummary;
  /** Back to back. */
  httpRttHot: LatencySummary;
  undiciRtt: LatencySummary;
  /** undici, paced like the echo test. */
  undiciRttPaced: LatencySummary;
  ws: { messages: number; durationMs: number; msgPerSec: number; serverCpuPct: number; clientCpuPct: number };
}

async function measure(cfg: BenchConfig): Promise<BaselineResult> {
  const { requests, paced, wsMessages } = cfg.baseline;
  return withAgents([{ name: 'server' }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(httpStart, { payloadBytes: cfg.payloadBytes }, 10_000);
    const hot = { url, count: requests, warmup: Math.ceil(requests / 10), payloadBytes: cfg.payloadBytes, gapMs: 0 };
    const gapMs = cfg.latency.intervalMs;
    const pacedArgs = { ...hot, count: paced, warmup: Math.ceil(paced / 10), gapMs };
    const pacedSummary = await cli.call(httpRtt, pacedArgs, paced * (gapMs + 5) * 1.2 + 30_000);
    const hotSummary = await cli.call(httpRtt, hot, 120_000);
    const undiciSummary = await cli.call(undiciRtt, hot, 120_000);
    const undiciPaced = await cli.call(undiciRtt, pacedArgs, paced * (gapMs + 5) * 1.2 + 30_000);
    const ws = await srv.call(wsStart, { count: wsMessages, window: cfg.window, payloadBytes: cfg.payloadBytes }, 10_000);
    const timeoutMs = cfg.smoke ? 20_000 : 120_000;
    const { value, cpu } = await withCpu([srv, cli], () => cli.call(wsReceive, { url: ws.url, count: wsMessages, timeoutMs }, timeoutMs + 5_000));
    return {
      httpRtt: roundedSummary(pacedSummary),
      httpRttHot: roundedSummary(hotSummary),
      undiciRtt: roundedSummary(undiciSummary),
      undiciRttPaced: roundedSummary(undiciPaced),
      ws: {
        messages: wsMessages,
        durationMs: round(value.durationMs, 1),
        msgPerSec: Math.round((wsMessages / value.durationMs) * 1000),
        serverCpuPct: cpu[0].cpuPct,
        clientCpuPct: cpu[1].cpuPct,
      },
    };
  });
}

export function runBaseline(cfg: BenchConfig): Promise<Outcome<BaselineResult>> {
  return attempt('baseline (node:http, undici, ws)', () => measure(cfg));
}
