/**
 * Sequence numbers and acks that do not fit the session: a replayed batch
 * (200 with the same ack, nothing delivered twice; of a partly new batch only
 * the new tail), a skipped or far-future sequence number (409 bad_sequence;
 * 400 malformed_request past the safe integers), an ack for messages never
 * sent (400 bad_ack on poll and on send; the messages stay until a right ack
 * settles them). Meanwhile the file's healthy session keeps exchanging
 * messages (badInputSuite() in helpers.ts, checked after every case).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { post, type StartedServer } from '../helpers/server.js';
import { assertError, badInputSuite, closingChecks, pollBody, sendBody } from './helpers.js';

describe('bad input, with a healthy session exchanging messages throughout', () => {
  let h: StartedServer;
  let base: string;
  const suite = badInputSuite((started) => ({ h, base } = started));
  const { got, open } = suite;

  it('a replayed batch -> 200 with the same ack; its messages are not delivered twice', async () => {
    const s = await open();
    const first = await post(`${base}/send`, sendBody(s, 1, ['a', 'b']));
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.text), { ack: 2 });
    for (let i = 0; i < 3; i++) {
      const again = await post(`${base}/send`, sendBody(s, 1, ['a', 'b']));
      assert.equal(again.status, 200);
      assert.deepEqual(JSON.parse(again.text), { ack: 2 });
    }
    // Partly old, partly new: only the new tail is delivered.
    const overlap = await post(`${base}/send`, sendBody(s, 2, ['b', 'c']));
    assert.deepEqual(JSON.parse(overlap.text), { ack: 3 });
    assert.deepEqual(got(s.sid), ['a', 'b', 'c']);
  });

  it('a skipped sequence number -> 409 bad_sequence; nothing delivered; the expected batch still works', async () => {
    const s = await open();
    assertError(await post(`${base}/send`, sendBody(s, 2, ['skipped-one'])), 409, 'bad_sequence');
    await post(`${base}/send`, sendBody(s, 1, ['one']));
    assertError(await post(`${base}/send`, sendBody(s, 3, ['three'])), 409, 'bad_sequence');
    assert.deepEqual(got(s.sid), ['one']);
    const ok = await post(`${base}/send`, sendBody(s, 2, ['two']));
    assert.deepEqual(JSON.parse(ok.text), { ack: 2 });
    assert.deepEqual(got(s.sid), ['one', 'two']);
  });

  it('a far-future sequence number -> 409 bad_sequence (400 malformed_request past the safe integers)', async () => {
    const s = await open();
    for (const seq of [1_000_000, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
      assertError(await post(`${base}/send`, sendBody(s, seq, ['future'])), 409, 'bad_sequence');
    }
    assertError(await post(`${base}/send`, sendBody(s, 2 ** 53, ['future'])), 400, 'malformed_request');
    assertError(await post(`${base}/send`, `{"sid":"${s.sid}","token":"${s.token}","ack":0,"seq":1e400,"m":["x"]}`), 400, 'malformed_request');
    assert.deepEqual(got(s.sid), []);
  });

  it('an ack for messages never sent -> 400 bad_ack, on poll and on send; nothing delivered', async () => {
    const s = await open();
    assertError(await post(`${base}/poll`, pollBody(s, 1)), 400, 'bad_ack');
    assertError(await post(`${base}/send`, sendBody(s, 1, ['with-bad-ack'], 1)), 400, 'bad_ack');
    assert.deepEqual(got(s.sid), []);
    const session = h.hl.session(s.sid);
    assert.ok(session);
    await session.send('one');
    await session.send('two');
    assertError(await post(`${base}/poll`, pollBody(s, 3)), 400, 'bad_ack');
    assertError(await post(`${base}/poll`, pollBody(s, Number.MAX_SAFE_INTEGER)), 400, 'bad_ack');
    // The messages are still there, and a correct ack settles them.
    const res = await post(`${base}/poll`, pollBody(s, 0));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { ack: 0, seq: 1, m: ['one', 'two'] });
    const empty = await post(`${base}/poll`, pollBody(s, 2, 0));
    assert.deepEqual(JSON.parse(empty.text), { ack: 0, seq: 3, m: [] });
    assert.equal(session.bufferedAmount, 0);
  });

  closingChecks(suite);
});
