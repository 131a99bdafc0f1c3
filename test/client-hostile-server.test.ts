/**
 * Robustness, item 12: a hostile (or broken) server must not make the client
 * spin, overflow a timer, or buffer without bound.
 *
 * A tiny hand-written node:http server misbehaves in one way per test:
 * - answers every poll at once with a hole (a batch past the ack), an empty
 *   batch, or a body that is not an envelope: the client's poll rate stays
 *   bounded and backs off (it used to poll as fast as the answers came:
 *   53,000 polls in 3 s);
 * - advertises limits of 2^53-1 (pollTimeoutMs too): no TimeoutOverflowWarning,
 *   the hold asked is at most 10 min;
 * - answers with a body over the cap (declared by Content-Length, or streamed
 *   without end): bad_response, and the connection is dropped at the cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type ReconnectingEvent } from '../client/index.js';

interface Hostile {
  url: string;
  /** Every poll's parsed body, in order, with when it came. */
  polls: Array<{ at: number; body: Record<string, unknown> }>;
  /** Bytes written on answers whose connection the client dropped before the end. */
  cutAnswers: number[];
}

const OPEN = { v: 1, sid: 'hostile-session-1', token: 'token-token-token-token', pollTimeoutMs: 25_000, sessionIdleTimeoutMs: 60_000, maxMessageBytes: 1024, maxBatchBytes: 4096 };

/**
 * `onPoll` answers each poll (res is ours to end); /open answers `open`, /send
 * and /close answer as a server would.
 */
