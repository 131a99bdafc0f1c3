/**
 * A poll's `from` (where an early poll asks its batch to start), raw over
 * real HTTP on 127.0.0.1:
 *
 * - A poll with `"from": N` gets a batch starting at N; the messages before
 *   it stay unacknowledged. A bad `from` is refused (bad_ack past lastSeq + 1,
 *   malformed_request when not a positive integer) while a healthy session
 *   goes on exchanging.
 * - A poll refused for its `from` leaves the session's accounting consistent
 *   with the store: the same ack on a good poll settles everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Session } from '../../server/index.js';
import { startHoldline } from '../helpers/holdline.js';
import { openRaw, post } from '../helpers/server.js';
import { answerOf, assertError, assertExactlyOnce, json, recordingClient, sessionOf, waitFor } from './helpers.js';

test('a poll with from gets the batch from there; earlier messages stay unacknowledged; a bad from is refused; a healthy session keeps going', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000 });
  const serverErrors: unknown[] = [];
  hl.server.on('error', (e) => serverErrors.push(e));

  // The healthy session: the client sends numbered messages, the server echoes them.
  const received = new Map<string, string[]>();
  hl.server.on('session', (session: Session) => {
    const list: string[] = [];
    received.set(session.id, list);
    session.on('message', (d) => {
      list.push(String(d));
      if (typeof d === 'string' && d.startsWith('c-')) session.send(`e-${d.slice(2)}`).catch((e: unknown) => serverErrors.push(e));
    });
  });
  const healthy = recordingClient(hl.url);
  t.after(() => healthy.client.close());
  await healthy.client.connect();
  let running = true;
  let sent = 0;
  const producer = (async () => {
    while (running) {
      await healthy.client.send(`c-${sent++}`);
      await sleep(2);
    }
  })();
  await waitFor(() => healthy.got.length >= 5, 5_000, () => 'the healthy stream to start');

  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  const poll = (ack: number, extra: Record<string, unknown> = {}) =>
    post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack, hold: 0, ...extra }));
  const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

  // A session that never sent: from 1 (just past lastSeq 0) is fine, from 2 is not.
  assert.deepEqual(answerOf(await poll(0, { from: 1 })).m, []);
  assertError(await poll(0, { from: 2 }), 400, 'bad_ack');

  await Promise.all(texts(1, 10).map((m) => session.send(m)));
  const allBytes = session.bufferedAmount;
  assert.equal(allBytes, texts(1, 10).join('').length);

  // Starts at from.
  let a = answerOf(await poll(0, { from: 4 }));
  assert.equal(a.seq, 4);
  assert.deepEqual(a.m, texts(4, 10));
  assert.equal(a.next, undefined, 'small');
  assert.equal(session.bufferedAmount, allBytes, 'nothing acknowledged by a poll with from');
  // The messages before from were not acknowledged: a poll without from gets them all again.
  a = answerOf(await poll(0));
  assert.equal(a.seq, 1);
  assert.deepEqual(a.m, texts(1, 10));
  // The ack is applied as usual; from still chooses the start.
  a = answerOf(await poll(2, { from: 7 }));
  assert.equal(a.seq, 7);
  assert.deepEqual(a.m, texts(7, 10));
  assert.equal(session.bufferedAmount, allBytes - 4, 'm1 and m2 acknowledged');
  a = answerOf(await poll(2));
  assert.deepEqual(a.m, texts(3, 10), 'm3 to m6, skipped by from, are still there');
  // from at or below the ack: the batch starts at the first unacknowledged message.
  for (const from of [1, 3, 5, 6]) {
    a = answerOf(await poll(5, { from }));
    assert.equal(a.seq, 6, `from ${from} after ack 5`);
    assert.deepEqual(a.m, texts(6, 10));
  }

  // from = lastSeq + 1: nothing yet; held until the next message, which it then gets alone.
  const held = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 5, hold: 2_000, from: 11 }));
  await waitFor(() => session.holdingPoll, 2_000, () => 'the poll with from = lastSeq + 1 to be held');
  await session.send('m11');
  a = answerOf(await held);
  assert.equal(a.seq, 11);
  assert.deepEqual(a.m, ['m11']);
  // With no hold it is answered empty at once, numbered from there.
  a = answerOf(await poll(5, { from: 12 }));
  assert.deepEqual(a.m, []);
  assert.equal(a.seq, 12);

  // Past lastSeq + 1 (lastSeq is 11): bad_ack, nothing changes.
  for (const from of [13, 100, Number.MAX_SAFE_INTEGER]) assertError(await poll(5, { from }), 400, 'bad_ack');
  // Not a positive integer: malformed_request.
  for (const from of [0, -1, 1.5, '3', null, true, 2 ** 53]) assertError(await poll(5, { from }), 400, 'malformed_request');
  assertError(await post(`${hl.url}/poll`, `{"sid":"${s.sid}","token":"${s.token}","ack":5,"from":1e400}`), 400, 'malformed_request');
  // A bad ack with a good from is still bad_ack.
  assertError(await poll(12, { from: 12 }), 400, 'bad_ack');

  // Everything from m6 is still there, and a full ack settles it.
  a = answerOf(await poll(5));
  assert.deepEqual(a.m, texts(6, 11));
  a = answerOf(await poll(11));
  assert.deepEqual(a.m, []);
  assert.equal(session.bufferedAmount, 0);
  assert.equal(session.state, 'open');

  // The healthy session went on throughout: every message once, in order, both ways.
  const mark = healthy.got.length;
  await waitFor(() => healthy.got.length > mark + 3, 5_000, () => 'the healthy stream to go on');
  running = false;
  await producer;
  const sid = healthy.client.sessionId;
  assert.ok(sid !== undefined, 'the healthy client has a session');
  await waitFor(
    () => (received.get(sid)?.length ?? 0) >= sent && healthy.got.length >= sent,
    10_000,
    () => `server got ${received.get(sid)?.length}/${sent}, client ${healthy.got.length}/${sent}`,
  );
  const numbered = (prefix: string) => Array.from({ length: sent }, (_, i) => `${prefix}-${i}`);
  assertExactlyOnce(received.get(sid) ?? [], numbered('c'), 'client to server');
  assertExactlyOnce(healthy.got, numbered('e'), 'echoes to the client');
  assert.deepEqual(healthy.events, []);
  assert.equal(healthy.client.state, 'open');
  assert.deepEqual(serverErrors, []);
});

test('a poll refused for a bad from leaves the session\'s accounting consistent with the store', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 1_000, maxMessageBytes: 1024, maxBatchBytes: 4096, maxQueuedBytes: 2 * (1024 + 64), sendTimeoutMs: 300 });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  let drains = 0;
  session.on('drain', () => drains++);
  await session.send('a'.repeat(1024));
  await session.send('b'.repeat(1024));
  const poll = (extra: Record<string, unknown>) => post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, hold: 0, ...extra }));
  assertError(await poll({ ack: 2, from: 10 }), 400, 'bad_ack');
  // Whether or not the refused poll's ack counts, the same ack on a good poll settles everything.
  const a = answerOf(await poll({ ack: 2 }));
  assert.deepEqual(a.m, [], 'both messages were acknowledged: none comes again');
  assert.equal(a.seq, 3);
  assert.equal(session.bufferedAmount, 0);
  assert.equal(drains, 1);
  await session.send('c'.repeat(1024)); // rejects with queue_full when the window was not released
});
