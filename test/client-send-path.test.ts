/**
 * The client's send path: one send request in flight, run by one flush loop
 * (no queue in between). A send() made while a request is in flight goes in
 * the next one; close() waits for the loop; a session replaced while the loop
 * waits out a back-off gets its sends without another send(). A request's
 * deadline touches no timer when armed: the running one waits out the rest.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HoldlineClient, type ResetEvent } from '../client/index.js';
import { RequestDeadline } from '../client/request-deadline.js';
import { HoldlineServer, type Session } from '../server/index.js';
import type { CloseReason, Payload } from '../shared/index.js';
import { startHoldline } from './helpers/holdline.js';
import { waitFor } from './helpers/wait.js';

function nextSession(server: HoldlineServer): Promise<Session> {
  return new Promise((resolve) => server.once('session', resolve));
}

function received(session: Session): Payload[] {
  const got: Payload[] = [];
  session.on('message', (m) => got.push(m));
  return got;
}


test('sends made while a send request is in flight go in the next request, in order, once', async (t) => {
  const hl = await startHoldline(t);
  const sessionP = nextSession(hl.server);
  const c = new HoldlineClient(hl.url);
  t.after(() => c.close());
  await c.connect();
  const got = received(await sessionP);
  // The first goes out at once; the other two wait for its answer, then go together.
  void c.send('one');
  void c.send('two');
  void c.send('three');
  assert.equal(c.stats.sendRequests, 1);
  await waitFor(() => got.length === 3 && c.bufferedAmount === 0, 5_000, 'all three delivered and acknowledged');
  assert.deepEqual(got, ['one', 'two', 'three']);
  assert.equal(c.stats.sendRequests, 2);
});

test('close() waits for the send in flight and the one queued behind it', async (t) => {
  const hl = await startHoldline(t);
  const sessionP = nextSession(hl.server);
  const c = new HoldlineClient(hl.url);
  await c.connect();
  const got = received(await sessionP);
  const closed = new Promise<[CloseReason, Payload[]]>((resolve) => c.once('close', (reason, unacked) => resolve([reason, unacked])));
  void c.send('in flight');
  void c.send('queued');
  await c.close();
  const [reason, unacked] = await closed;
  assert.equal(reason.code, 'client_closed');
  assert.deepEqual(unacked, []);
  assert.deepEqual(got, ['in flight', 'queued']);
});

test("a session replaced while a send waits out its back-off: the new session's sends go out without another send()", async (t) => {
  const server = new HoldlineServer();
  const handle = server.handler({ path: '/holdline' });
  let failSends = 0;
  let failedSends = 0;
  let losePolls = 0;
  // In front of Holdline: a /send answered 503 (transient: the client backs off),
  // a /poll answered 404 session_unknown (the client opens a new session).
  const httpServer = http.createServer((req, res) => {
    if (failSends > 0 && req.url?.endsWith('/send')) {
      failSends--;
      failedSends++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
      return;
    }
    if (losePolls > 0 && req.url?.endsWith('/poll')) {
      losePolls--;
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'session_unknown', message: 'gone' } }));
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await server.close();
    httpServer.closeAllConnections();
    await new Promise((r) => httpServer.close(r));
  });
  const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/holdline`;

  const firstP = nextSession(server);
  // A long back-off (750..1500 ms): the new session is open well before it ends.
  const c = new HoldlineClient(url, { reconnect: { minDelayMs: 1_500, maxDelayMs: 1_500 } });
  t.after(() => c.close());
  await c.connect();
  const first = await firstP;

  failSends = 1;
  void c.send('lost with the old session');
  await waitFor(() => failedSends === 1, 5_000, 'the send answered 503');

  // End the held poll; the next one hears that the session is gone.
  losePolls = 1;
  const secondP = nextSession(server);
  const reset = new Promise<ResetEvent>((resolve) => c.once('reset', resolve));
  void first.send('ping');
  const e = await reset;
  assert.deepEqual(e.lost, ['lost with the old session']);
  const second = await secondP;
  assert.equal(c.sessionId, second.id);
  const got = received(second);

  // The flush loop of the old session is still in its back-off: this send must not wait for another.
  void c.send('after the reset');
  await waitFor(() => got.length === 1, 5_000, 'the send on the new session delivered');
  assert.deepEqual(got, ['after the reset']);
  await waitFor(() => c.bufferedAmount === 0, 5_000, 'acknowledged');
});

test('a deadline fires for the request armed last: later when re-armed longer, sooner when shorter, never while idle', async (t) => {
  const cancel = new AbortController().signal;
  const idle = new RequestDeadline();
  const longer = new RequestDeadline();
  const shorter = new RequestDeadline();
  t.after(() => [idle, longer, shorter].forEach((d) => d.dispose()));

  const idleSignal = idle.arm(20, cancel);
  idle.disarm();

  longer.arm(100, cancel);
  longer.disarm();
  await sleep(50);
  // Its timer (due at 100 ms) finds this request 50 ms old: it waits out the other 250.
  const second = longer.arm(300, cancel);

  shorter.arm(10_000, cancel);
  shorter.disarm();
  const third = shorter.arm(100, cancel);

  await sleep(150);
  assert.equal(second.aborted, false, 'the re-armed deadline is not over yet');
  await sleep(400);
  assert.equal(second.aborted, true, 'the re-armed deadline fired');
  assert.equal(third.aborted, true, 'a shorter deadline does not wait for the longer timer');
  assert.equal(idleSignal.aborted, false, 'a timer that finds its deadline idle does nothing');
});