async function startHostile(
  t: { after(fn: () => Promise<void>): void },
  onPoll: (res: http.ServerResponse, body: Record<string, unknown>) => void,
  open: Record<string, unknown> = OPEN,
): Promise<Hostile> {
  const state: Hostile = { url: '', polls: [], cutAnswers: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').replace(/^\/holdline/, '');
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
      const json = (text: string) => {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (path === '/open') return json(JSON.stringify(open));
      if (path === '/send') return json('{"ack":0}');
      if (path === '/close') return json('{}');
      state.polls.push({ at: Date.now(), body });
      onPoll(res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/holdline`;
  return state;
}

function answer(res: http.ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Polls in [from, to) ms after the first one. */
function pollsBetween(h: Hostile, from: number, to: number): number {
  const t0 = h.polls[0]?.at ?? 0;
  return h.polls.filter((p) => p.at - t0 >= from && p.at - t0 < to).length;
}

async function runFor(h: Hostile, ms: number): Promise<HoldlineClient> {
  const client = new HoldlineClient(h.url, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 1_000 } });
  client.on('error', () => {});
  await client.connect();
  await sleep(ms);
  return client;
}

const RUN_MS = 3_000;

for (const [kind, body] of [
  ['a hole (a batch past the ack)', '{"ack":0,"seq":5,"m":["x"]}'],
  ['an empty batch', '{"ack":0,"seq":1,"m":[]}'],
  ['a replay of what the client has', '{"ack":0,"seq":1,"m":["x"]}'],
  ['a body that is not an envelope', '{"nope":true}'],
] as const) {
  test(`polls answered at once with ${kind}: a bounded, backing-off poll rate`, { timeout: 20_000 }, async (t) => {
    const h = await startHostile(t, (res) => answer(res, body));
    const client = await runFor(h, RUN_MS);
    t.after(() => client.close());
    const total = h.polls.length;
    const early = pollsBetween(h, 0, RUN_MS / 2);
    const late = pollsBetween(h, RUN_MS / 2, RUN_MS);
    // With a 50 ms back-off doubling to 1 s: about 10 polls in 3 s; a spinning client makes thousands.
    assert.ok(total <= 40, `${total} polls in ${RUN_MS} ms`);
    assert.ok(late <= early, `backing off: ${early} polls in the first half, ${late} in the second`);
    assert.notEqual(client.state, 'closed');
  });
}

test('limits of 2^53-1 (pollTimeoutMs too): no TimeoutOverflowWarning, the hold asked is at most 10 min', { timeout: 20_000 }, async (t) => {
  const max = Number.MAX_SAFE_INTEGER;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  // Polls are held 300 ms, then answered empty: a server that behaves, but for its numbers.
  const h = await startHostile(t, (res) => setTimeout(() => answer(res, '{"ack":0,"seq":1,"m":[]}'), 300), {
    ...OPEN, pollTimeoutMs: max, sessionIdleTimeoutMs: max, maxMessageBytes: max, maxBatchBytes: max, maxBatchMessages: max,
  });
  const client = await runFor(h, 1_000);
  t.after(() => client.close());
  await client.send('hello');
  await sleep(100);
  assert.deepEqual(warnings.map((w) => w.name), [], 'no timer overflowed');
  const holds = h.polls.map((p) => p.body.hold);
  assert.ok(holds.length >= 1);
  for (const hold of holds) assert.ok(typeof hold === 'number' && hold <= 600_000, `hold ${String(hold)}`);
  assert.equal(client.state, 'open');
});

test('a poll answer over the cap by its Content-Length: bad_response, not read, the connection dropped', { timeout: 20_000 }, async (t) => {
  // Over max(maxBatchBytes, 6 x maxMessageBytes, 1 MiB) + envelope, and more than loopback buffers take in.
  const big = 64 * 1024 * 1024;
  const written: number[] = [];
  const h = await startHostile(t, (res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': big });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const more = () => {
      while (sent < big && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    res.on('close', () => written.push(sent));
    more();
  });
  const client = new HoldlineClient(h.url, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 1_000 } });
  t.after(() => client.close());
  const reconnecting: ReconnectingEvent[] = [];
  client.on('reconnecting', (e) => reconnecting.push(e));
  await client.connect();
  const end = Date.now() + 5_000;
  while (reconnecting.length === 0 && Date.now() < end) await sleep(20);
  await sleep(200);
  const first = reconnecting[0]?.error;
  assert.equal(first?.code, 'bad_response');
  assert.match(first?.message ?? '', /larger than \d+ bytes \(Content-Length 67108864\)/);
  assert.ok(written.length >= 1, 'the connection of the answer closed');
  assert.ok((written[0] ?? big) < big, `dropped before the whole answer was written (${written[0]} of ${big} bytes)`);
});

test('an answer streamed without end (no Content-Length): reading stops at the cap, bad_response, the connection dropped', { timeout: 20_000 }, async (t) => {
  const written: number[] = [];
  const h = await startHostile(t, (res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }); // chunked
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const more = () => {
      while (!res.destroyed && sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
    };
    res.on('close', () => written.push(sent));
    more();
  });
  const client = new HoldlineClient(h.url, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 1_000 } });
  t.after(() => client.close());
  const reconnecting: ReconnectingEvent[] = [];
  client.on('reconnecting', (e) => reconnecting.push(e));
  await client.connect();
  const end = Date.now() + 5_000;
  while (written.length === 0 && Date.now() < end) await sleep(20);
  assert.ok(written.length >= 1, 'the client dropped the connection');
  // The cap here is 1 MiB + the envelope; what the kernel buffers comes on top.
  assert.ok((written[0] ?? 0) < 16 * 1024 * 1024, `stopped early: ${written[0]} bytes written`);
  await sleep(100);
  assert.equal(reconnecting[0]?.error.code, 'bad_response');
  assert.match(reconnecting[0]?.error.message ?? '', /larger than \d+ bytes/);
});

test('an open answer over the fixed cap (before any limit is known): bad_response, and connect() goes on trying', { timeout: 20_000 }, async (t) => {
  let opens = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      opens++;
      const text = JSON.stringify({ ...OPEN, pad: 'x'.repeat(2 * 1024 * 1024) });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const client = new HoldlineClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/holdline`, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 200 }, connectTimeoutMs: 1_000 });
  const reconnecting: ReconnectingEvent[] = [];
  client.on('reconnecting', (e) => reconnecting.push(e));
  client.on('error', () => {});
  await assert.rejects(client.connect(), (e: Error & { code?: string }) => e.code === 'timeout');
  assert.ok(opens >= 2, 'retried');
  assert.equal(reconnecting[0]?.error.code, 'bad_response');
  assert.match(reconnecting[0]?.error.message ?? '', /larger than 1048576 bytes/);
});
