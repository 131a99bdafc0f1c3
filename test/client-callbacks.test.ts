/**
 * Issue 12, item 2: application callbacks never deafen the client. A listener
 * that throws, or an async one that rejects, is reported through 'error'
 * (console.error when nobody listens for 'error'), and delivery goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient, HoldlineError, type Payload } from '../client/index.js';
import type { Session } from '../server/index.js';
import { startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

async function connected(t: { after(fn: () => Promise<void>): void }) {
  const s = await startServer();
  t.after(() => s.close());
  const sessionP = new Promise<Session>((resolve) => s.hl.once('session', resolve));
  const client = new HoldlineClient(s.url);
  t.after(() => client.close());
  return { client, sessionP };
}

test('a message listener that throws on the first message: the next 100 still arrive, and error reports it', async (t) => {
  const { client, sessionP } = await connected(t);
  const got: Payload[] = [];
  const errors: HoldlineError[] = [];
  client.on('error', (e) => errors.push(e));
  client.on('message', (m) => {
    got.push(m);
    if (got.length === 1) throw new Error('boom in the application');
  });
  await client.connect();
  const session = await sessionP;
  await session.send('first');
  await waitFor(() => got.length === 1, 5_000, () => 'the first message');
  for (let i = 0; i < 100; i++) void session.send(`m${i}`);
  await waitFor(() => got.length === 101, 10_000, () => `${101 - got.length} more messages`);
  assert.deepEqual(got.slice(1), Array.from({ length: 100 }, (_, i) => `m${i}`));
  assert.equal(errors.length, 1);
  const err = errors[0];
  assert.ok(err instanceof HoldlineError);
  assert.equal(err.code, 'listener_error');
  assert.match(err.message, /'message' listener threw: boom in the application/);
  assert.equal((err.cause as Error).message, 'boom in the application');
  assert.equal(client.state, 'open');
});

test('async listeners that reject (message, ack, flush, open) are reported; the stream goes on both ways', async (t) => {
  const { client, sessionP } = await connected(t);
  const errors: HoldlineError[] = [];
  client.on('error', (e) => errors.push(e));
  const got: Payload[] = [];
  client.on('message', async (m) => {
    got.push(m);
    await Promise.resolve();
    if (Number(String(m).slice(1)) % 10 === 0) throw new Error(`rejected at ${String(m)}`);
  });
  client.on('open', () => {
    throw new Error('open listener');
  });
  client.on('ack', async () => {
    throw new Error('ack listener');
  });
  client.on('flush', () => {
    throw new Error('flush listener');
  });
  await client.connect();
  const session = await sessionP;
  const received: Payload[] = [];
  session.on('message', (m) => received.push(m));
  for (let i = 0; i < 30; i++) void session.send(`s${i}`);
  for (let i = 0; i < 30; i++) await client.send(`c${i}`);
  await waitFor(() => got.length === 30 && received.length === 30 && client.bufferedAmount === 0, 10_000, () => `${got.length}/30 in, ${received.length}/30 out`);
  assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => `s${i}`));
  assert.deepEqual(received, Array.from({ length: 30 }, (_, i) => `c${i}`));
  await waitFor(() => errors.some((e) => /'ack' listener rejected/.test(e.message)), 5_000, () => 'the ack rejection');
  const kinds = new Set(errors.map((e) => e.message.replace(/: .*/, '')));
  for (const kind of ["a 'open' listener threw", "a 'message' listener rejected", "a 'ack' listener rejected", "a 'flush' listener threw"]) {
    assert.ok(kinds.has(kind), `${kind} reported (got ${[...kinds].join('; ')})`);
  }
  assert.equal(errors.filter((e) => /'message'/.test(e.message)).length, 3, 's0, s10 and s20 rejected');
  assert.ok(errors.every((e) => e.code === 'listener_error'));
  assert.equal(client.state, 'open');
});

test('without an error listener, and for an error listener that throws, the report goes to console.error', async (t) => {
  const { client, sessionP } = await connected(t);
  const logged: unknown[][] = [];
  t.mock.method(console, 'error', (...args: unknown[]) => void logged.push(args));
  const got: Payload[] = [];
  client.on('message', (m) => {
    got.push(m);
    throw new Error(`listener failed on ${String(m)}`);
  });
  await client.connect();
  const session = await sessionP;
  await session.send('one');
  await waitFor(() => got.length === 1 && logged.length === 1, 5_000, () => 'one message, one log line');
  assert.match(String(logged[0]?.[1]), /'message' listener threw: listener failed on one/);

  // An error listener that throws itself: logged, never thrown into the client's loop.
  client.on('error', () => {
    throw new Error('the error listener fails too');
  });
  await session.send('two');
  await session.send('three');
  await waitFor(() => got.length === 3 && logged.length === 3, 5_000, () => `${got.length} messages, ${logged.length} log lines`);
  assert.match(String(logged[1]?.[1]), /'error' listener threw: the error listener fails too/);
  assert.equal(client.state, 'open');
});

test('off() removes a listener added with on(); once() listeners run once and are made safe too', async (t) => {
  const { client, sessionP } = await connected(t);
  const errors: HoldlineError[] = [];
  client.on('error', (e) => errors.push(e));
  const a: Payload[] = [];
  const b: Payload[] = [];
  const listenA = (m: Payload) => void a.push(m);
  client.on('message', listenA);
  client.once('message', (m) => {
    b.push(m);
    throw new Error('once');
  });
  assert.equal(client.listenerCount('message'), 2);
  await client.connect();
  const session = await sessionP;
  await session.send('x');
  await waitFor(() => a.length === 1, 5_000, () => 'x');
  assert.equal(client.listenerCount('message'), 1);
  client.off('message', listenA);
  assert.equal(client.listenerCount('message'), 0);
  await session.send('y');
  await waitFor(() => session.bufferedAmount === 0, 5_000, () => 'y acknowledged');
  assert.deepEqual(a, ['x']);
  assert.deepEqual(b, ['x']);
  assert.equal(errors.length, 1);
  assert.match(errors[0]?.message ?? '', /'message' listener threw: once/);
});
