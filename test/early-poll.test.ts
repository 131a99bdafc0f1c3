/**
 * Early polls and the send path's ack order, over real HTTP on 127.0.0.1:
 *
 * - A poll answer whose `m` is EARLY_POLL_BYTES or more carries
 *   `Holdline-Next: seq + count`; a smaller one does not.
 * - A poll with `"from": N` gets a batch starting at N; the messages before
 *   it stay unacknowledged. A bad `from` is refused (bad_ack past lastSeq + 1,
 *   malformed_request when not a positive integer) while a healthy session
 *   goes on exchanging.
 * - The real client sends early polls on a large stream, and recovers when the
 *   answer whose headers started one is cut mid-body (cut by the server side of
 *   this test at chosen answers, or at random by the fault proxy), or when the
 *   header names a number its batch does not reach: exactly once, in order, and
 *   without waiting on the early poll.
 * - A send batch of more than 8 new messages is answered before it is
 *   delivered; a smaller one is delivered first (an echo leaves on the poll
 *   before the send's answer).
 * - A poll refused for its `from` still counts its ack; the ack of the last
 *   batch of a burst reaches the server soon (an early poll is held briefly),
 *   not after the whole hold.
 *
 * The server side is observed without changing what it does: a 'request'
 * listener added after attach() sees each request and its response object; it
 * records the body by watching 'data' events (both the synchronous read() path
 * and the streaming path emit them) and the answer by wrapping writeHead/end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type HoldlineError, type ResetEvent } from '../client/index.js';
import { MemoryStore, type Session } from '../server/index.js';
import { EARLY_POLL_BYTES, NEXT_HEADER, type CloseReason, type Payload } from '../shared/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startHoldline, type RunningHoldline } from './helpers/holdline.js';
import { errorCode, openRaw, post, type RawResponse, type RawSession } from './helpers/server.js';
import { testTls } from './helpers/tls.js';

const json = (v: unknown) => JSON.stringify(v);
const fast = { reconnect: { minDelayMs: 5, maxDelayMs: 50 } };

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what()}`);
    await sleep(5);
  }
}

function sessionOf(hl: RunningHoldline, s: RawSession): Session {
  const session = hl.server.session(s.sid);
  assert.ok(session, 'the raw session exists on the server');
  return session;
}

interface PollAnswer {
  status: number;
  /** The Holdline-Next header, as a number; undefined when absent. */
  next: number | undefined;
  seq: number;
  m: unknown[];
}

function answerOf(res: RawResponse): PollAnswer {
  assert.equal(res.status, 200, res.text);
  const header = res.headers[NEXT_HEADER.toLowerCase()];
  const body = JSON.parse(res.text) as { seq: number; m: unknown[] };
  return { status: res.status, next: header === undefined ? undefined : Number(header), seq: body.seq, m: body.m };
}

/** What a raw poll or send request got as an error: status and code. */
function assertError(res: RawResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.equal(errorCode(res), code, res.text);
}

// ---- server-side observation ----

/** One request seen by the tap, with its answer once written. */
interface Tapped {
  path: string;
  /** Order of arrival (across every path). */
  index: number;
  req: IncomingMessage;
  res: ServerResponse;
  /** The request body as the server read it (complete once the server acted on it). */
  body(): string;
  /** Set when the answer is written. */
  answer?: { status: number; headers: Record<string, unknown>; body: string; cut: boolean };
}

interface TapOptions {
  /** Change an answer's headers (in place) before they are written. */
  rewrite?: (t: Tapped, status: number, headers: Record<string, unknown>) => void;
  /** Decide, as the answer is about to be written, to send only part of its body and then drop the connection. */
  cut?: (t: Tapped, status: number, headers: Record<string, unknown>, body: string) => boolean;
  /** Called when the answer is about to be written (before `cut`). */
  onAnswer?: (t: Tapped) => void;
}

/**
 * Watch every Holdline request on `http` (must be called after attach()).
 * Nothing about the request or the response changes unless `cut` says so.
 */
