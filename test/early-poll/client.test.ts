/**
 * The real client's early polls on a sound link, over real HTTP on 127.0.0.1:
 *
 * - On a large stream the client sends early polls, each from a Holdline-Next
 *   the server sent and before the answer it follows was read; every message
 *   arrives once, in order.
 * - The ack of the last batch of a burst reaches the server soon (an early
 *   poll is held briefly), not after the whole hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Session } from '../../server/index.js';
import { EARLY_POLL_BYTES, NEXT_HEADER } from '../../shared/index.js';
import { startHoldline } from '../helpers/holdline.js';
import { assertExactlyOnce, json, payload100, polls, recordingClient, sendInBursts, tap, waitFor } from './helpers.js';

test('the client sends early polls on a large stream; every message arrives once, in order', { timeout: 60_000 }, async (t) => {
  const N = 5_000;
  const hl = await startHoldline(t, { maxMessageBytes: 1024, maxBatchBytes: 32 * 1024 });
  const seen = tap(hl.http);
  const expected = Array.from({ length: N }, (_, i) => payload100(i));
  let sending: Promise<unknown> | undefined;
  hl.server.once('session', (s: Session) => {
    sending = sendInBursts(s, expected, 1_000);
  });
  const c = recordingClient(hl.url);
  t.after(() => c.client.close());
  await c.client.connect();
  await waitFor(() => c.got.length >= N, 30_000, () => `${c.got.length}/${N} messages`);
  await sending;
  await sleep(100); // a late duplicate would show
  assertExactlyOnce(c.got, expected, 'server to client');
  assert.deepEqual(c.events, []);

  const all = polls(seen);
  const early = all.flatMap(({ ack, from }) => (from === undefined ? [] : [{ ack, from }]));
  assert.ok(early.length > 0, `polls with "from": ${early.length} of ${all.length}`);
  for (const p of early) {
    // Sent as soon as the headers of the answer before it were in, before its body was
    // taken in: the ack does not cover that answer's batch yet.
    assert.ok(p.from > p.ack + 1, `an early poll (ack ${p.ack}, from ${p.from}) was sent before the answer it follows was read`);
    assert.ok(p.from <= N + 1, `from ${p.from} is at most lastSeq + 1`);
  }
  // Each early poll starts where a large answer ended, as its Holdline-Next said.
  const nexts = new Set(seen.filter((x) => x.path === '/poll' && x.answer?.headers[NEXT_HEADER] !== undefined).map((x) => Number(x.answer?.headers[NEXT_HEADER])));
  for (const p of early) assert.ok(nexts.has(p.from), `from ${p.from} is a Holdline-Next the server sent`);
  // No large answer without the header, no small one with it.
  for (const x of seen) {
    if (x.path !== '/poll' || !x.answer || x.answer.status !== 200) continue;
    const o = JSON.parse(x.answer.body) as { seq: number; m: unknown[] };
    const large = Buffer.byteLength(json(o.m)) >= EARLY_POLL_BYTES;
    assert.equal(x.answer.headers[NEXT_HEADER], large ? String(o.seq + o.m.length) : undefined);
  }
});

test('the ack for the last large batch of a burst reaches the server without waiting for the held early poll', {
  timeout: 30_000,
}, async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 20_000, maxMessageBytes: 1024, maxBatchBytes: 64 * 1024 });
  let session: Session | undefined;
  let drains = 0;
  let unackedAtClose: number | undefined;
  hl.server.once('session', (s: Session) => {
    session = s;
    s.on('drain', () => drains++);
    s.on('close', (_reason, unacked) => (unackedAtClose = unacked.length));
  });
  const c = recordingClient(hl.url);
  await c.client.connect();
  assert.ok(session, 'the session opened');
  const s = session;
  await waitFor(() => s.holdingPoll, 5_000, () => 'the first poll');
  await Promise.all(Array.from({ length: 200 }, (_, i) => s.send(payload100(i)))); // one large batch
  await waitFor(() => c.got.length >= 200, 5_000, () => `${c.got.length}/200 messages`);
  try {
    await waitFor(() => s.bufferedAmount === 0, 3_000, () => `the client's ack (bufferedAmount ${s.bufferedAmount}, well within the 20 s hold)`);
    assert.equal(drains, 1);
  } finally {
    await c.client.close();
    await waitFor(() => unackedAtClose !== undefined, 2_000, () => 'the session to close');
  }
  assert.equal(unackedAtClose, 0, 'messages the client received are not reported as unacknowledged on close');
});
