/**
 * Early-poll recovery with the real client, over real HTTP on 127.0.0.1: the
 * answer whose headers started an early poll is cut mid-body (cut by the
 * server side of this test at chosen answers, or at random by the fault
 * proxy), or the header names a number its batch does not reach. The client
 * supersedes the early poll: every message exactly once, in order, and
 * without waiting on the early poll.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Session } from '../../server/index.js';
import { NEXT_HEADER } from '../../shared/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startHoldline } from '../helpers/holdline.js';
import { assertExactlyOnce, json, payload100, polls, recordingClient, sendInBursts, sendOnFirstPoll, tap, waitFor, type Tapped } from './helpers.js';

test('early-poll recovery: answers are cut mid-body after their headers went out; the client supersedes the early poll, nothing lost or doubled', { timeout: 60_000 }, async (t) => {
  const N = 5_000;
  const CUTS = 3;
  const hl = await startHoldline(t, { maxMessageBytes: 1024, maxBatchBytes: 24 * 1024 });
  let cuts = 0;
  let large = 0;
  const seen = tap(hl.http, {
    // Large answers (they carry Holdline-Next) number 0, 3 and 6 are cut. Number 0 answers the
    // client's first poll, an ordinary one that the client is waiting for, so its headers
    // always start an early poll; later ones may answer early polls.
    cut: (x, status, headers) => {
      if (x.path !== '/poll' || status !== 200 || headers[NEXT_HEADER] === undefined) return false;
      if (cuts >= CUTS || large++ % 3 !== 0) return false;
      cuts++;
      return true;
    },
  });
  const expected = Array.from({ length: N }, (_, i) => payload100(i));
  let sending: Promise<unknown> | undefined;
  hl.server.once('session', (s: Session) => {
    sending = (async () => {
      // The first burst lands on the client's first poll, held meanwhile.
      await waitFor(() => s.holdingPoll, 5_000, () => 'the first poll');
      await sendInBursts(s, expected, 500);
    })();
  });
  const c = recordingClient(hl.url);
  t.after(() => c.client.close());
  await c.client.connect();
  await waitFor(() => c.got.length >= N, 30_000, () => `${c.got.length}/${N} messages, ${cuts} cuts`);
  await sending;
  await sleep(100);
  assertExactlyOnce(c.got, expected, 'server to client');
  assert.equal(cuts, CUTS, 'the answers were cut');
  assert.ok(c.events.every((e) => !e.startsWith('reset') && !e.startsWith('close')), c.events.join('\n'));

  const pollsSeen = seen
    .filter((x) => x.path === '/poll')
    .map((x) => ({ x, ...(JSON.parse(x.body()) as { ack: number; from?: number }) }));
  const answer = (x: Tapped) => JSON.parse(x.answer?.body ?? '{}') as { seq?: number; m?: unknown[] };
  const cutOnes = pollsSeen.filter((p) => p.x.answer?.cut);
  assert.equal(cutOnes.length, CUTS);
  const [firstCut] = cutOnes;
  assert.ok(firstCut, 'an answer was cut');
  assert.equal(firstCut.from, undefined, 'the first cut answers an ordinary poll');
  let earlyAfterCut = 0;
  for (const cut of cutOnes) {
    const { seq } = answer(cut.x);
    const next = Number(cut.x.answer?.headers[NEXT_HEADER]);
    assert.ok(seq !== undefined && next > seq, `cut answer: seq ${seq}, next ${next}`);
    const later = pollsSeen.filter((p) => p.x.index > cut.x.index);
    // The recovery: the next ordinary poll acknowledges nothing of the cut batch (nor of
    // anything an early poll brought past it), and the cut messages come again on an
    // ordinary poll. (A late early poll may supersede the first one: then the next.)
    const recovery = later.find((p) => p.from === undefined);
    assert.ok(recovery, `an ordinary poll followed the cut answer ${seq}..${next - 1}`);
    assert.equal(recovery.ack, seq - 1, 'the recovery poll acknowledges up to just before the cut batch');
    const resent = later.find((p) => p.from === undefined && (answer(p.x).m?.length ?? 0) > 0);
    assert.ok(resent, 'an ordinary poll got messages after the cut');
    assert.equal(resent.ack, seq - 1);
    assert.equal(answer(resent.x).seq, seq, 'the cut batch came again');
    // An early poll sent on the cut answer's headers: its batch was never acknowledged.
    const early = later.find((p) => p.from === next);
    if (early) {
      earlyAfterCut++;
      assert.ok(early.ack < seq, 'the early poll went out before the cut batch was taken in');
    }
  }
  assert.ok(earlyAfterCut >= 1, 'the headers of a cut answer started an early poll, which the client then superseded');
  t.diagnostic(`${cuts} cuts, ${earlyAfterCut} of them after the headers started an early poll; ${pollsSeen.length} polls`);
});

test('an early poll held at the server is superseded at once when the answer before it is cut', { timeout: 30_000 }, async (t) => {
  // One large batch, all there is: the early poll sent on its headers (from = lastSeq + 1)
  // has nothing to wait for but new messages, for up to 20 s. The client must not wait on it.
  const hl = await startHoldline(t, { pollTimeoutMs: 20_000, maxMessageBytes: 1024, maxBatchBytes: 64 * 1024 });
  let cuts = 0;
  const seen = tap(hl.http, {
    cut: (x, status, headers) => {
      if (x.path !== '/poll' || status !== 200 || headers[NEXT_HEADER] === undefined || cuts > 0) return false;
      cuts++;
      return true;
    },
  });
  const expected = Array.from({ length: 200 }, (_, i) => payload100(i));
  const sessionOpened = sendOnFirstPoll(hl, expected);
  const c = recordingClient(hl.url);
  t.after(() => c.client.close());
  await c.client.connect();
  const started = Date.now();
  await waitFor(() => c.got.length >= 200, 5_000, () => `${c.got.length}/200 messages (the client waited on its early poll?)`);
  assert.ok(Date.now() - started < 5_000, 'well within the hold');
  await sleep(100);
  assertExactlyOnce(c.got, expected, 'server to client');
  assert.equal(cuts, 1);
  const p = seen.filter((x) => x.path === '/poll').map((x) => ({ x, ...(JSON.parse(x.body()) as { ack: number; from?: number }) }));
  const cut = p.find((q) => q.x.answer?.cut);
  assert.ok(cut, 'an answer was cut');
  assert.equal(cut.from, undefined);
  const after = p.filter((q) => q.x.index > cut.x.index);
  const early = after.find((q) => q.from === 201);
  assert.ok(early, 'an early poll with from 201 was sent on the cut answer\'s headers');
  assert.equal(early.ack, 0);
  assert.deepEqual(JSON.parse(early.x.answer?.body ?? '{}').m, [], 'the early poll was answered empty: superseded, nothing came for it');
  const recovery = after.find((q) => q.from === undefined);
  assert.ok(recovery, 'an ordinary poll');
  assert.equal(recovery.ack, 0, 'acknowledging nothing of the cut batch');
  const resent = after.find((q) => q.from === undefined && (JSON.parse(q.x.answer?.body ?? '{}') as { m?: unknown[] }).m?.length);
  assert.ok(resent, 'an ordinary poll got the batch again');
  assert.equal(JSON.parse(resent.x.answer?.body ?? '{}').seq, 1);
  assert.ok(sessionOpened(), 'the session opened');
});

test('a Holdline-Next that the batch does not reach: the early poll is superseded, not used', { timeout: 30_000 }, async (t) => {
  // The header on the first large answer claims one message more than the batch holds:
  // the early poll asks from lastSeq + 2, which the server refuses (bad_ack). The client sees
  // that the batch did not bring it up to `from`, polls normally, and never reads that refusal.
  const hl = await startHoldline(t, { pollTimeoutMs: 20_000, maxMessageBytes: 1024, maxBatchBytes: 64 * 1024 });
  let rewritten = 0;
  const seen = tap(hl.http, {
    rewrite: (x, status, headers) => {
      if (x.path !== '/poll' || status !== 200 || headers[NEXT_HEADER] === undefined || rewritten++ > 0) return;
      headers[NEXT_HEADER] = String(Number(headers[NEXT_HEADER]) + 1);
    },
  });
  const expected = Array.from({ length: 200 }, (_, i) => payload100(i));
  const sessionOpened = sendOnFirstPoll(hl, expected);
  const c = recordingClient(hl.url);
  t.after(() => c.client.close());
  await c.client.connect();
  const sid = c.client.sessionId;
  await waitFor(() => c.got.length >= 200, 5_000, () => `${c.got.length}/200 messages`);
  // The early poll asked from 202 while lastSeq was 200. (It may reach the server after
  // the ordinary poll that replaced it, on a connection still being opened: wait for it.)
  const isEarly = (x: Tapped) => x.path === '/poll' && (JSON.parse(x.body()) as { from?: number }).from === 202;
  await waitFor(() => seen.some((x) => isEarly(x) && x.answer), 5_000, () => 'the early poll to be answered');
  // The session goes on: a later message arrives too.
  const session = sessionOpened();
  assert.ok(session, 'the session opened');
  await session.send('after');
  await waitFor(() => c.got.length >= 201, 5_000, () => 'the message after');
  await sleep(100);
  assertExactlyOnce(c.got, [...expected, 'after'], 'server to client');
  assert.equal(rewritten, 1);
  const refused = seen.find(isEarly);
  assert.ok(refused, 'the early poll asked from 202');
  assert.equal(refused.answer?.status, 400, 'and was refused');
  assert.deepEqual(c.events, [], 'the client never acted on the refusal (no error, reset or close)');
  assert.equal(c.client.sessionId, sid);
  assert.equal(c.client.stats.resets, 0);
  assert.equal(c.client.state, 'open');
});

test('early polls through a proxy that cuts responses mid-body at random: exactly once, in order', { timeout: 90_000 }, async (t) => {
  const N = 5_000;
  const hl = await startHoldline(t, { maxMessageBytes: 1024, maxBatchBytes: 32 * 1024 });
  const seen = tap(hl.http);
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: hl.port }, faults: ['mid-response'], killRate: 0.3, seed: 20240611 });
  t.after(() => proxy.close());
  const expected = Array.from({ length: N }, (_, i) => payload100(i));
  let sending: Promise<unknown> | undefined;
  hl.server.once('session', (s: Session) => {
    sending = sendInBursts(s, expected, 500);
  });
  const c = recordingClient(`${proxy.url}/holdline`);
  t.after(() => c.client.close());
  await c.client.connect();
  await waitFor(() => c.got.length >= N, 60_000, () => `${c.got.length}/${N} messages; proxy ${json(proxy.stats)}`);
  await sending;
  await sleep(100);
  proxy.setKillRate(0);
  assertExactlyOnce(c.got, expected, 'server to client');
  assert.ok(proxy.stats.faults.midResponse > 0, `responses were cut: ${json(proxy.stats.faults)} (seed ${proxy.seed})`);
  assert.ok(c.events.every((e) => !e.startsWith('reset') && !e.startsWith('close')), c.events.join('\n'));
  const early = polls(seen).filter((p) => p.from !== undefined);
  assert.ok(early.length > 0, 'early polls were sent');
  t.diagnostic(`proxy: ${proxy.stats.requests} requests, ${proxy.stats.faults.midResponse} cut mid-response, ${early.length} early polls, seed ${proxy.seed}`);
});
