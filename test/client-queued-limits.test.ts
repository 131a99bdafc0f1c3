/**
 * Robustness, item 3, and maxBatchMessages: the client and the server's
 * limits on what it sends.
 *
 * - A message over maxMessageBytes queued before connect() resolved (the
 *   limits were not known yet) used to go out in the first batch; the server
 *   answered 413 message_too_large, and the client gave up the session (a
 *   `reset`, the messages after it lost with it; before the split, it retried
 *   the 413 forever). It is now refused once the open answer gives the
 *   limits: an `error` naming its size, left out of the stream, and the
 *   messages after it arrive on the same session.
 * - A 413 message_too_large to a one-message batch (a server that enforces
 *   less than it advertised) is a refusal of that message likewise.
 * - A send batch carries at most the open answer's maxBatchMessages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient } from '../client/index.js';
import type { Session } from '../server/index.js';
import type { HoldlineError, Payload } from '../shared/index.js';
import { startHoldline } from './helpers/holdline.js';
import { waitFor } from './helpers/wait.js';

/** Messages the server application receives, in order, from any session. */
function collect(hl: { server: { on(e: 'session', fn: (s: Session) => void): unknown } }): { got: Payload[]; sessions: string[] } {
  const out = { got: [] as Payload[], sessions: [] as string[] };
  hl.server.on('session', (s) => {
    out.sessions.push(s.id);
    s.on('message', (m) => out.got.push(m));
  });
  return out;
}

/** Statuses of the answers the http server wrote, by path. */
function statuses(server: http.Server): Array<[string, number]> {
  const seen: Array<[string, number]> = [];
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.on('finish', () => seen.push([req.url ?? '', res.statusCode]));
  });
  return seen;
}

test('a message over maxMessageBytes queued before connect() resolved is refused (error naming its size), and the messages after it arrive on the same session', { timeout: 20_000 }, async (t) => {
  const hl = await startHoldline(t, { maxMessageBytes: 1000, pollTimeoutMs: 2_000 });
  const server = collect(hl);
  const client = new HoldlineClient(hl.url);
  t.after(() => client.close());
  const errors: HoldlineError[] = [];
  const resets: unknown[] = [];
  client.on('error', (e) => errors.push(e));
  client.on('reset', (e) => resets.push(e));
  let flushed = 0;
  client.on('flush', () => flushed++);

  const queued = [client.send('first'), client.send('x'.repeat(5000)), client.send('second'), client.send(new Uint8Array(2000)), client.send('third')];
  await client.connect();
  await Promise.all(queued);
  await waitFor(() => server.got.length >= 3, 10_000, 'the three small messages');
  await client.send('after');
  await waitFor(() => server.got.length >= 4, 10_000, 'the message sent after connect()');
  await sleep(100);

  assert.deepEqual(server.got, ['first', 'second', 'third', 'after'], 'in order, the oversized ones left out, no hole');
  assert.deepEqual(errors.map((e) => e.code), ['message_too_large', 'message_too_large']);
  assert.match(errors[0]?.message ?? '', /5000 bytes/, 'the error names the size');
  assert.match(errors[1]?.message ?? '', /2000 bytes/);
  assert.equal(resets.length, 0, 'no new session');
  assert.equal(server.sessions.length, 1);
  assert.equal(client.state, 'open');
  assert.equal(client.bufferedAmount, 0, 'the refused bytes left the send window');
  assert.equal(client.queuedAmount, 0);
  assert.ok(flushed >= 1, 'flush came once nothing was left to write');
});

/**
 * A reverse proxy in front of a Holdline server that raises the open answer's
 * maxMessageBytes: the client believes a larger limit than the server enforces.
 */
async function startLyingProxy(t: { after(fn: () => Promise<void>): void }, target: number): Promise<string> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        const parts: Buffer[] = [];
        upRes.on('data', (c: Buffer) => parts.push(c));
        upRes.on('end', () => {
          let body = Buffer.concat(parts).toString();
          if (req.url?.endsWith('/open') && upRes.statusCode === 200) {
            body = JSON.stringify({ ...(JSON.parse(body) as object), maxMessageBytes: 10_000_000 });
          }
          res.writeHead(upRes.statusCode ?? 502, { 'content-type': upRes.headers['content-type'] ?? 'text/plain', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
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
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/holdline`;
}

test('a 413 message_too_large to a one-message batch drops that message (error), not the session; the stream goes on', { timeout: 20_000 }, async (t) => {
  const hl = await startHoldline(t, { maxMessageBytes: 1000, pollTimeoutMs: 2_000 });
  const answers = statuses(hl.http);
  const server = collect(hl);
  const client = new HoldlineClient(await startLyingProxy(t, hl.port));
  t.after(() => client.close());
  const errors: HoldlineError[] = [];
  const resets: unknown[] = [];
  const reconnecting: unknown[] = [];
  client.on('error', (e) => errors.push(e));
  client.on('reset', (e) => resets.push(e));
  client.on('reconnecting', (e) => reconnecting.push(e));
  await client.connect();

  await client.send('a');
  await waitFor(() => server.got.length >= 1, 10_000, 'a');
  await client.send('y'.repeat(3000)); // alone in its batch
  await waitFor(() => errors.length >= 1, 10_000, 'the refusal');
  await client.send('b');
  await waitFor(() => server.got.length >= 2, 10_000, 'b');
  // In one batch: the server refuses it whole, the client sends smaller ones until the big one is alone.
  await Promise.all([client.send('c'), client.send('z'.repeat(4000)), client.send('d')]);
  await waitFor(() => server.got.length >= 4, 10_000, 'c and d');
  await sleep(100);

  assert.deepEqual(server.got, ['a', 'b', 'c', 'd']);
  assert.deepEqual(errors.map((e) => e.code), ['message_too_large', 'message_too_large']);
  assert.match(errors[0]?.message ?? '', /3000 bytes/);
  assert.match(errors[1]?.message ?? '', /4000 bytes/);
  assert.equal(resets.length, 0, 'no new session');
  assert.equal(reconnecting.length, 0, 'a refusal is not transient: no back-off');
  assert.equal(server.sessions.length, 1);
  assert.equal(client.state, 'open');
  assert.equal(client.bufferedAmount, 0);
  assert.ok(answers.filter(([path, status]) => path.endsWith('/send') && status === 413).length >= 2, 'the server did refuse them');
});

test('a send batch carries at most the open answer\'s maxBatchMessages: no 413, every message arrives', { timeout: 20_000 }, async (t) => {
  const hl = await startHoldline(t, { maxBatchMessages: 4, pollTimeoutMs: 2_000 });
  const answers = statuses(hl.http);
  const server = collect(hl);
  // It counts HTTP sends: on polling.
  const client = new HoldlineClient(hl.url, { transports: ['polling'] });
  t.after(() => client.close());
  const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
  const queued = sent.map((m) => client.send(m)); // before connect(): one batch would take them all
  await client.connect();
  await Promise.all(queued);
  for (const m of ['n0', 'n1', 'n2', 'n3', 'n4', 'n5']) void client.send(m);
  await waitFor(() => server.got.length >= 36, 10_000, 'every message');
  assert.deepEqual(server.got, [...sent, 'n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  const sends = answers.filter(([path]) => path.endsWith('/send'));
  assert.deepEqual(sends.filter(([, status]) => status !== 200), [], 'no send was refused');
  assert.ok(sends.length >= 9, `at least 36 / 4 sends, got ${sends.length}`);
  assert.ok(client.stats.sendRequests >= 9);
});