function tap(http: Server, options: TapOptions = {}): Tapped[] {
  const seen: Tapped[] = [];
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/^.*\//, '/');
    const t: Tapped = { path, index: seen.length, req, res, body: () => Buffer.concat(chunks).toString('utf8') };
    seen.push(t);
    // Both req.read() and flowing mode emit 'data' for every chunk they hand out.
    const emit = req.emit;
    req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'data') chunks.push(Buffer.from(args[0] as Buffer));
      return emit.call(this, event, ...args);
    } as IncomingMessage['emit'];
    let status = 0;
    let headers: Record<string, unknown> = {};
    const writeHead = res.writeHead as (...a: unknown[]) => ServerResponse;
    (res as unknown as { writeHead: (...a: unknown[]) => ServerResponse }).writeHead = function (this: ServerResponse, ...a: unknown[]) {
      status = a[0] as number;
      const at = a.findIndex((x, i) => i > 0 && typeof x === 'object' && x !== null);
      const h = a[at];
      // The server passes headers as a flat list [name, value, ...]: seen here as an object.
      headers = Array.isArray(h) ? Object.fromEntries(Array.from({ length: h.length / 2 }, (_, i) => [h[2 * i], h[2 * i + 1]])) : ((h ?? {}) as Record<string, unknown>);
      options.rewrite?.(t, status, headers);
      if (Array.isArray(h)) a[at] = Object.entries(headers).flat();
      return writeHead.apply(this, a);
    };
    const end = res.end as (...a: unknown[]) => ServerResponse;
    (res as unknown as { end: (...a: unknown[]) => ServerResponse }).end = function (this: ServerResponse, ...a: unknown[]) {
      const chunk = a[0];
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      t.answer = { status, headers, body: text, cut: false };
      options.onAnswer?.(t);
      if (text.length > 0 && options.cut?.(t, status, headers, text)) {
        t.answer.cut = true;
        const bytes = Buffer.from(text, 'utf8');
        // Headers and half the body reach the client; then the connection ends short of Content-Length.
        this.write(bytes.subarray(0, bytes.length >> 1), () => this.socket?.destroy());
        return this;
      }
      return end.apply(this, a);
    };
  });
  return seen;
}

interface PollSeen {
  ack: number;
  from: number | undefined;
}

/** The poll requests the server received, in order of arrival, as it decoded them. */
function polls(seen: Tapped[]): PollSeen[] {
  return seen
    .filter((t) => t.path === '/poll')
    .map((t) => {
      const o = JSON.parse(t.body()) as { ack: number; from?: number };
      return { ack: o.ack, from: o.from };
    });
}

/** Assert `got` is exactly message 0..n-1 of `expected`, once each, in order. */
function assertExactlyOnce(got: string[], expected: string[], what: string): void {
  if (got.length === expected.length && got.every((g, i) => g === expected[i])) return;
  const at = got.findIndex((g, i) => g !== expected[i]);
  assert.fail(`${what}: ${got.length} received, ${expected.length} expected; first difference at ${at === -1 ? got.length : at}: ` +
    `got ${JSON.stringify(got[at]?.slice(0, 30))}, want ${JSON.stringify(expected[at]?.slice(0, 30))}`);
}

/** A client that records what it receives and every sign of trouble. */
function recordingClient(url: string, options: ConstructorParameters<typeof HoldlineClient>[1] = fast) {
  // Early polls are polling's: the client stays on it.
  const client = new HoldlineClient(url, { transports: ['polling'], ...options });
  const got: string[] = [];
  const events: string[] = [];
  client.on('message', (d: Payload) => got.push(typeof d === 'string' ? d : `binary:${d.byteLength}`));
  client.on('error', (e: HoldlineError) => events.push(`error ${e.code}: ${e.message}`));
  client.on('reset', (e: ResetEvent) => events.push(`reset ${e.reason.code}`));
  client.on('close', (r: CloseReason) => events.push(`close ${r.code}`));
  return { client, got, events };
}

const payload100 = (i: number) => `${String(i).padStart(6, '0')}:${'p'.repeat(93)}`; // 100 bytes

/** Send `messages` in bursts of `size` (so that batches are full and answers large), a pause between bursts. */
async function sendInBursts(s: Session, messages: string[], size: number): Promise<void> {
  for (let i = 0; i < messages.length; i += size) {
    await Promise.all(messages.slice(i, i + size).map((m) => s.send(m)));
    await sleep(5);
  }
}

/** Once the session's first poll is held, the server sends `expected` at once; returns the session once it opened. */
function sendOnFirstPoll(hl: RunningHoldline, expected: string[]): () => Session | undefined {
  let session: Session | undefined;
  hl.server.once('session', (s: Session) => {
    session = s;
    void (async () => {
      await waitFor(() => s.holdingPoll, 5_000, () => 'the first poll');
      await Promise.all(expected.map((m) => s.send(m)));
    })();
  });
  return () => session;
}

// ---------------------------------------------------------------------------

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

test('early polls through a proxy that cuts responses mid-body at random: exactly once, in order', { skip: testTls() ? 'a plain-http proxy in front (its faults need to read HTTP framing)' : false, timeout: 90_000 }, async (t) => {
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

test('sends with no poll held read the outbound stream only when an early poll is expected, and then once', async (t) => {
  // Counts the batches the session reads (and JSON-encodes) from the store.
  class CountingStore extends MemoryStore {
    reads = 0;
    override readOutbound(sid: string, maxWireBytes: number, from?: number) {
      this.reads++;
      return super.readOutbound(sid, maxWireBytes, from);
    }
  }
  const store = new CountingStore();
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
