/**
 * Server heap per idle session, against the same figure for a bare node:http
 * server: what test/idle-heap-budget.test.ts checks (the fan-out workload
 * measures the same thing with real clients, at its sizes).
 *
 * A server child (node --expose-gc) and a client child. The client opens
 * sessions with raw HTTP requests, one undici Client (one connection) per
 * session: POST /open, then POST /poll on the same connection, which the
 * server holds. So each session is, on the server, exactly one connection
 * with one held request, as a real idle client's session is (its poll).
 * The floor is a bare node:http server that answers /open with a small JSON
 * body and holds /poll, with the same clients doing the same requests: the
 * difference is what Holdline itself keeps per idle session.
 *
 * Heap is measured after full collections (the `memory` role): once after
 * `warmup` sessions (so one-time costs, compiled code and lazily made tables,
 * are not counted), and again after `sessions` more, all idle. Per session is
 * the growth divided by `sessions`.
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { Client } from 'undici';
import { listenLocal, pushError } from '../lib/adapters/index.js';
import { withAgents, type Agent } from '../lib/harness.js';
import { loadHoldline } from '../lib/holdline-dist.js';
import { until } from '../lib/pump.js';
import { defineRole } from '../lib/roles.js';
import { sleep } from '../lib/stats.js';

export type IdleServerKind = 'holdline' | 'node:http';
const BASE = '/holdline';

// ---- server child ----

let polls = 0;
const errors: string[] = [];
/** Held floor responses (kept so that they stay open). */
const held: http.ServerResponse[] = [];

const serverStart = defineRole<{ kind: IdleServerKind }, { url: string }>('idle.server.start', async ({ kind }) => {
  let server: http.Server;
  if (kind === 'holdline') {
    const { HoldlineServer } = await loadHoldline();
    // Default options, but for the longest hold: no poll may end (and be
    // replaced) before the reading, however slow a busy machine makes the run.
    // How long a poll is held changes nothing a session keeps.
    const hl = new HoldlineServer({ pollTimeoutMs: 120_000 });
    hl.on('error', (e) => pushError(errors, e));
    server = http.createServer();
    hl.attach(server, { path: BASE });
  } else {
    server = http.createServer((req, res) => {
      if (req.url === `${BASE}/open`) {
        req.resume();
        req.on('end', () => {
          const body = JSON.stringify({ v: 1, sid: 'floor', token: 'floor' });
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
        });
      } else {
        req.resume();
        held.push(res); // held, never answered: an idle long poll and nothing else
      }
    });
  }
  // Polls are counted through the diagnostics channel: nothing kept per request.
  diagnostics.subscribe('http.server.request.start', (msg) => {
    const req = (msg as { request?: http.IncomingMessage }).request;
    if (req?.url === `${BASE}/poll`) polls++;
  });
  return { url: await listenLocal(server) };
});

const serverPolls = defineRole<{ count: number; timeoutMs: number }, { polls: number; errors: string[] }>('idle.server.polls', async (a) => {
  await until(() => polls >= a.count, performance.now() + a.timeoutMs, `${a.count} polls`, 20);
  return { polls, errors };
});

// ---- client child ----

const clients: Client[] = [];
/** Polls answered so far: none should be before the reading (every one is held). */
let answered = 0;

async function openSession(url: string, n: number): Promise<void> {
  const client = new Client(url, { pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
  clients.push(client);
  const headers = { 'content-type': 'text/plain;charset=UTF-8' };
  const attempt = `idle-heap-${process.pid}-${n}`;
  const open = await client.request({ method: 'POST', path: `${BASE}/open`, headers, body: JSON.stringify({ v: 1, attempt }) });
  if (open.statusCode !== 200) throw new Error(`open: HTTP ${open.statusCode}: ${await open.body.text()}`);
  const { sid, token } = (await open.body.json()) as { sid: string; token: string };
  // Held by the server: not awaited. An answer (there should be none while measuring) is counted.
  client.request({ method: 'POST', path: `${BASE}/poll`, headers, body: JSON.stringify({ sid, token, ack: 0, hold: 120_000 }) }).then(
    (r) => {
      answered++;
      return r.body.dump();
    },
    () => {
      answered++;
    },
  );
}

let opened = 0;
const clientOpen = defineRole<{ url: string; count: number; concurrency: number }, number>('idle.clients.open', async (a) => {
  let next = 0;
  const worker = async () => {
    while (next < a.count) {
      next++;
      await openSession(a.url, opened++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, a.count) }, worker));
  return clients.length;
});

const clientAnswered = defineRole<Record<string, never>, number>('idle.clients.answered', () => answered);

// ---- parent side ----

export interface IdleHeap {
  kind: IdleServerKind;
  sessions: number;
  /** Server heap growth per idle session after full collections, bytes. */
  heapPerSession: number;
  heapBefore: number;
  heapIdle: number;
  errors: string[];
}

export interface IdleHeapOptions {
  /** Sessions measured. */
  sessions: number;
  /** Sessions opened (and held) before the first reading. */
  warmup: number;
  /** Time for the last polls to be parsed and held before the reading, ms. */
  settleMs: number;
}

async function open(srv: Agent, cli: Agent, url: string, count: number, total: number): Promise<void> {
  const timeoutMs = 30_000 + count * 10;
  await cli.call(clientOpen, { url, count, concurrency: 50 }, timeoutMs);
  const { errors } = await srv.call(serverPolls, { count: total, timeoutMs: 10_000 }, 15_000);
  if (errors.length > 0) throw new Error(`the server reported errors: ${errors.join('; ')}`);
}

/** Heap per idle session on one kind of server, in fresh child processes. */
export async function measureIdleHeap(kind: IdleServerKind, options: IdleHeapOptions): Promise<IdleHeap> {
  return withAgents([{ name: 'server', exposeGc: true }, { name: 'client' }], async ([srv, cli]) => {
    const { url } = await srv.call(serverStart, { kind }, 10_000);
    await open(srv, cli, url, options.warmup, options.warmup);
    await sleep(options.settleMs);
    const before = await srv.memory();
    await open(srv, cli, url, options.sessions, options.warmup + options.sessions);
    await sleep(options.settleMs);
    const idle = await srv.memory();
    if (!idle.afterGc) throw new Error('the server child has no gc(): it must run with --expose-gc');
    const { errors } = await srv.call(serverPolls, { count: 0, timeoutMs: 1_000 }, 5_000);
    const early = await cli.call(clientAnswered, {}, 5_000);
    if (early > 0) throw new Error(`${early} polls were answered before the reading: not every session was idle with a held poll`);
    return {
      kind,
      sessions: options.sessions,
      heapPerSession: Math.round((idle.heapUsed - before.heapUsed) / options.sessions),
      heapBefore: before.heapUsed,
      heapIdle: idle.heapUsed,
      errors,
    };
  });
}
