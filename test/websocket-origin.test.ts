/**
 * The Origin check on WebSocket upgrades is the HTTP one (PROTOCOL.md,
 * "WebSocket": "The Origin is checked as for any request: refused with 403
 * and the usual error body, before the upgrade"; server/websocket.ts asks
 * HttpHandler.originAllowed). For each Origin an upgrade gets the verdict an
 * /open with the same headers gets:
 * - `allowedOrigins`: a listed cross-origin page is served on the WebSocket
 *   (hello answered, messages both ways); one not listed is refused 403
 *   origin_not_allowed before any upgrade; same origin and no Origin need
 *   nothing.
 * - `trustProxy`: X-Forwarded-Proto and X-Forwarded-Host name the server's
 *   own origin on an upgrade as on HTTP (the first of a list); without it
 *   they are ignored. X-Forwarded-For is what the open takes the session's
 *   remoteAddress from (with trustProxy); an upgrade, which proves a session
 *   opened before, does not change it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket, type RawData } from 'ws';
import type { Session } from '../server/index.js';
import { Cleanup, errorCode, openRaw, post, startServer, withTimeout, type RawSession, type StartedServer } from './helpers/server.js';

const wsUrl = (base: string) => `${base.replace(/^http/, 'ws')}/ws`;
const openBody = () => JSON.stringify({ v: 1, attempt: `ws-origin-${Math.random().toString(36).slice(2, 12)}` });

type Verdict = 'allowed' | string;

/** What /open says to these headers: 'allowed', or the error code. */
async function httpVerdict(h: StartedServer, headers: Record<string, string>): Promise<Verdict> {
  const res = await post(`${h.url}/open`, openBody(), headers);
  return res.status === 200 ? 'allowed' : `${res.status} ${String(errorCode(res))}`;
}

/** What an upgrade to <base>/ws says to these headers: 'allowed' (101), or the status and error code of the answer. */
function wsVerdict(h: StartedServer, headers: Record<string, string>): Promise<Verdict> {
  return withTimeout(
    new Promise<Verdict>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(h.url), { headers, perMessageDeflate: false });
      ws.on('open', () => {
        ws.terminate();
        resolve('allowed');
      });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          ws.terminate();
          resolve(`${res.statusCode ?? 0} ${String(errorCode({ status: res.statusCode ?? 0, headers: {}, text: body }))}`);
        });
      });
      ws.on('error', (e) => reject(e));
    }),
    5_000,
    `the upgrade with ${JSON.stringify(headers)}`,
  );
}

/** For each case, the upgrade's verdict, the open's, and the one expected, all three equal. */
async function sameAsHttp(h: StartedServer, cases: ReadonlyArray<[string, Record<string, string>, Verdict]>): Promise<void> {
  for (const [what, headers, expected] of cases) {
    const overHttp = await httpVerdict(h, headers);
    const onWebSocket = await wsVerdict(h, headers);
    assert.equal(overHttp, expected, `HTTP, ${what}`);
    assert.equal(onWebSocket, expected, `WebSocket, ${what}`);
  }
}

const REFUSED = '403 origin_not_allowed';

/** A WebSocket with its frames queued as text. */
class Peer {
  readonly ws: WebSocket;
  readonly frames: string[] = [];

  constructor(url: string, headers: Record<string, string>) {
    this.ws = new WebSocket(url, { headers, perMessageDeflate: false });
    this.ws.on('message', (data: RawData) => this.frames.push(String(data)));
  }

  opened(): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        this.ws.once('open', () => resolve());
        this.ws.once('error', reject);
        this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      }),
      5_000,
      'the WebSocket open',
    );
  }

  async next(): Promise<string> {
    const end = Date.now() + 5_000;
    while (this.frames.length === 0) {
      if (Date.now() > end) throw new Error('no frame in time');
      await new Promise((r) => setTimeout(r, 10));
    }
    const f = this.frames.shift();
    assert.ok(f !== undefined);
    return f;
  }
}

/** A session opened over HTTP with these headers, and its server side. */
async function openWith(h: StartedServer, headers: Record<string, string>): Promise<{ s: RawSession; session: Session }> {
  const sessionP = new Promise<Session>((resolve) => h.hl.once('session', resolve));
  const s = await openRaw(h.url, headers);
  return { s, session: await withTimeout(sessionP, 5_000, 'the session') };
}

