/**
 * The work one request costs is bounded and done after the session is
 * known: opens, polls and closes take small bodies only (deeply nested JSON
 * never reaches the parser in bulk), a send's messages are decoded only for
 * a known session and only up to maxBatchMessages of them, and a poll answer
 * carries at most maxBatchMessages messages however long the queue.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Session } from '../server/index.js';
import { Cleanup, errorCode, openRaw, post, startServer } from './helpers/server.js';

const json = (o: unknown) => JSON.stringify(o);

describe('bounded work per request', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('open, poll and close bodies over 4 KiB are refused (413 batch_too_large), deeply nested JSON included', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const nested = '['.repeat(100_000) + ']'.repeat(100_000);
    for (const endpoint of ['open', 'poll', 'close']) {
      const res = await post(`${h.url}/${endpoint}`, nested);
      assert.equal(res.status, 413, endpoint);
      assert.equal(errorCode(res), 'batch_too_large', endpoint);
    }
    // A small body of the same kind is an ordinary malformed request.
    const res = await post(`${h.url}/open`, '['.repeat(1000) + ']'.repeat(1000));
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'malformed_request');
  });

  it('the open answer names maxBatchMessages', async () => {
    const h = await startServer({ maxBatchMessages: 123 });
    cleanup.add(() => h.close());
    const res = await post(`${h.url}/open`, json({ v: 1, attempt: 'cost-attempt-1' }));
    assert.equal((JSON.parse(res.text) as { maxBatchMessages: unknown }).maxBatchMessages, 123);
  });

  it('a send to an unknown session is refused before its messages are decoded: bad base64 in it is not what is reported', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const m = Array.from({ length: 50_000 }, () => ({ b: 'not base64!' }));
    const res = await post(`${h.url}/send`, json({ sid: 'no-such-session-1', token: 'x'.repeat(22), ack: 0, seq: 1, m }));
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'session_unknown', 'the session is looked up first');
  });

  it('a send of more than maxBatchMessages messages is refused (413 batch_too_large), and nothing of it is delivered', async () => {
    const h = await startServer({ maxBatchMessages: 100 });
    cleanup.add(() => h.close());
    const got: unknown[] = [];
    h.hl.on('session', (s) => s.on('message', (m) => got.push(m)));
    const s = await openRaw(h.url);
    const over = await post(`${h.url}/send`, json({ ...s, ack: 0, seq: 1, m: Array.from({ length: 101 }, (_, i) => `m${i}`) }));
    assert.equal(over.status, 413);
    assert.equal(errorCode(over), 'batch_too_large');
    const fits = await post(`${h.url}/send`, json({ ...s, ack: 0, seq: 1, m: Array.from({ length: 100 }, (_, i) => `m${i}`) }));
    assert.equal(fits.status, 200);
    assert.equal(got.length, 100);
    assert.equal(got[0], 'm0');
  });

  it('a poll answer carries at most maxBatchMessages messages; the rest come on the next polls', async () => {
    const h = await startServer({ maxBatchMessages: 10 });
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    for (let i = 0; i < 25; i++) void session.send(`q${i}`);
    await session.committed();
    const lengths: number[] = [];
    let ack = 0;
    for (let round = 0; round < 3; round++) {
      const res = await post(`${h.url}/poll`, json({ ...s, ack, hold: 0 }));
      const answer = JSON.parse(res.text) as { seq: number; m: string[] };
      lengths.push(answer.m.length);
      assert.equal(answer.m[0], `q${ack}`);
      ack = answer.seq + answer.m.length - 1;
    }
    assert.deepEqual(lengths, [10, 10, 5]);
  });
});
