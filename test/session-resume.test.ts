/**
 * Issue 17: one client goes on with another's session (the tab that takes
 * over, the reloaded page). HoldlineClient.detach() stops a client without
 * ending its session and returns its state; resume(state) on a new client
 * continues it: same session, the server's stream from where the first
 * client delivered it, the unacknowledged messages sent again with their
 * numbers (the server drops what it already had). A session gone meanwhile
 * ends in 'reset' whose `lost` lists exactly the messages not acknowledged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient, type ResetEvent } from '../client/index.js';
import type { SessionState } from '../client/session-state.js';
import type { Payload, Session } from '../server/index.js';
import { startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const OPTIONS = { transports: ['polling'] as const, reconnect: { minDelayMs: 20, maxDelayMs: 200 } };

/**
 * A state saved (as a page saves it when hidden) after m1 was acknowledged,
 * of a first holder that then went on: the server has m2 and m3 as 2 and 3,
 * past what the state says. `up`: what reaches the application.
 */
async function staleState(srv: Awaited<ReturnType<typeof startServer>>, options: ConstructorParameters<typeof HoldlineClient>[1]): Promise<{ up: string[]; stale: SessionState }> {
  const up: string[] = [];
  srv.hl.on('session', (s) => s.on('message', (d: Payload) => up.push(String(d))));
  const a = new HoldlineClient(srv.url, options);
  await a.connect();
  await a.send('m1');
  await waitFor(() => up.length === 1 && a.bufferedAmount === 0, 5_000, 'm1 acknowledged');
  const stale = a.exportState();
  assert.ok(stale);
  await a.send('m2');
  await a.send('m3');
  await waitFor(() => up.length === 3 && a.bufferedAmount === 0, 5_000, 'm2, m3 acknowledged');
  a.detach();
  return { up, stale };
}

test('a detached session resumed by another client: same session, exactly once both ways', async (t) => {
  const srv = await startServer({ pollTimeoutMs: 1_000 });
  t.after(() => srv.close());
  const up: string[] = [];
  let session: Session | undefined;
  let closed = false;
  srv.hl.on('session', (s) => {
    session = s;
    s.on('message', (d: Payload) => up.push(String(d)));
    s.on('close', () => (closed = true));
  });
  const a = new HoldlineClient(srv.url, OPTIONS);
  const gotA: string[] = [];
  a.on('message', (d) => gotA.push(String(d)));
  await a.connect();
  await a.send('a1');
  await a.send('a2');
  await session?.send('d1');
  await waitFor(() => up.length === 2 && gotA.length === 1 && a.bufferedAmount === 0, 5_000, 'a1, a2 up and d1 down');

  const state = a.detach();
  assert.ok(state);
  assert.equal(a.state, 'closed');
  // As if the first client had also sent 'a3' and 'a4' and the server had not acknowledged them
  // ('a2' sent again too: the server already has it, and drops it).
  const resumed: SessionState = { ...state, outboundAcked: state.outboundAcked - 1, outbound: ['a2', 'a3', 'a4'] };
  await session?.send('d2'); // sent while nobody polls

  const b = new HoldlineClient(srv.url, OPTIONS);
  t.after(() => b.close());
  const gotB: string[] = [];
  const opens: boolean[] = [];
  const resets: ResetEvent[] = [];
  b.on('message', (d) => gotB.push(String(d)));
  b.on('open', (e) => opens.push(e.resumed));
  b.on('reset', (e) => resets.push(e));
  await b.resume(resumed);
  assert.equal(b.sessionId, state.limits.sid);
  await b.send('b1');
  await session?.send('d3');
  await waitFor(() => up.length >= 5 && gotB.length >= 2 && b.bufferedAmount === 0, 5_000, 'everything');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(up, ['a1', 'a2', 'a3', 'a4', 'b1']);
  assert.deepEqual(gotA, ['d1']);
  assert.deepEqual(gotB, ['d2', 'd3']);
  assert.deepEqual(opens, [true]);
  assert.deepEqual(resets, []);
  assert.equal(closed, false);
  assert.equal(srv.hl.sessionCount, 1);
});