/** The session carried on a WebSocket upgraded with `headers`: hello answered ok, a message each way. */
async function carryOnWebSocket(cleanup: Cleanup, h: StartedServer, s: RawSession, session: Session, headers: Record<string, string>): Promise<void> {
  const p = new Peer(wsUrl(h.url), headers);
  cleanup.add(() => p.ws.terminate());
  await p.opened();
  p.ws.send(JSON.stringify({ sid: s.sid, token: s.token, ack: 0 }));
  const ok = JSON.parse(await p.next()) as { ok?: unknown };
  assert.equal(ok.ok, true, 'the hello answered ok');
  const got: unknown[] = [];
  session.on('message', (m) => got.push(m));
  p.ws.send(JSON.stringify({ ack: 0, seq: 1, n: 1 }));
  p.ws.send('from the page');
  await session.send('to the page');
  // The server's batch: a compact frame only to a client that said it reads them (this one did not): a header, then the text.
  // (Ack-only headers may come first.)
  while (((JSON.parse(await p.next()) as { n?: number }).n ?? 0) === 0);
  assert.equal(await p.next(), 'to the page');
  const end = Date.now() + 5_000;
  while (got.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ['from the page']);
}

describe('the Origin check on WebSocket upgrades is the HTTP one', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('allowedOrigins: a listed cross-origin page is served on the WebSocket; one not listed is refused 403 origin_not_allowed before the upgrade', async () => {
    const h = await startServer({ allowedOrigins: ['https://app.example'] });
    cleanup.add(() => h.close());
    const own = new URL(h.url).origin;
    await sameAsHttp(h, [
      ['a listed origin', { origin: 'https://app.example' }, 'allowed'],
      ['an origin not listed', { origin: 'https://evil.example' }, REFUSED],
      ['the listed host on another scheme', { origin: 'http://app.example' }, REFUSED],
      ['the "null" origin', { origin: 'null' }, REFUSED],
      ['same origin (not listed, needs nothing)', { origin: own }, 'allowed'],
      ['no Origin (not a browser)', {}, 'allowed'],
    ]);
    // The listed page's WebSocket carries its session both ways.
    const { s, session } = await openWith(h, { origin: 'https://app.example' });
    await carryOnWebSocket(cleanup, h, s, session, { origin: 'https://app.example' });
  });

  it("allowedOrigins '*': any origin, on both", async () => {
    const h = await startServer({ allowedOrigins: '*' });
    cleanup.add(() => h.close());
    await sameAsHttp(h, [
      ['any origin', { origin: 'https://anywhere.example' }, 'allowed'],
      ['"null"', { origin: 'null' }, 'allowed'],
    ]);
  });

  it('trustProxy: X-Forwarded-Proto and X-Forwarded-Host name the own origin on an upgrade as on HTTP; without trustProxy they count for neither', async () => {
    const trusting = await startServer({ trustProxy: true });
    cleanup.add(() => trusting.close());
    const forwarded = { 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' };
    const direct = new URL(trusting.url).origin;
    await sameAsHttp(trusting, [
      ['the forwarded origin', { origin: 'https://app.example', ...forwarded }, 'allowed'],
      ['the forwarded host on another scheme', { origin: 'http://app.example', ...forwarded }, REFUSED],
      ['the first of forwarded lists', { origin: 'https://app.example', 'x-forwarded-host': 'app.example, proxy.internal', 'x-forwarded-proto': 'https,http' }, 'allowed'],
      ['the connection\'s own origin, when forwarded headers name another', { origin: direct, ...forwarded }, REFUSED],
      ['another page behind the proxy', { origin: 'https://evil.example', ...forwarded }, REFUSED],
      ['no forwarded headers: the Host header', { origin: direct }, 'allowed'],
    ]);
    // The page behind the proxy rides a WebSocket.
    const { s, session } = await openWith(trusting, { origin: 'https://app.example', ...forwarded });
    await carryOnWebSocket(cleanup, trusting, s, session, { origin: 'https://app.example', ...forwarded });

    const plain = await startServer();
    cleanup.add(() => plain.close());
    await sameAsHttp(plain, [
      ['forwarded headers, not trusted', { origin: 'https://app.example', ...forwarded }, REFUSED],
      ['the connection\'s own origin, forwarded headers ignored', { origin: new URL(plain.url).origin, ...forwarded }, 'allowed'],
    ]);
  });

  it("trustProxy: the session's remoteAddress is the open's first X-Forwarded-For address; an upgrade with another one leaves it (without trustProxy: the socket's)", async () => {
    const trusting = await startServer({ trustProxy: true });
    cleanup.add(() => trusting.close());
    const opened = await openWith(trusting, { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' });
    assert.equal(opened.session.remoteAddress, '203.0.113.7');
    await carryOnWebSocket(cleanup, trusting, opened.s, opened.session, { 'x-forwarded-for': '198.51.100.9' });
    assert.equal(opened.session.remoteAddress, '203.0.113.7', 'the upgrade did not change it');

    const plain = await startServer();
    cleanup.add(() => plain.close());
    const direct = await openWith(plain, { 'x-forwarded-for': '203.0.113.7' });
    assert.equal(direct.session.remoteAddress, '127.0.0.1', 'not trusted: the socket\'s address');
    await carryOnWebSocket(cleanup, plain, direct.s, direct.session, { 'x-forwarded-for': '198.51.100.9' });
    assert.equal(direct.session.remoteAddress, '127.0.0.1');
  });
});
