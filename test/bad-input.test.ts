/**
 * Bad input, each case: malformed or truncated body, wrong content type,
 * unknown session, missing or wrong credential, oversized message or batch,
 * replayed, skipped or far-future sequence numbers, an ack for messages never
 * sent, invalid UTF-8 or a bad binary tag. Each gets the right status and code,
 * and a concurrent healthy session keeps exchanging messages with nothing lost.
 *
 * One server for the whole file. A healthy HoldlineClient exchanges a steady
 * stream of numbered messages both ways (client -> server, echoed back, plus
 * the server's own stream) from the first test to the last; the bad requests
 * are raw HTTP, sent meanwhile on other connections (and some aimed at the
 * healthy session itself).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { HoldlineClient, type HoldlineError, type Payload, type ResetEvent } from '../client/index.js';
import { MemoryStore, type CloseReason, type Session, type StoredSession } from '../server/index.js';
import {
  Cleanup,
  Condition,
  attemptId,
  errorCode,
  nextMessage,
  openRaw,
  post,
  raw,
  startServer,
  type RawResponse,
  type RawSession,
  type StartedServer,
  withTimeout,
} from './helpers/server.js';
import { sessionIdOf } from './helpers/holdline.js';

const MAX_MESSAGE = 1024;
const MAX_BATCH = 4096;
const MAX_SESSIONS = 40;
const HOOK_ERROR = 'authenticate hook exploded';

/** Assert an error answer: exact status and code, and the headers every error carries. */
function assertError(res: RawResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.equal(errorCode(res), code, `body: ${res.text}`);
  const body = JSON.parse(res.text) as { error: { message: unknown } };
  assert.equal(typeof body.error.message, 'string');
  assert.match(String(res.headers['content-type']), /^application\/json\b/);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)));
  assert.equal(res.headers['transfer-encoding'], undefined);
}

const json = (v: unknown) => JSON.stringify(v);