test('resuming a session that is gone: reset lists exactly the unacknowledged messages', async (t) => {
  const srv = await startServer({ pollTimeoutMs: 1_000 });
  t.after(() => srv.close());
  const up: string[] = [];
  srv.hl.on('session', (s) => s.on('message', (d: Payload) => up.push(String(d))));
  const a = new HoldlineClient(srv.url, OPTIONS);
  await a.connect();
  const state = a.detach();
  assert.ok(state);
  const gone: SessionState = { ...state, limits: { ...state.limits, sid: 'no-such-session-000', token: 'nope' }, outbound: ['x1', { b: 'AAEC' }] };

  const b = new HoldlineClient(srv.url, OPTIONS);
  t.after(() => b.close());
  const resets: ResetEvent[] = [];
  b.on('reset', (e) => resets.push(e));
  await b.resume(gone);
  await waitFor(() => resets.length === 1, 5_000, 'the reset');
  const [reset] = resets;
  assert.ok(reset);
  assert.equal(reset.previousSessionId, 'no-such-session-000');
  assert.notEqual(reset.sessionId, 'no-such-session-000');
  assert.deepEqual(reset.lost, ['x1', new Uint8Array([0, 1, 2])]);
  await b.send('after');
  await waitFor(() => up.includes('after'), 5_000, 'sent on the new session');
  assert.deepEqual(up, ['after'], 'the lost messages were not sent');
});

for (const transport of ['polling', 'websocket'] as const) {
  test(`resumed from a state the first client went on sending after (${transport}): the next messages are numbered past what the server has, none taken as a repeat`, async (t) => {
    const srv = await startServer({ pollTimeoutMs: 5_000 });
    t.after(() => srv.close());
    const options = { ...OPTIONS, transports: [transport] };
    const { up, stale } = await staleState(srv, options);

    const b = new HoldlineClient(srv.url, options);
    t.after(() => b.close());
    const resets: ResetEvent[] = [];
    b.on('reset', (e) => resets.push(e));
    await b.resume(stale);
    await b.send('m4');
    await b.send('m5');
    await waitFor(() => up.length === 5, 3_000, 'm4 and m5 at the server').catch(() => undefined);
    assert.deepEqual(up, ['m1', 'm2', 'm3', 'm4', 'm5'], 'each message once, none taken as a repeat of the first client\'s');
    await waitFor(() => b.bufferedAmount === 0, 5_000, 'm4 and m5 acknowledged');
    assert.deepEqual(resets, []);
    assert.equal(b.sessionId, stale.limits.sid, 'the same session goes on');
  });
}

for (const transport of ['polling', 'websocket'] as const) {
  test(`a state exported while a resumed stream waits for the server's first ack (${transport}): what was queued meanwhile is not sent under the old holder's numbers`, async (t) => {
    const srv = await startServer({ pollTimeoutMs: 5_000 });
    t.after(() => srv.close());
    const options = { ...OPTIONS, transports: [transport] };
    const { up, stale } = await staleState(srv, options);

    // The second holder resumes the stale state, queues b1, and is saved (and
    // gone) before the server's first answer: b1 was never sent.
    const b = new HoldlineClient(srv.url, options);
    await b.resume(stale);
    b.send('b1').catch(() => undefined);
    const second = b.detach();
    assert.ok(second);

    const c = new HoldlineClient(srv.url, options);
    t.after(() => c.close());
    const resets: ResetEvent[] = [];
    c.on('reset', (e) => resets.push(e));
    await c.resume(second);
    await c.send('c1');
    await waitFor(() => up.length === 5, 3_000, 'b1 and c1 at the server').catch(() => undefined);
    assert.deepEqual(up, ['m1', 'm2', 'm3', 'b1', 'c1'], 'each message once: b1 not taken as a repeat of m2');
    await waitFor(() => c.bufferedAmount === 0, 5_000, 'b1 and c1 acknowledged');
    assert.deepEqual(resets, []);
  });
}
