/**
 * Holdline-Next, the server's announcement of an early poll, over real HTTP
 * on 127.0.0.1:
 *
 * - A poll answer whose `m` is EARLY_POLL_BYTES or more carries
 *   `Holdline-Next: seq + count`; a smaller one does not.
 * - Sends with no poll held read the outbound stream ahead only when an early
 *   poll is expected, and then once.
 * - A large answer written while the application waits for acks carries no
 *   Holdline-Next (an early poll would only get an empty answer); the header
 *   is back once nothing waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { EARLY_POLL_BYTES, NEXT_HEADER, type Payload } from '../../shared/index.js';
import { startHoldline } from '../helpers/holdline.js';
import { ReadCountingStore } from '../helpers/read-counting-store.js';
import { openRaw, post } from '../helpers/server.js';
import { answerOf, json, payload100, sessionOf, waitFor } from './helpers.js';

test('a poll answer of EARLY_POLL_BYTES or more carries Holdline-Next = seq + count; a smaller one does not', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000, maxMessageBytes: 16 * 1024, maxBatchBytes: 64 * 1024, allowedOrigins: ['https://app.example'] });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  let ack = 0;
  const poll = async (headers?: Record<string, string>) => {
    const a = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack, hold: 0 }), headers));
    if (a.m.length > 0) ack = a.seq + a.m.length - 1;
    return a;
  };
  assert.equal(EARLY_POLL_BYTES, 16 * 1024);

  // Empty (the heartbeat): no header.
  assert.equal((await poll()).next, undefined, 'an empty answer');

  // Small: three messages.
  await Promise.all(['a', 'b', 'c'].map((m) => session.send(m)));
  let a = await poll();
  assert.deepEqual(a.m, ['a', 'b', 'c']);
  assert.equal(a.next, undefined, 'a small answer has no Holdline-Next');

  // Large: 200 messages of 100 bytes, m = 2 + 200 * 102 + 199 = 20,601 bytes.
  await Promise.all(Array.from({ length: 200 }, (_, i) => session.send(payload100(i))));
  a = await poll();
  assert.equal(a.seq, 4);
  assert.equal(a.m.length, 200);
  assert.equal(a.next, 204, 'seq + count');
  assert.ok(Buffer.byteLength(json(a.m)) >= EARLY_POLL_BYTES, 'the batch is large');

  // The threshold is on the size of m (brackets, quotes, escapes, UTF-8 bytes), exactly.
  const boundary: Array<[Payload, boolean, string]> = [
    ['x'.repeat(EARLY_POLL_BYTES - 4), true, 'm of exactly EARLY_POLL_BYTES'],
    ['x'.repeat(EARLY_POLL_BYTES - 5), false, 'm one byte short'],
    ['é'.repeat((EARLY_POLL_BYTES - 4) / 2), true, 'UTF-8 bytes, not characters, count'],
    ['"'.repeat((EARLY_POLL_BYTES - 4) / 2), true, 'a payload half the size whose JSON escapes reach it'],
    ['"'.repeat((EARLY_POLL_BYTES - 4) / 2 - 1), false, 'escaped, one character short'],
    [new Uint8Array(12_285), true, 'binary: {"b":"<16,380 base64>"} plus brackets'],
    [new Uint8Array(12_000), false, 'binary, smaller'],
  ];
  for (const [m, expectHeader, what] of boundary) {
    await session.send(m);
    a = await poll();
    assert.equal(a.m.length, 1, what);
    assert.equal(a.next, expectHeader ? a.seq + 1 : undefined, what);
  }

  // A batch cut short by maxBatchBytes: the header names the first message it left out.
  await Promise.all(Array.from({ length: 1000 }, (_, i) => session.send(payload100(i))));
  const firstOfStream = ack + 1;
  a = await poll();
  assert.equal(a.seq, firstOfStream);
  assert.ok(a.m.length > 100 && a.m.length < 1000, `a partial batch (${a.m.length} messages)`);
  assert.equal(a.next, a.seq + a.m.length);
  const afterIt = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: a.seq + a.m.length - 1, hold: 0 })));
  assert.equal(afterIt.seq, a.next, 'the next batch starts where the header said');
  ack = afterIt.seq + afterIt.m.length - 1;
  while (ack < firstOfStream + 999) {
    const more = await poll();
    assert.ok(more.m.length > 0, 'the rest of the stream comes');
    if (Buffer.byteLength(json(more.m)) >= EARLY_POLL_BYTES) assert.equal(more.next, more.seq + more.m.length);
    else assert.equal(more.next, undefined, 'the small tail');
  }

  // Cross-origin: the page may read the header.
  await Promise.all(Array.from({ length: 200 }, (_, i) => session.send(payload100(i))));
  const cors = await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack, hold: 0 }), { origin: 'https://app.example' });
  a = answerOf(cors);
  assert.equal(a.next, a.seq + 200);
  assert.equal(cors.headers['access-control-allow-origin'], 'https://app.example');
  assert.match(String(cors.headers['access-control-expose-headers']), new RegExp(`(^|,)\\s*${NEXT_HEADER}\\s*(,|$)`, 'i'));
});

test('sends with no poll held read the outbound stream only when an early poll is expected, and then once', async (t) => {
  // Counts the batches the session reads (and JSON-encodes) from the store.
  const store = new ReadCountingStore();
  const hl = await startHoldline(t, { store, pollTimeoutMs: 1_000 });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  // No poll was ever answered with Holdline-Next: no early poll is expected, nothing is read ahead.
  for (let i = 0; i < 300; i++) await session.send(payload100(i));
  assert.equal(store.reads, 0, 'sequential sends with no poll held read nothing (they used to re-read the pending batch on every send)');
  // A large answer: an early poll is expected now.
  const first = await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 0 }));
  const next = Number(first.headers[NEXT_HEADER.toLowerCase()]);
  assert.equal(next, 301, 'the 300 messages (30 KB) went in one answer with Holdline-Next');
  const readsAfterAnswer = store.reads;
  for (let i = 300; i < 600; i++) await session.send(payload100(i));
  await sleep(50);
  const readAhead = store.reads - readsAfterAnswer;
  assert.equal(readAhead, 1, 'one batch read ahead for the expected early poll, however many sends came meanwhile');
  // The early poll gets all 300 new messages, reading again at most once (if sends came after the read-ahead).
  const early = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 0, from: next })));
  assert.equal(early.seq, 301);
  assert.equal(early.m.length, 300);
  assert.ok(store.reads - readsAfterAnswer <= 2, `at most one more read for the poll (${store.reads - readsAfterAnswer} in all)`);
});

test('an application that refills on \'flush\' has its next batch read ahead once, and the early poll is answered with that read, not a second one', async (t) => {
  // The shape of a streaming sender: it fills the window, waits for 'flush'
  // (the answer is written), and fills it again in one turn. That commit
  // comes while no poll is held and the Hold has nothing else to keep: the
  // read-ahead it schedules must still find the Hold when it runs, and the
  // early poll must find the batch it read.
  const store = new ReadCountingStore();
  const hl = await startHoldline(t, { store, pollTimeoutMs: 2_000 });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  const fill = (from: number) => {
    for (let i = from; i < from + 300; i++) void session.send(payload100(i));
  };
  let refilled = false;
  session.once('flush', () => {
    fill(300);
    refilled = true;
  });
  // A held poll, answered by the first 300 (30 KB: with Holdline-Next).
  const held = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0 }));
  await waitFor(() => session.holdingPoll, 2_000, () => 'the poll to be held');
  const readsBefore = store.reads;
  fill(0);
  const first = answerOf(await held);
  assert.equal(first.m.length, 300);
  assert.equal(first.next, 301);
  await waitFor(() => refilled, 2_000, () => "the refill on 'flush'");
  await sleep(50);
  assert.equal(store.reads - readsBefore, 2, 'one read for the held poll\'s answer, one read ahead of the refill for the early poll');
  const early = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, from: 301 })));
  assert.equal(early.seq, 301);
  assert.equal(early.m.length, 300);
  assert.equal(store.reads - readsBefore, 2, 'the early poll is answered with the batch read ahead (no third read)');
});

test('a large answer written while the application waits for acks carries no Holdline-Next; the poll with the ack brings the rest in one answer', async (t) => {
  // Room for 200 messages of 100 bytes (each counted with 64 bytes of overhead).
  const hl = await startHoldline(t, { pollTimeoutMs: 2_000, maxMessageBytes: 16 * 1024, maxQueuedBytes: 200 * 164, maxBatchBytes: 256 * 1024 });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  // An ack-paced sender: 600 messages, each send() awaited.
  let sent = 0;
  const sender = (async () => {
    for (let i = 0; i < 600; i++) {
      await session.send(payload100(i));
      sent++;
    }
  })();
  await waitFor(() => session.sendWaiting, 2_000, () => `the sender waits for acks (sent ${sent})`);
  const first = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 0 })));
  assert.equal(first.m.length, 200, 'the window');
  assert.ok(Buffer.byteLength(json(first.m)) >= EARLY_POLL_BYTES, 'the batch is large');
  assert.equal(first.next, undefined, 'no Holdline-Next: an early poll would only get an empty answer');
  // The poll carrying the ack lets the sender go on: its sends of that turn come in this poll's answer, not one by one.
  const second = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 200, hold: 1_000 })));
  assert.equal(second.seq, 201);
  assert.equal(second.m.length, 200, 'the whole refilled window in one answer');
  assert.equal(second.next, undefined, 'the sender waits again');
  // The last window: the sender has nothing more to send, so nothing waits, and the header is back.
  const third = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 400, hold: 1_000 })));
  assert.equal(third.m.length, 200);
  assert.equal(third.next, 601, 'seq + count, once nothing waits');
  await sender;
  assert.equal(sent, 600);
  const last = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 600, hold: 0 })));
  assert.equal(last.m.length, 0);
});

test("a large answer written while the application listens for 'drain' carries no Holdline-Next; a 'drain' listener set while an early poll is held has it answered", async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 10_000, maxMessageBytes: 16 * 1024 });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  // A sender paced by 'drain' (everything acknowledged): a window of 200, then it waits.
  const window = () => {
    for (let i = 0; i < 200; i++) void session.send(payload100(i));
  };
  window();
  const drained = new Promise<void>((resolve) => session.once('drain', () => resolve()));
  const first = answerOf(await post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 0 })));
  assert.equal(first.m.length, 200);
  assert.ok(Buffer.byteLength(json(first.m)) >= EARLY_POLL_BYTES, 'the batch is large');
  assert.equal(first.next, undefined, "no Holdline-Next while the application waits for 'drain'");
  // The client's poll with the ack: 'drain', and the sender goes on.
  const held = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 200, hold: 8_000 }));
  await drained;
  // No listener now: the next large answer offers an early poll again.
  window();
  const second = answerOf(await held);
  assert.equal(second.m.length, 200);
  assert.equal(second.next, 401, 'seq + count, with no one waiting for acks');
  // The early poll (its ack short of that batch) is held, the stream paused; then the application starts waiting for 'drain'.
  const early = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 200, from: 401, hold: 8_000 }));
  await waitFor(() => hl.server.metrics().heldPolls === 1, 2_000, 'the early poll held');
  session.once('drain', () => undefined);
  // Answered because of the listener, not because the early poll's hold ran out (EARLY_HOLD_MS, a timer):
  // a setImmediate runs before the loop's next timers phase.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(hl.server.metrics().heldPolls, 0, "the early poll is answered once a 'drain' listener is set");
  const answer = answerOf(await early);
  assert.equal(answer.m.length, 0, 'empty: the next poll carries the ack');
});
