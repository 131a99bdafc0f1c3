/**
 * The send path's ack order, over real HTTP on 127.0.0.1: a send batch of
 * more than 8 new messages is answered before it is delivered; a smaller one
 * is delivered first (an echo leaves on the poll before the send's answer).
 * Raw requests first, then the real client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session } from '../../server/index.js';
import { startHoldline } from '../helpers/holdline.js';
import { openRaw, post } from '../helpers/server.js';
import { answerOf, assertExactlyOnce, json, recordingClient, sessionOf, tap, waitFor } from './helpers.js';

test('a send batch of more than 8 new messages is answered before delivery; 8 or fewer are delivered first (raw)', async (t) => {
  const hl = await startHoldline(t, { pollTimeoutMs: 5_000 });
  let sendRes: ServerResponse | undefined;
  let pollRes: ServerResponse | undefined;
  /** At the moment the send's answer was written: had the held poll been answered? */
  let pollAnsweredBeforeSend: boolean | undefined;
  tap(hl.http, {
    onAnswer: (x) => {
      if (x.path === '/send' && pollRes) pollAnsweredBeforeSend = pollRes.writableEnded;
    },
  });
  hl.http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.endsWith('/send')) sendRes = res;
    if (req.url?.endsWith('/poll')) pollRes = res;
  });
  const s = await openRaw(hl.url);
  const session = sessionOf(hl, s);
  /** Per delivered message: was the send's answer already written? */
  const deliveries: Array<{ m: string; answered: boolean }> = [];
  let echo = false;
  session.on('message', (d) => {
    deliveries.push({ m: String(d), answered: sendRes?.writableEnded ?? false });
    if (echo) void session.send(`echo ${String(d)}`);
  });
  const send = async (seq: number, m: string[], ack = 0) => {
    deliveries.length = 0;
    const res = await post(`${hl.url}/send`, json({ sid: s.sid, token: s.token, ack, seq, m }));
    assert.equal(res.status, 200, res.text);
    return JSON.parse(res.text) as { ack: number };
  };
  const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `u${from + i}`);

  // 9 new messages: the answer is written before the first is delivered.
  assert.deepEqual(await send(1, texts(1, 9)), { ack: 9 });
  assert.deepEqual(deliveries.map((d) => d.m), texts(1, 9));
  assert.deepEqual(deliveries.map((d) => d.answered), Array(9).fill(true), 'answered before delivery');
  // 8: delivered, then answered.
  assert.deepEqual(await send(10, texts(10, 17)), { ack: 17 });
  assert.deepEqual(deliveries.map((d) => d.m), texts(10, 17));
  assert.deepEqual(deliveries.map((d) => d.answered), Array(8).fill(false), 'delivered before the answer');
  // It is the new messages that count: 12 with 4 already received is 8 new.
  assert.deepEqual(await send(14, texts(14, 25)), { ack: 25 });
  assert.deepEqual(deliveries.map((d) => d.m), texts(18, 25));
  assert.deepEqual(deliveries.map((d) => d.answered), Array(8).fill(false));
  // 10 with 1 already received is 9 new.
  assert.deepEqual(await send(25, texts(25, 34)), { ack: 34 });
  assert.deepEqual(deliveries.map((d) => d.m), texts(26, 34));
  assert.deepEqual(deliveries.map((d) => d.answered), Array(9).fill(true));
  // A full replay of a large batch delivers nothing and is answered.
  assert.deepEqual(await send(20, texts(20, 34)), { ack: 34 });
  assert.deepEqual(deliveries, []);

  // The echo case: a poll is held; a small batch's echoes leave on it before the send is answered.
  echo = true;
  let held = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 5_000 }));
  await waitFor(() => session.holdingPoll, 2_000, () => 'a held poll');
  pollAnsweredBeforeSend = undefined;
  await send(35, texts(35, 42));
  assert.equal(pollAnsweredBeforeSend, true, 'the poll carried the echoes before the send was answered');
  let a = answerOf(await held);
  assert.deepEqual(a.m, texts(35, 42).map((m) => `echo ${m}`));
  // A large batch: the send is answered first; the echoes follow on the poll.
  held = post(`${hl.url}/poll`, json({ sid: s.sid, token: s.token, ack: 8, hold: 5_000 }));
  await waitFor(() => session.holdingPoll, 2_000, () => 'a held poll');
  pollAnsweredBeforeSend = undefined;
  await send(43, texts(43, 52));
  assert.equal(pollAnsweredBeforeSend, false, 'the send was answered before the messages (and their echoes) went anywhere');
  a = answerOf(await held);
  assert.deepEqual(a.m, texts(43, 52).map((m) => `echo ${m}`));
  assert.equal(a.seq, 9);
});

test('with the real client: large send batches are acknowledged before delivery, small ones after, and all arrive once in order', async (t) => {
  const hl = await startHoldline(t);
  const sendRequests: ServerResponse[] = [];
  hl.http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.endsWith('/send')) sendRequests.push(res);
  });
  const deliveries: Array<{ m: string; request: number; answered: boolean }> = [];
  let session: Session | undefined;
  hl.server.once('session', (s: Session) => {
    session = s;
    s.on('message', (d) => {
      const res = sendRequests.at(-1);
      if (res === undefined) throw new Error(`message ${String(d)} arrived with no /send request seen`);
      deliveries.push({ m: String(d), request: sendRequests.length - 1, answered: res.writableEnded });
    });
  });
  const c = recordingClient(hl.url);
  t.after(() => c.client.close());
  await c.client.connect();
  assert.ok(session, 'the session opened');
  const expected = Array.from({ length: 60 }, (_, i) => `x${i}`);
  const acked: number[] = [];
  c.client.on('ack', (total) => acked.push(total));
  // A burst of 40 (one send in flight at a time: the rest ride in the next), then small ones.
  await Promise.all(expected.slice(0, 40).map((m) => c.client.send(m)));
  await waitFor(() => deliveries.length >= 40, 5_000, () => `${deliveries.length}/40 delivered`);
  for (const m of expected.slice(40)) {
    await c.client.send(m);
    await waitFor(() => deliveries.some((d) => d.m === m), 5_000, () => `${m} delivered`);
  }
  await waitFor(() => c.client.stats.messagesAcked === 60, 5_000, () => `${c.client.stats.messagesAcked}/60 acked`);
  assertExactlyOnce(deliveries.map((d) => d.m), expected, 'client to server');
  const byRequest = new Map<number, boolean[]>();
  for (const d of deliveries) byRequest.set(d.request, [...(byRequest.get(d.request) ?? []), d.answered]);
  let large = 0;
  let small = 0;
  for (const [request, answered] of byRequest) {
    const first = answered.length > 8;
    if (first) large++;
    else small++;
    assert.deepEqual(answered, Array(answered.length).fill(first), `send request ${request} of ${answered.length} messages`);
  }
  assert.ok(large > 0 && small > 0, `both kinds of batch were sent (${large} large, ${small} small)`);
  assert.equal(acked[acked.length - 1], 60);
});
