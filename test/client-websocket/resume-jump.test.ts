/**
 * A session continued by another client on a WebSocket (PROTOCOL.md,
 * "Continuing a session elsewhere"): when the old holder acknowledged more
 * than the state it handed over says, the server's first batch starts past
 * the new holder's ack + 1. The new holder goes on from there, on its
 * WebSocket as on polling: it must not take that first batch for a hole and
 * drop the connection. A hole after it is still refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HoldlineClient, type TransportEvent } from '../../client/index.js';
import type { Payload, Session } from '../../server/index.js';
import { startServer } from '../helpers/server.js';
import { testTls, upgradesOverTls } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { connect, proxied, serve } from './helpers.js';

const OPTIONS = { transports: ['websocket'] as const, reconnect: { minDelayMs: 20, maxDelayMs: 200 } };

test('resumed on a WebSocket from a state older than what its old holder acknowledged: the server\'s first batch is taken, on the WebSocket', { timeout: 30_000 }, async (t) => {
  const srv = await startServer({ pollTimeoutMs: 1_000 });
  t.after(() => srv.close());
  // In the https run (scripts/test-https.ts) both holders' WebSockets are wss.
  const overTls = upgradesOverTls(srv.server);
  let session: Session | undefined;
  let polls = 0;
  srv.server.on('request', (req) => {
    if (req.url?.endsWith('/poll') === true) polls++;
  });
  srv.hl.on('session', (s) => (session = s));

  const a = new HoldlineClient(srv.url, OPTIONS);
  const gotA: string[] = [];
  a.on('message', (d: Payload) => gotA.push(String(d)));
  await a.connect();
  await waitFor(() => a.transport === 'websocket' && session !== undefined, 10_000, 'the first client on a WebSocket');
  const s = session;
  assert.ok(s !== undefined);
  await s.send('d1');
  await waitFor(() => gotA.length === 1 && s.bufferedAmount === 0, 5_000, 'd1 delivered and acknowledged');
  const state = a.exportState();
  assert.ok(state);
  assert.equal(state.inboundAck, 1);
  // The old holder goes on: d2 and d3 delivered and acknowledged past the state it handed over.
  await s.send('d2');
  await s.send('d3');
  await waitFor(() => gotA.length === 3 && s.bufferedAmount === 0, 5_000, 'd2, d3 delivered and acknowledged');
  const sid = a.sessionId;
  a.detach();

  const b = new HoldlineClient(srv.url, OPTIONS);
  t.after(() => b.close());
  const gotB: string[] = [];
  const switches: TransportEvent[] = [];
  const failures: string[] = [];
  b.on('message', (d: Payload) => gotB.push(String(d)));
  b.on('transport', (e) => switches.push(e));
  b.on('reconnecting', (e) => failures.push(`reconnecting: ${e.error.code}: ${e.error.message}`));
  b.on('error', (e) => failures.push(`error: ${e.code}: ${e.message}`));
  await b.resume(state);
  await waitFor(() => b.transport === 'websocket', 10_000, 'the new holder on a WebSocket');
  await s.send('d4');
  await s.send('d5');
  await waitFor(() => gotB.length >= 2, 10_000, 'd4, d5 at the new holder');

  assert.deepEqual(gotA, ['d1', 'd2', 'd3']);
  assert.deepEqual(gotB, ['d4', 'd5'], 'the new holder goes on past what the old one delivered: nothing twice, nothing lost');
  assert.equal(b.sessionId, sid, 'the same session');
  assert.deepEqual(failures, [], 'the first batch past ack + 1 did not take the WebSocket down');
  assert.equal(switches.filter((e) => e.transport !== 'websocket').length, 0, `no move off the WebSocket: ${JSON.stringify(switches)}`);
  assert.equal(polls, 0, 'no poll: transports is [\'websocket\']');
  assert.deepEqual(overTls, [testTls(), testTls()], testTls() ? 'both WebSockets came over TLS' : 'both WebSockets came in the clear');
  await waitFor(() => s.bufferedAmount === 0, 5_000, 'd4, d5 acknowledged by the new holder');
});

test('a batch past ack + 1 on a WebSocket, not a resumed session\'s first: the connection is dropped and the session goes on on polling, nothing lost', { timeout: 30_000 }, async (t) => {
  const rig = await serve(t);
  const overTls = upgradesOverTls(rig.h.server);
  // The server's frame for its 3rd message says it is the 4th: a hole, as no correct server makes one.
  const proxy = await proxied(rig, { rewriteDown: (chunk) => Buffer.from(chunk.toString('latin1').replace(',3]d3', ',4]d3'), 'latin1') });
  const { c, w, session } = await connect(rig, { transports: ['websocket', 'polling'] }, proxy);
  await waitFor(() => c.transport === 'websocket', 10_000, 'the client on a WebSocket');
  // One at a time: each its own batch, one compact frame on the WebSocket.
  for (const [i, d] of ['d1', 'd2', 'd3', 'd4'].entries()) {
    await session.send(d);
    await waitFor(() => w.got.length > i, 10_000, `${d} at the client`);
  }
  assert.ok(proxy.rewritten > 0, 'the frame of d3 was rewritten');
  assert.deepEqual(w.got.map(String), ['d1', 'd2', 'd3', 'd4'], 'exactly once, in order: d3 came again on polling');
  const down = w.switches.find((e) => e.transport === 'polling');
  assert.equal(down?.reason?.code, 'bad_response', `the WebSocket was dropped for the hole: ${JSON.stringify(w.switches)}`);
  assert.match(down?.reason?.message ?? '', /a batch from 4; the next expected message is 3/);
  assert.ok(overTls.length >= 1 && overTls.every((tls) => tls === testTls()), `upgrades over TLS: ${JSON.stringify(overTls)} (${testTls() ? 'TLS' : 'plain'} mode)`);
  assert.deepEqual(w.errors, [], 'nothing surfaced to the application');
});