describe('bad input, with a healthy session exchanging messages throughout', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  let h: StartedServer;
  let base: string;
  let client: HoldlineClient;
  /** Every message each server-side session received, by session id. */
  const received = new Map<string, Payload[]>();
  const serverErrors: unknown[] = [];
  const changed = new Condition();

  // The healthy stream.
  let running = true;
  let clientSent = 0;
  let serverSent = 0;
  const clientGot: string[] = [];
  const clientEvents: string[] = [];
  let producers: Promise<void>[] = [];

  const healthySid = () => sessionIdOf(client);
  const got = (sid: string) => received.get(sid) ?? [];

  before(async () => {
    h = await startServer(
      {
        maxMessageBytes: MAX_MESSAGE,
        maxBatchBytes: MAX_BATCH,
        maxSessions: MAX_SESSIONS,
        pollTimeoutMs: 1_000,
        authenticate: (req) => {
          if (req.headers['x-test-throw'] !== undefined) return Promise.reject(new Error(HOOK_ERROR));
          return req.headers['x-test-deny'] === undefined;
        },
      },
      { path: '/hl' },
    );
    cleanup.add(() => h.close());
    base = h.url;
    h.hl.on('error', (e) => serverErrors.push(e));
    h.hl.on('session', (s: Session) => {
      const list: Payload[] = [];
      received.set(s.id, list);
      s.on('message', (d) => {
        list.push(d);
        changed.notify();
        // Echo the healthy client's numbered messages.
        if (typeof d === 'string' && d.startsWith('c-')) s.send(`e-${d.slice(2)}`).catch((e: unknown) => serverErrors.push(e));
      });
    });

    client = new HoldlineClient(base, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    cleanup.add(() => client.close());
    client.on('message', (d) => {
      clientGot.push(typeof d === 'string' ? d : `binary:${d.byteLength}`);
      changed.notify();
    });
    client.on('error', (e: HoldlineError) => clientEvents.push(`error ${e.code}: ${e.message}`));
    client.on('reset', (e: ResetEvent) => clientEvents.push(`reset ${e.reason.code}`));
    client.on('reconnecting', (e) => clientEvents.push(`reconnecting ${e.error.code}: ${e.error.message}`));
    client.on('close', (r: CloseReason) => clientEvents.push(`close ${r.code}`));
    await client.connect();
    const session = h.hl.session(healthySid());
    assert.ok(session, 'the healthy session exists on the server');

    cleanup.add(async () => {
      running = false;
      await Promise.allSettled(producers);
    });
    // A failed send ends its producer and is recorded: the last test reports it.
    const failed = (who: string) => (e: unknown) => {
      running = false;
      clientEvents.push(`${who} send failed: ${String(e)}`);
    };
    producers = [
      (async () => {
        while (running) {
          await client.send(`c-${clientSent}`);
          clientSent++;
          await sleep(2);
        }
      })().catch(failed('client')),
      (async () => {
        while (running) {
          await session.send(`s-${serverSent}`);
          serverSent++;
          await sleep(3);
        }
      })().catch(failed('server')),
    ];
    // The stream is flowing before the first bad request.
    await changed.until(() => got(healthySid()).length >= 5 && clientGot.length >= 5, 5_000, () => 'the healthy stream to start');
  });

  // After every bad case the healthy session is still exchanging: new messages
  // arrive on both ends after the case is over.
  afterEach(async () => {
    if (!running) return;
    const sid = healthySid();
    const [serverMark, clientMark] = [got(sid).length, clientGot.length];
    await changed.until(
      () => got(sid).length > serverMark + 2 && clientGot.length > clientMark + 2,
      5_000,
      () => `the healthy stream to go on (server ${got(sid).length - serverMark} new, client ${clientGot.length - clientMark} new)`,
    );
  });

  /** A raw session of our own, to spoil. */
  const open = (): Promise<RawSession> => openRaw(base);
  const sendBody = (s: RawSession, seq: number, m: unknown[], ack = 0) => json({ sid: s.sid, token: s.token, ack, seq, m });
  const pollBody = (s: RawSession, ack = 0, hold = 0) => json({ sid: s.sid, token: s.token, ack, hold });

  it('malformed body: not JSON or not an object -> 400 malformed_request, on every endpoint', async () => {
    for (const endpoint of ['open', 'poll', 'send', 'close']) {
      for (const body of ['{', 'not json', '{"v":1,}', "{'v':1}", '', 'null', '[]', '42', '"text"']) {
        assertError(await post(`${base}/${endpoint}`, body), 400, 'malformed_request');
      }
    }
  });

  it('malformed body: fields missing or mistyped -> 400 malformed_request', async () => {
    const s = await open();
    assertError(await post(`${base}/open`, json({ v: 1 })), 400, 'malformed_request');
    assertError(await post(`${base}/open`, json({ v: 1, attempt: 'short' })), 400, 'malformed_request');
    assertError(await post(`${base}/poll`, json({ sid: s.sid, token: s.token })), 400, 'malformed_request');
    assertError(await post(`${base}/poll`, json({ sid: s.sid, token: s.token, ack: -1 })), 400, 'malformed_request');
    assertError(await post(`${base}/poll`, json({ sid: s.sid, token: s.token, ack: 0, hold: 'long' })), 400, 'malformed_request');
    assertError(await post(`${base}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 1 })), 400, 'malformed_request');
    assertError(await post(`${base}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 0, m: ['x'] })), 400, 'malformed_request');
    assertError(await post(`${base}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 1.5, m: ['x'] })), 400, 'malformed_request');
    assertError(await post(`${base}/send`, json({ sid: s.sid, token: s.token, ack: 0, seq: 1, m: 'x' })), 400, 'malformed_request');
    assertError(await post(`${base}/send`, json({ token: s.token, ack: 0, seq: 1, m: [] })), 400, 'malformed_request');
    assert.deepEqual(got(s.sid), [], 'nothing was delivered');
  });

  it('truncated body: cut JSON -> 400 malformed_request; a cut UTF-8 sequence -> 400 bad_encoding; nothing delivered', async () => {
    const s = await open();
    const full = sendBody(s, 1, ['one', 'two']);
    for (const cut of [1, 10, full.length - 10, full.length - 1]) {
      assertError(await post(`${base}/send`, full.slice(0, cut)), 400, 'malformed_request');
    }
    const euro = Buffer.from('€');
    const cutUtf8 = Buffer.concat([Buffer.from(sendBody(s, 1, ['x']).slice(0, -3)), euro.subarray(0, 2)]);
    assertError(await post(`${base}/send`, cutUtf8), 400, 'bad_encoding');
    assert.deepEqual(got(s.sid), []);
    const ok = await post(`${base}/send`, full);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(got(s.sid), ['one', 'two'], 'the whole batch, once, after the truncated attempts');
  });

  it('truncated body: the connection ends before Content-Length bytes arrived -> nothing delivered, session intact', async () => {
    const s = await open();
    const body = sendBody(s, 1, ['lost?']);
    const { port } = new URL(base);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(port), '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error('the server neither answered nor closed the connection'));
      }, 5_000);
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
      sock.write(
        `POST /hl/send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body) + 50}\r\n\r\n${body}`,
      );
      sock.end();
    });
    assert.doesNotMatch(answer, /^HTTP\/1\.1 2\d\d/, `no success for a truncated body: ${answer}`);
    assert.deepEqual(got(s.sid), []);
    const ok = await post(`${base}/send`, sendBody(s, 1, ['first']));
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(got(s.sid), ['first']);
  });

  it('wrong or missing content type -> 415 unsupported_content_type', async () => {
    const body = json({ v: 1, attempt: attemptId() });
    for (const type of ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/html', 'text/plainish', 'plain/text']) {
      assertError(await post(`${base}/open`, body, { 'content-type': type }), 415, 'unsupported_content_type');
    }
    assertError(await post(`${base}/open`, body, { 'content-type': undefined }), 415, 'unsupported_content_type');
    const s = await open();
    assertError(await post(`${base}/send`, sendBody(s, 1, ['x']), { 'content-type': 'application/json' }), 415, 'unsupported_content_type');
    assert.deepEqual(got(s.sid), []);
  });

  it('a method other than POST -> 405 method_not_allowed with Allow', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
      for (const endpoint of ['open', 'poll', 'send', 'close']) {
        const res = await raw(`${base}/${endpoint}`, { method, body: method === 'GET' ? undefined : '{}' });
        assertError(res, 405, 'method_not_allowed');
        assert.match(String(res.headers.allow), /\bPOST\b/);
      }
    }
  });

  it('an unknown path -> 404 not_found', async () => {
    const origin = new URL(base).origin;
    for (const url of [`${base}/nope`, `${base}/open/extra`, `${base}/`, base, `${base}/OPEN`, `${origin}/elsewhere`, `${origin}/hlx/open`]) {
      assertError(await post(url, '{}'), 404, 'not_found');
    }
  });

  it('an unknown session -> 404 session_unknown', async () => {
    const ghost = { sid: 'AAAAAAAAAAAAAAAAAAAAA', token: 'x'.repeat(32) };
    assertError(await post(`${base}/poll`, pollBody(ghost)), 404, 'session_unknown');
    assertError(await post(`${base}/send`, sendBody(ghost, 1, ['x'])), 404, 'session_unknown');
    assertError(await post(`${base}/close`, json(ghost)), 404, 'session_unknown');
  });

  it('a missing or wrong token -> 403 bad_credential, also against the healthy session', async () => {
    const s = await open();
    const healthy = healthySid();
    for (const sid of [s.sid, healthy]) {
      const wrongs: Array<Record<string, unknown>> = [
        { sid }, // missing
        { sid, token: 'x'.repeat(32) }, // wrong, right length
        { sid, token: 'short' }, // wrong length
        { sid, token: '' },
        { sid, token: 12345 },
        { sid, token: null },
        { sid, token: sid === s.sid ? `${s.token.slice(0, -1)}!` : s.token }, // off by one; another session's token
      ];
      for (const cred of wrongs) {
        assertError(await post(`${base}/poll`, json({ ...cred, ack: 0, hold: 0 })), 403, 'bad_credential');
        assertError(await post(`${base}/send`, json({ ...cred, ack: 0, seq: 1, m: ['intruder'] })), 403, 'bad_credential');
        assertError(await post(`${base}/close`, json(cred)), 403, 'bad_credential');
      }
    }
    assert.deepEqual(got(s.sid), []);
    assert.ok(!got(healthy).includes('intruder'), 'nothing injected into the healthy session');
    assert.ok(h.hl.session(healthy), 'the healthy session was not closed');
    assert.ok(h.hl.session(s.sid), 'the raw session was not closed');
  });

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

  it('invalid UTF-8 in the body -> 400 bad_encoding', async () => {
    const s = await open();
    const [head, tail] = sendBody(s, 1, ['@@']).split('@@');
    assert.ok(head !== undefined && tail !== undefined, 'the body has the marker');
    const bad = [
      Buffer.from([0xff]),
      Buffer.from([0xc0, 0xaf]), // overlong '/'
      Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate, UTF-8-encoded
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // past U+10FFFF
      Buffer.from([0x80]), // a lone continuation byte
    ];
    for (const b of bad) {
      assertError(await post(`${base}/send`, Buffer.concat([Buffer.from(head), b, Buffer.from(tail)])), 400, 'bad_encoding');
    }
    assertError(await post(`${base}/open`, Buffer.concat([Buffer.from('{"v":1,"attempt":"'), Buffer.from([0xfe]), Buffer.from('abcdefgh"}')])), 400, 'bad_encoding');
    assert.deepEqual(got(s.sid), []);
  });

  it('a bad binary tag -> 400 bad_encoding; the batch is refused whole', async () => {
    const s = await open();
    for (const m of [{ x: 'AAAA' }, { b: 123 }, { b: 'not base64!' }, { b: 'AAAA', x: 1 }, { b: 'AAA' }, 42, null, ['a']]) {
      assertError(await post(`${base}/send`, sendBody(s, 1, ['fine', m])), 400, 'bad_encoding');
    }
    assert.deepEqual(got(s.sid), []);
    const ok = await post(`${base}/send`, sendBody(s, 1, ['fine', { b: 'AAEC/w==' }]));
    assert.equal(ok.status, 200);
    const [text, bin] = got(s.sid);
    assert.equal(text, 'fine');
    assert.ok(bin instanceof Uint8Array);
    assert.deepEqual(Array.from(bin), [0, 1, 2, 255]);
  });

  it('a wrong protocol version on open -> 400 unsupported_version', async () => {
    const before = h.hl.sessionCount;
    for (const v of [0, 2, 99, -1]) {
      assertError(await post(`${base}/open`, json({ v, attempt: attemptId() })), 400, 'unsupported_version');
    }
    assertError(await post(`${base}/open`, json({ v: '1', attempt: attemptId() })), 400, 'malformed_request');
    assert.equal(h.hl.sessionCount, before, 'no session was opened');
  });

  it('the authenticate hook refusing -> 403 unauthorized (false, or a rejected promise)', async () => {
    const before = h.hl.sessionCount;
    assertError(await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { 'x-test-deny': '1' }), 403, 'unauthorized');
    assertError(await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { 'x-test-throw': '1' }), 403, 'unauthorized');
    assert.equal(h.hl.sessionCount, before);
    assert.ok(
      serverErrors.some((e) => e instanceof Error && e.message === HOOK_ERROR),
      'the hook failure is reported to the application',
    );
  });

  it('a cross-origin request from an origin not allowed -> 403 origin_not_allowed', async () => {
    const res = await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { origin: 'https://evil.example' });
    assertError(res, 403, 'origin_not_allowed');
    // The refusal is readable by the refused page, so its client fails at once with the code.
    assert.equal(res.headers['access-control-allow-origin'], 'https://evil.example');
    const open = await post(`${base}/open`, json({ v: 1, attempt: attemptId() }), { origin: 'https://evil.example' });
    assert.equal(open.status, 403, 'refused, not served');
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

  it('requests on a closed session: poll gets the close frame, send gets 410 session_closed', async () => {
    const s = await open();
    assert.equal((await post(`${base}/close`, json(s))).status, 200);
    const poll = await post(`${base}/poll`, pollBody(s));
    assert.equal(poll.status, 200);
    assert.equal((JSON.parse(poll.text) as { close?: { code: string } }).close?.code, 'client_closed');
    assertError(await post(`${base}/send`, sendBody(s, 1, ['late'])), 410, 'session_closed');
    assert.equal((await post(`${base}/close`, json(s))).status, 200, 'closing twice is fine');
    assert.deepEqual(got(s.sid), []);
  });

  it('client mistakes are answered, not reported as server errors', () => {
    // Only the authenticate hook's own failure belongs on the 'error' event.
    const unexpected = serverErrors.filter((e) => !(e instanceof Error && e.message === HOOK_ERROR));
    assert.deepEqual(
      unexpected.map((e) => (e instanceof Error ? `${(e as HoldlineError).code ?? e.name}: ${e.message}` : String(e))),
      [],
    );
  });

  it('the healthy session got every message exactly once, in order, both ways, and the server still serves', async () => {
    assert.ok(clientSent > 20 && serverSent > 20, `the stream ran all along (${clientSent} sent, ${serverSent} pushed)`);
    running = false;
    await Promise.all(producers);
    const sid = healthySid();
    const echoes = () => clientGot.filter((m) => m.startsWith('e-'));
    const pushes = () => clientGot.filter((m) => m.startsWith('s-'));
    await changed.until(
      () => got(sid).length >= clientSent && echoes().length >= clientSent && pushes().length >= serverSent,
      10_000,
      () => `server got ${got(sid).length}/${clientSent}, echoes ${echoes().length}/${clientSent}, pushes ${pushes().length}/${serverSent}`,
    );
    const numbered = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    assert.deepEqual(got(sid), numbered('c', clientSent));
    assert.deepEqual(echoes(), numbered('e', clientSent));
    assert.deepEqual(pushes(), numbered('s', serverSent));
    assert.equal(clientGot.length, clientSent + serverSent, 'nothing else, nothing twice');
    assert.deepEqual(clientEvents, [], 'no error, reconnect, reset or close on the healthy client');
    assert.equal(client.state, 'open');
    assert.equal(client.sessionId, sid);

    // Still serving: a brand-new client opens and echoes.
    const fresh = new HoldlineClient(base);
    cleanup.add(() => fresh.close());
    await fresh.connect();
    const echoed = nextMessage(fresh);
    await fresh.send('c-fresh');
    assert.equal(await echoed, 'e-fresh');
  });
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
