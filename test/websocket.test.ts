/**
 * The server's WebSocket endpoint, spoken by hand with `ws` (PROTOCOL.md,
 * "WebSocket"): the credential in the first frame, batches as a header and
 * one frame per message (binary as binary frames), a held poll answered when
 * a WebSocket takes the session, a later poll closing the WebSocket, errors
 * as frames, the origin checked before the upgrade, other upgrade listeners
 * untouched, and a WebSocket on one node serving a session owned by another.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket, type RawData } from 'ws';
import type { Session } from '../server/index.js';
import type { Payload } from '../shared/index.js';
import { Cleanup, Condition, openRaw, post, startServer, withTimeout, type RawSession } from './helpers/server.js';
import { ReadCountingStore } from './helpers/read-counting-store.js';
import { storeKinds } from './multi-node/helpers.js';
import { assertTestScheme, testTls, upgradesOverTls } from './helpers/tls.js';

interface Frame {
  text?: string;
  bytes?: Uint8Array;
}

/** A raw WebSocket with its frames queued for reading in order. */
class Peer {
  readonly ws: WebSocket;
  readonly #frames: Frame[] = [];
  readonly #waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, headers?: Record<string, string>) {
    this.ws = new WebSocket(url, headers === undefined ? {} : { headers });
    this.ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
      this.#frames.push(isBinary ? { bytes: new Uint8Array(buf) } : { text: buf.toString('utf8') });
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  async next(timeoutMs = 5_000): Promise<Frame> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = this.#frames.shift();
      if (f) return f;
      if (Date.now() > end) throw new Error('no frame in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async json(timeoutMs?: number): Promise<Record<string, unknown>> {
    const f = await this.next(timeoutMs);
    assert.ok(f.text !== undefined, 'a text frame');
    return JSON.parse(f.text) as Record<string, unknown>;
  }

  /** Read frames until a header with messages comes; return its messages. */
  async batch(): Promise<{ seq: number; m: Payload[] }> {
    for (;;) {
      const h = await this.json();
      const n = typeof h.n === 'number' ? h.n : 0;
      if (n === 0) continue;
      const m: Payload[] = [];
      for (let i = 0; i < n; i++) {
        const f = await this.next();
        m.push(f.text ?? f.bytes ?? '');
      }
      return { seq: h.seq as number, m };
    }
  }

  send(o: unknown): void {
    this.ws.send(JSON.stringify(o));
  }
}

/** A session opened over HTTP, its server side, and what it receives. */
async function openCollecting(h: { url: string; hl: { once(e: 'session', fn: (s: Session) => void): unknown } }): Promise<{ s: RawSession; session: Session; got: Payload[] }> {
  const got: Payload[] = [];
  const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
  const s = await openRaw(h.url);
  const session = await sessionP;
  session.on('message', (m) => got.push(m));
  return { s, session, got };
}

const wsUrl = (base: string) => `${base.replace(/^http/, 'ws')}/ws`;

async function hello(base: string, s: RawSession, ack = 0, ws?: number): Promise<Peer> {
  const p = new Peer(wsUrl(base));
  await p.opened();
  p.send(ws === undefined ? { sid: s.sid, token: s.token, ack } : { sid: s.sid, token: s.token, ack, ws });
  const ok = await p.json();
  assert.equal(ok.ok, true, JSON.stringify(ok));
  return p;
}

