/**
 * The server's limits, each met by bad input: a message past
 * maxMessageBytes (413 message_too_large, the batch refused whole; exactly
 * the limit is accepted); a body past maxBatchBytes, by Content-Length,
 * streamed chunked, or declared (413 batch_too_large, the last two before
 * the upload finished); maxSessions reached (503 too_many_sessions; a
 * retried open of a live session still succeeds; closing frees room), also
 * under a flood of overlapping opens on a slow store (a describe block of
 * its own, with its own server). Meanwhile the first block's healthy session
 * keeps exchanging messages (badInputSuite() in helpers.ts, checked after
 * every case).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { MemoryStore, type StoredSession } from '../../server/index.js';
import { Cleanup, attemptId, post, startServer, type RawSession, type StartedServer, withTimeout } from '../helpers/server.js';
import { assertError, badInputSuite, closingChecks, json, MAX_BATCH, MAX_MESSAGE, MAX_SESSIONS, sendBody } from './helpers.js';

describe('bad input, with a healthy session exchanging messages throughout', () => {
  let h: StartedServer;
  let base: string;
  const suite = badInputSuite((started) => ({ h, base } = started));
  const { got, open } = suite;

  /** Start an upload that we keep open; resolves with the answer while our side is still writing. */
  async function uploadUnfinished(headers: Record<string, string>, chunks: string[]) {
    const body = new PassThrough();
    const pending = request(`${base}/send`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers }, body });
    for (const c of chunks) body.write(c);
    try {
      // The upload never ends on its own: an answer can only come from the server cutting it short.
      const res = await withTimeout(pending, 5_000, 'an answer while the upload was still open');
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text, uploadFinished: body.writableEnded };
    } finally {
      body.destroy();
      await pending.then((r) => r.body.dump(), () => undefined);
    }
  }

  it('an oversized message -> 413 message_too_large; the batch is refused whole', async () => {
    const s = await open();
    const tooBig: unknown[] = [
      'x'.repeat(MAX_MESSAGE + 1),
      '€'.repeat(Math.ceil((MAX_MESSAGE + 1) / 3)), // few characters, too many UTF-8 bytes
      { b: Buffer.alloc(MAX_MESSAGE + 1, 7).toString('base64') },
    ];
    for (const m of tooBig) {
      const res = await post(`${base}/send`, sendBody(s, 1, ['fits', m]));
      assertError(res, 413, 'message_too_large');
    }
    assert.deepEqual(got(s.sid), [], 'not even the message before the oversized one');
    const exact = 'y'.repeat(MAX_MESSAGE);
    const ok = await post(`${base}/send`, sendBody(s, 1, ['fits', exact]));
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(JSON.parse(ok.text), { ack: 2 });
    assert.deepEqual(got(s.sid), ['fits', exact]);
  });

  it('an oversized body with Content-Length -> 413 batch_too_large; exactly maxBatchBytes is accepted', async () => {
    const s = await open();
    const body = sendBody(s, 1, ['pad']);
    const atLimit = body + ' '.repeat(MAX_BATCH - Buffer.byteLength(body));
    const ok = await post(`${base}/send`, atLimit);
    assert.equal(ok.status, 200, ok.text);
    const res = await post(`${base}/send`, sendBody(s, 2, ['over']) + ' '.repeat(MAX_BATCH));
    assertError(res, 413, 'batch_too_large');
    assert.equal(res.headers.connection, 'close');
    assert.deepEqual(got(s.sid), ['pad']);
  });

  it('a chunked upload that streams past maxBatchBytes -> 413 before the client finished uploading', async () => {
    const s = await open();
    const head = `{"sid":"${s.sid}","token":"${s.token}","ack":0,"seq":1,"m":["`;
    const res = await uploadUnfinished({}, [head, ...Array.from({ length: 6 }, () => 'z'.repeat(1000))]);
    assert.equal(res.uploadFinished, false);
    assertError(res, 413, 'batch_too_large');
    assert.deepEqual(got(s.sid), []);
  });

  it('a declared Content-Length past maxBatchBytes -> 413 as soon as the headers arrive', async () => {
    const s = await open();
    const res = await uploadUnfinished({ 'content-length': String(10 * MAX_BATCH) }, [`{"sid":"${s.sid}"`]);
    assert.equal(res.uploadFinished, false);
    assertError(res, 413, 'batch_too_large');
  });

  it('maxSessions reached -> 503 too_many_sessions; a retried open of a live session still succeeds; closing frees room', async () => {
    const attempt = attemptId();
    const mine = await post(`${base}/open`, json({ v: 1, attempt }));
    assert.equal(mine.status, 200);
    const extra: RawSession[] = [];
    while (h.hl.sessionCount < MAX_SESSIONS) extra.push(await open());
    assertError(await post(`${base}/open`, json({ v: 1, attempt: attemptId() })), 503, 'too_many_sessions');
    // A retried open (its response was lost) is not a new session.
    const retried = await post(`${base}/open`, json({ v: 1, attempt }));
    assert.equal(retried.status, 200, retried.text);
    assert.equal((JSON.parse(retried.text) as RawSession).sid, (JSON.parse(mine.text) as RawSession).sid);
    for (const s of extra) {
      const res = await post(`${base}/close`, json(s));
      assert.equal(res.status, 200);
      assert.equal(res.text, '{}');
    }
    const reopened = await post(`${base}/open`, json({ v: 1, attempt: attemptId() }));
    assert.equal(reopened.status, 200, reopened.text);
  });

  closingChecks(suite);
});

describe('maxSessions under a flood of concurrent opens', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  /** A store with the latency of a networked one (Redis, say): create() takes a while. */
  class SlowStore extends MemoryStore {
    override async create(session: StoredSession, owner: string): Promise<void> {
      await sleep(20);
      return super.create(session, owner);
    }
  }

  it('never opens more than maxSessions, even when the opens overlap', async () => {
    const h = await startServer({ maxSessions: 2, store: new SlowStore() }, { path: '/hl' });
    cleanup.add(() => h.close());
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => post(`${h.url}/open`, json({ v: 1, attempt: attemptId() }))),
    );
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 503, 503, 503, 503]);
    for (const r of answers.filter((a) => a.status === 503)) assertError(r, 503, 'too_many_sessions');
    assert.equal(h.hl.sessionCount, 2);
  });
});