describe('WebSocket endpoint (server)', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('carries a session both ways: text as text frames, binary as binary frames, acks in headers', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    // In the https run (scripts/test-https.ts) this is wss: the upgrade reached the server over TLS.
    const overTls = upgradesOverTls(h.server);
    const { s, session, got } = await openCollecting(h);
    const p = await hello(h.url, s);
    cleanup.add(() => p.ws.terminate());
    assertTestScheme(p.ws.url, "the peer's WebSocket URL");
    assert.deepEqual(overTls, [testTls()], testTls() ? 'the upgrade came over TLS' : 'the upgrade came in the clear');
    // Client to server: a header, then one frame per message.
    p.send({ ack: 0, seq: 1, n: 2 });
    p.ws.send('hello');
    p.ws.send(Buffer.from([1, 2, 255]));
    const ack = await p.json();
    assert.deepEqual(ack, { ack: 2 }, 'the server acknowledges at once');
    assert.deepEqual(got, ['hello', new Uint8Array([1, 2, 255])]);
    // Server to client.
    await session.send('text back');
    await session.send(new Uint8Array([9, 8, 7]));
    const b = await p.batch();
    const all = [...b.m];
    if (all.length < 2) all.push(...(await p.batch()).m);
    assert.equal(b.seq, 1);
    assert.deepEqual(all, ['text back', new Uint8Array([9, 8, 7])], 'binary arrives as a binary frame, byte-exact');
    // A retried batch is dropped as a duplicate.
    p.send({ ack: 2, seq: 1, n: 2 });
    p.ws.send('hello');
    p.ws.send(Buffer.from([1, 2, 255]));
    assert.deepEqual(await p.json(), { ack: 2 });
    assert.equal(got.length, 2);
  });

  it("a batch is acknowledged in the turn's one write: by the header of the application's answer, else an ack alone, also before a close frame", async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    session.on('message', (m) => {
      if (m === 'echo') void session.send('echoed');
      if (m === 'bye') session.close({ code: 'server_closed', message: 'bye' });
    });
    const p = await hello(h.url, s);
    // The answer's header carries the ack: no ack-only header besides.
    p.send({ ack: 0, seq: 1, n: 1 });
    p.ws.send('echo');
    assert.deepEqual(await p.json(), { ack: 1, seq: 1, n: 1 });
    assert.deepEqual(await p.next(), { text: 'echoed' });
    // No answer: an ack alone.
    p.send({ ack: 1, seq: 2, n: 1 });
    p.ws.send('quiet');
    assert.deepEqual(await p.json(), { ack: 2 });
    // The application closes the session on the message: acknowledged before the close frame.
    p.send({ ack: 1, seq: 3, n: 1 });
    p.ws.send('bye');
    assert.deepEqual(await p.json(), { ack: 3 });
    assert.deepEqual(await p.json(), { close: { code: 'server_closed', message: 'bye' } });
    assert.equal((await p.closed).code, 4001);
  });

  it('heartbeats carry the inbound ack without reading the store: an idle WebSocket costs the store no reads', async () => {
    // Counts the reads of the outbound stream (what a heartbeat used to make to learn the inbound ack).
    const store = new ReadCountingStore();
    const h = await startServer({ store, pollTimeoutMs: 1_000 });
    cleanup.add(() => h.close());
    const s = await openRaw(h.url);
    const p = await hello(h.url, s);
    cleanup.add(() => p.ws.terminate());
    p.send({ ack: 0, seq: 1, n: 3 });
    for (const m of ['a', 'b', 'c']) p.ws.send(m);
    assert.deepEqual(await p.json(), { ack: 3 });
    const readsBefore = store.reads;
    // Heartbeats every pollTimeoutMs (1 s): three idle periods, two or three beats.
    const beats: Array<Record<string, unknown>> = [];
    const end = Date.now() + 2_600;
    while (Date.now() < end) {
      try {
        beats.push(await p.json(end - Date.now()));
      } catch {
        break;
      }
    }
    assert.ok(beats.length >= 2, `heartbeats in 2.6 s: ${beats.length}`);
    for (const b of beats) assert.deepEqual(b, { ack: 3 }, 'a heartbeat is an ack-only header with the inbound ack');
    assert.equal(store.reads - readsBefore, 0, `store reads during ${beats.length} heartbeats`);
  });

  it('a held poll is answered when a WebSocket takes the session; a later poll closes the WebSocket (4000)', async () => {
    const h = await startServer({ pollTimeoutMs: 20_000 });
    cleanup.add(() => h.close());
    const s = await openRaw(h.url);
    const held = post(`${h.url}/poll`, JSON.stringify({ ...s, ack: 0 }));
    await new Promise((r) => setTimeout(r, 100));
    const p = await hello(h.url, s);
    const answered = await withTimeout(held, 5_000, 'the held poll answered at once (its hold is 20 s)');
    assert.equal(answered.status, 200);
    assert.deepEqual((JSON.parse(answered.text) as { m: unknown[] }).m, []);
    const poll = post(`${h.url}/poll`, JSON.stringify({ ...s, ack: 0, hold: 0 }));
    const closed = await p.closed;
    assert.equal(closed.code, 4000);
    assert.equal((await poll).status, 200);
  });

  it('a poll sent before the hello (its "ws" count below the hello\'s) that arrives after it is answered empty at once; the fresh WebSocket stays, and a poll counted after it closes it (4000)', async () => {
    const h = await startServer({ pollTimeoutMs: 20_000 });
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    // The client's first WebSocket: its hello counts 1. The poll it sent just before counts 0 (no "ws").
    const p = await hello(h.url, s, 0, 1);
    cleanup.add(() => p.ws.terminate());
    let closedCode: number | undefined;
    void p.closed.then((c) => (closedCode = c.code));
    const late = await withTimeout(post(`${h.url}/poll`, JSON.stringify({ ...s, ack: 0, hold: 20_000 })), 5_000, 'the late poll answered at once');
    assert.equal(late.status, 200);
    assert.deepEqual((JSON.parse(late.text) as { m: unknown[] }).m, [], 'answered empty: nothing is written to a poll the client no longer reads');
    const lateCounted = await withTimeout(post(`${h.url}/poll`, JSON.stringify({ ...s, ack: 0, hold: 20_000, ws: 0 })), 5_000, 'the late poll with "ws":0 answered at once');
    assert.equal(lateCounted.status, 200);
    // The WebSocket still carries the session.
    await session.send('still here');
    assert.deepEqual((await p.batch()).m, ['still here']);
    assert.equal(closedCode, undefined, 'the fresh WebSocket was not closed');
    // The client fell back: its polls count the hello it sent.
    const poll = post(`${h.url}/poll`, JSON.stringify({ ...s, ack: 1, hold: 0, ws: 1 }));
    assert.equal((await withTimeout(p.closed, 5_000, 'the WebSocket closed')).code, 4000);
    assert.equal((await poll).status, 200);
  });

  it('compact frames ([ack,seq] and one text message in one frame): only to a client that said it reads them, and read from any', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const { s, session, got } = await openCollecting(h);
    const p = new Peer(wsUrl(h.url));
    cleanup.add(() => p.ws.terminate());
    await p.opened();
    p.send({ sid: s.sid, token: s.token, ack: 0, ws: 1, f: 1 });
    assert.deepEqual(await p.json(), { ok: true, ack: 0, f: 1 }, 'the answer says the server reads them');
    // Client to server: one frame; a text that looks like a header or a compact frame is the message's own.
    p.ws.send('[0,1]hello');
    assert.deepEqual(await p.json(), { ack: 1 });
    p.ws.send('[0,2][9,9]{"ack":1}');
    assert.deepEqual(await p.json(), { ack: 2 });
    p.ws.send('[0,1]hello'); // a repeat: dropped, acknowledged
    assert.deepEqual(await p.json(), { ack: 2 });
    assert.deepEqual(got, ['hello', '[9,9]{"ack":1}']);
    // Server to client: one text message is one compact frame, carrying the ack.
    await session.send('text back');
    assert.deepEqual(await p.next(), { text: '[2,1]text back' });
    // Anything else keeps the header and a frame per message: binary, and several messages.
    await session.send(new Uint8Array([9, 8, 7]));
    assert.deepEqual(await p.batch(), { seq: 2, m: [new Uint8Array([9, 8, 7])] });
    // The turn's first send goes at once (its own compact frame); the turn's others go together, at its end.
    await Promise.all([session.send('a'), session.send('b'), session.send('c')]);
    assert.deepEqual(await p.next(), { text: '[2,3]a' });
    assert.deepEqual(await p.batch(), { seq: 4, m: ['b', 'c'] });

    // A client that did not say so gets header frames for one text message too (PROTOCOL.md: an older client).
    const q = await hello(h.url, s, 5, 2);
    cleanup.add(() => q.ws.terminate());
    await session.send('plain');
    assert.deepEqual(await q.json(), { ack: 2, seq: 6, n: 1 });
    assert.deepEqual(await q.next(), { text: 'plain' });
    // It may still send them: the server reads them from any client.
    q.ws.send('[5,3]from q');
    assert.deepEqual(await q.json(), { ack: 3 });
    assert.equal(got.at(-1), 'from q');
  });

  it('maxMessageBytes counts a text message\'s UTF-8 bytes, in a message frame and in a compact frame: over it is message_too_large (4002)', async () => {
    const h = await startServer({ maxMessageBytes: 10 });
    cleanup.add(() => h.close());
    const ten = 'é'.repeat(5); // 10 bytes, 5 characters
    const twelve = 'é'.repeat(6); // 12 bytes, 6 characters
    const tooLarge = async (send: (p: Peer) => void, what: string) => {
      const { s } = await openCollecting(h);
      const p = await hello(h.url, s);
      cleanup.add(() => p.ws.terminate());
      send(p);
      assert.equal(((await p.json()).error as { code: string }).code, 'message_too_large', what);
      assert.equal((await p.closed).code, 4002, what);
    };
    await tooLarge((p) => {
      p.send({ ack: 0, seq: 1, n: 1 });
      p.ws.send(twelve);
    }, 'a message frame of 12 bytes');
    await tooLarge((p) => p.ws.send(`[0,1]${twelve}`), 'a compact frame whose text is 12 bytes');
    const { s, got } = await openCollecting(h);
    const p = await hello(h.url, s);
    cleanup.add(() => p.ws.terminate());
    p.send({ ack: 0, seq: 1, n: 1 });
    p.ws.send(ten);
    assert.deepEqual(await p.json(), { ack: 1 });
    p.ws.send(`[0,2]${ten}`);
    assert.deepEqual(await p.json(), { ack: 2 });
    assert.deepEqual(got, [ten, ten], 'exactly maxMessageBytes passes, both ways of framing');
  });

  it('a broken compact frame is malformed_request (4002); nothing of it is delivered', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const got: Payload[] = [];
    h.hl.on('session', (session) => session.on('message', (m) => got.push(m)));
    for (const frame of ['[0,0]x', '[0]x', '[x,1]x', '[0,1 x', '[-1,1]x', '[0,99999999999999999]x']) {
      const s = await openRaw(h.url);
      const p = await hello(h.url, s);
      cleanup.add(() => p.ws.terminate());
      p.ws.send(frame);
      assert.equal(((await p.json()).error as { code: string }).code, 'malformed_request', frame);
      assert.equal((await p.closed).code, 4002, frame);
    }
    assert.deepEqual(got, []);
  });

  it('errors are frames with the HTTP codes: a wrong token, a broken header', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const s = await openRaw(h.url);
    const bad = new Peer(wsUrl(h.url));
    await bad.opened();
    bad.send({ sid: s.sid, token: 'wrong'.repeat(4), ack: 0 });
    assert.equal(((await bad.json()).error as { code: string }).code, 'bad_credential');
    assert.equal((await bad.closed).code, 4002);

    const p = await hello(h.url, s);
    p.ws.send(Buffer.from('not a header'));
    assert.equal(((await p.json()).error as { code: string }).code, 'malformed_request');
    assert.equal((await p.closed).code, 4002);
  });

  it('a session closed by the server: the close frame, then code 4001', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
    const s = await openRaw(h.url);
    const session = await sessionP;
    const p = await hello(h.url, s);
    session.close({ code: 'server_closed', message: 'bye' });
    assert.deepEqual(await p.json(), { close: { code: 'server_closed', message: 'bye' } });
    assert.equal((await p.closed).code, 4001);
  });

  it('the origin is checked before the upgrade; other upgrade listeners keep their paths', async () => {
    const h = await startServer();
    cleanup.add(() => h.close());
    let otherUpgrades = 0;
    h.server.on('upgrade', (req, socket) => {
      if (req.url !== '/other') return;
      otherUpgrades++;
      socket.end('HTTP/1.1 418 I\'m a teapot\r\nContent-Length: 0\r\n\r\n');
    });
    const refused = new Peer(wsUrl(h.url), { origin: 'http://elsewhere.example' });
    await assert.rejects(refused.opened(), /HTTP 403/);
    const other = new Peer(`${h.url.replace(/^http/, 'ws').replace(/\/holdline$/, '')}/other`);
    await assert.rejects(other.opened(), /HTTP 418/);
    assert.equal(otherUpgrades, 1, 'the other listener got its own path');
  });

  // Each node with its store: one MemoryStore shared in this process, or a RedisStore each on one redis-server of the test's own.
  const stores = storeKinds(cleanup, 'ws');
  for (const [name, makeStores] of stores) {
    it(`a WebSocket on node B serves a session owned by node A (${name}): both ways, text and binary, in order`, async () => {
      const storeFor = await makeStores();
      const nodes = await Promise.all(['ws-a', 'ws-b'].map(async (nodeId) => {
        const h = await startServer({ store: storeFor(), nodeId });
        cleanup.add(() => h.close());
        return h;
      }));
      const [a, b] = nodes;
      assert.ok(a && b);
      const got: Payload[] = [];
      const arrived = new Condition();
      const sessionP = new Promise<Session>((resolve) => a.hl.once('session', resolve));
      const s = await openRaw(a.url);
      const owner = await sessionP;
      owner.on('message', (m) => {
        got.push(m);
        arrived.notify();
      });
      const p = await hello(b.url, s);
      cleanup.add(() => p.ws.terminate());
      assert.equal(b.hl.session(s.sid), undefined, 'B does not own it');
      // Client to server through B: two batches, text and binary.
      p.send({ ack: 0, seq: 1, n: 2 });
      p.ws.send('through B 1');
      p.ws.send(Buffer.from([0, 1, 254]));
      assert.deepEqual(await p.json(), { ack: 2 });
      p.send({ ack: 0, seq: 3, n: 1 });
      p.ws.send('through B 3');
      assert.deepEqual(await p.json(), { ack: 3 });
      await arrived.until(() => got.length >= 3, 5_000, () => `the owner's application got ${got.length} of 3`);
      assert.deepEqual(got, ['through B 1', new Uint8Array([0, 1, 254]), 'through B 3'], 'delivered on the owner, once, in order');
      assert.equal(b.hl.session(s.sid), undefined, 'and A still owns it');
      // Server to client: the owner's messages reach the WebSocket on B (a wake-up through the store).
      await owner.send('from A 1');
      await owner.send(new Uint8Array([9, 8, 7]));
      await owner.send('from A 3');
      const m: Payload[] = [];
      let seq = 0;
      while (m.length < 3) {
        const batch = await p.batch();
        if (seq === 0) seq = batch.seq;
        m.push(...batch.m);
      }
      assert.equal(seq, 1);
      assert.deepEqual(m, ['from A 1', new Uint8Array([9, 8, 7]), 'from A 3'], "the owner's messages, in order, text and binary");
      // The client's ack through B frees them on the owner.
      const drained = new Promise<void>((resolve) => owner.once('drain', () => resolve()));
      p.send({ ack: 3 });
      await withTimeout(drained, 5_000, "the owner's 'drain' once the client acknowledged through B");
      assert.equal(owner.bufferedAmount, 0);
    });
  }
});
