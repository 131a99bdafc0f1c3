/**
 * Mounting: an express Router and plain attach() both work; two servers on
 * different paths coexist; handler() passes what is not its own to next().
 * The host's own handlers keep every request outside the Holdline path and
 * never see one inside it. Every answer is complete: Content-Length, no
 * chunking, Cache-Control: no-store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import { HoldlineClient, type Payload } from '../client/index.js';
import { HoldlineError, HoldlineServer, type HoldlineServerOptions } from '../server/index.js';
import {
  Cleanup,
  attemptId,
  closeHttpServer,
  errorCode,
  listen,
  nextMessage,
  post,
  raw,
  type RawResponse,
} from './helpers/server.js';
import { sessionIdOf } from './helpers/holdline.js';

const OPTIONS: HoldlineServerOptions = { pollTimeoutMs: 1_000 };

/** A HoldlineServer that echoes every message back, prefixed with `tag`. */
function echoServer(cleanup: Cleanup, tag: string): HoldlineServer {
  const hl = new HoldlineServer(OPTIONS);
  cleanup.add(() => hl.close());
  hl.on('session', (s) => {
    s.on('message', (d: Payload) => {
      void s.send(typeof d === 'string' ? `${tag}:${d}` : d);
    });
  });
  return hl;
}

async function connectedClient(cleanup: Cleanup, url: string): Promise<HoldlineClient> {
  const c = new HoldlineClient(url, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
  cleanup.add(() => c.close());
  await c.connect();
  return c;
}

/** Send text and binary through `c`; assert both come back from the server tagged `tag`. */
async function assertEchoes(c: HoldlineClient, tag: string): Promise<void> {
  let reply = nextMessage(c);
  await c.send('hello');
  assert.equal(await reply, `${tag}:hello`);
  reply = nextMessage(c);
  await c.send(new Uint8Array([1, 2, 255]));
  const bin = await reply;
  assert.ok(bin instanceof Uint8Array);
  assert.deepEqual(Array.from(bin), [1, 2, 255]);
}

/** Every Holdline answer is whole and uncached. */
function assertCompleteAnswer(res: RawResponse): void {
  assert.equal(res.headers['cache-control'], 'no-store', `Cache-Control on ${res.status} ${res.text}`);
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)));
  assert.equal(res.headers['transfer-encoding'], undefined, 'never chunked');
}

/** Drive open, poll, send and close by hand at `base`; check every answer's headers. */
async function assertEndpointsComplete(base: string): Promise<void> {
  const opened = await post(`${base}/open`, JSON.stringify({ v: 1, attempt: attemptId() }));
  assert.equal(opened.status, 200, opened.text);
  assertCompleteAnswer(opened);
  assert.match(String(opened.headers['content-type']), /^text\/plain\b/);
  const { sid, token } = JSON.parse(opened.text) as { sid: string; token: string };
  const sent = await post(`${base}/send`, JSON.stringify({ sid, token, ack: 0, seq: 1, m: ['raw'] }));
  assert.equal(sent.status, 200, sent.text);
  assertCompleteAnswer(sent);
  const polled = await post(`${base}/poll`, JSON.stringify({ sid, token, ack: 0, hold: 2_000 }));
  assert.equal(polled.status, 200, polled.text);
  assertCompleteAnswer(polled);
  assert.equal((JSON.parse(polled.text) as { m: unknown[] }).m.length, 1, 'the echo of "raw"');
  const closed = await post(`${base}/close`, JSON.stringify({ sid, token }));
  assert.equal(closed.status, 200);
  assertCompleteAnswer(closed);
  const failed = await post(`${base}/poll`, '{');
  assert.equal(errorCode(failed), 'malformed_request');
  assertCompleteAnswer(failed);
}

// router() is a plain (req, res, next) middleware: the same tests mount it in Express 5 and Express 4.
for (const [name, express] of [['express 5', express5], ['express 4', express4]] as const) {
  test(`${name}: app.use(path, hl.router()) serves clients; the app keeps its own routes`, async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const hlA = echoServer(cleanup, 'A');
    const app = express();
    app.use(express.json()); // a typical app body parser: it must leave text/plain alone
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    app.use('/a', hlA.router());
    app.use((_req, res) => {
      res.status(404).send('app 404');
    });
    const server = http.createServer(app);
    cleanup.add(() => closeHttpServer(server));
    const origin = await listen(server);

    const c = await connectedClient(cleanup, `${origin}/a`);
    assert.ok(hlA.session(sessionIdOf(c)), 'the session lives on hlA');
    await assertEchoes(c, 'A');

    const health = await raw(`${origin}/health`, { method: 'GET' });
    assert.equal(health.status, 200);
    assert.equal(health.text, 'ok');
    const other = await raw(`${origin}/b/open`, { method: 'POST', body: '{}' });
    assert.equal(other.text, 'app 404', 'paths outside /a stay with the app');

    // Holdline answers everything below its mount, errors included, as JSON.
    const unknown = await post(`${origin}/a/nope`, '{}');
    assert.equal(unknown.status, 404);
    assert.equal(errorCode(unknown), 'not_found');
    await assertEndpointsComplete(`${origin}/a`);
  });

  test(`${name}: a body parser that already read the text body (express.text()) does not break the router`, async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const hl = echoServer(cleanup, 'T');
    const app = express();
    app.use(express.text());
    app.use('/t', hl.router());
    const server = http.createServer(app);
    cleanup.add(() => closeHttpServer(server));
    const origin = await listen(server);
    const c = await connectedClient(cleanup, `${origin}/t`);
    await assertEchoes(c, 'T');
    await assertEndpointsComplete(`${origin}/t`);
  });
}

test('plain node:http: attach(server, { path }) next to an existing request listener', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const appSaw: string[] = [];
  const server = http.createServer((req, res) => {
    appSaw.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`app:${req.url}`);
  });
  cleanup.add(() => closeHttpServer(server));
  const hlB = echoServer(cleanup, 'B');
  hlB.attach(server, { path: '/b' });
  const origin = await listen(server);

  const c = await connectedClient(cleanup, `${origin}/b`);
  await assertEchoes(c, 'B');
  await assertEndpointsComplete(`${origin}/b`);
  const unknown = await post(`${origin}/b/nope`, '{}');
  assert.equal(errorCode(unknown), 'not_found');

  // The app still gets everything else, once, including look-alike paths.
  for (const path of ['/', '/other', '/bee', '/b-side/open', '/other/b/open']) {
    const res = await raw(`${origin}${path}`, { method: 'GET' });
    assert.equal(res.text, `app:${path}`);
  }
  assert.deepEqual(appSaw, ['GET /', 'GET /other', 'GET /bee', 'GET /b-side/open', 'GET /other/b/open']);
  assert.ok(!appSaw.some((r) => / \/b(\/|\?|$)/.test(r)), 'the app never saw a /b request');

  // close() hands the whole server back to the app.
  await c.close();
  await hlB.close();
  const after = await post(`${origin}/b/open`, '{}');
  assert.equal(after.text, 'app:/b/open');
  assert.equal(appSaw.filter((r) => r === 'POST /b/open').length, 1);
});

/** An app's node:http server with HoldlineServers attached at /one and /two; the app answers the rest. */
async function twoAttachedToOneServer(cleanup: Cleanup) {
  const appSaw: string[] = [];
  const server = http.createServer((req, res) => {
    appSaw.push(`${req.method} ${req.url}`);
    if (!res.headersSent) res.end(`app:${req.url}`);
  });
  cleanup.add(() => closeHttpServer(server));
  const hlOne = echoServer(cleanup, 'one');
  const hlTwo = echoServer(cleanup, 'two');
  hlOne.attach(server, { path: '/one' });
  hlTwo.attach(server, { path: '/two' });
  const origin = await listen(server);
  return { appSaw, hlOne, hlTwo, origin };
}

test('two HoldlineServers attached to one node:http server at /one and /two do not see each other', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const { appSaw, hlOne, hlTwo, origin } = await twoAttachedToOneServer(cleanup);

  const c1 = await connectedClient(cleanup, `${origin}/one`);
  const c2 = await connectedClient(cleanup, `${origin}/two`);
  await assertEchoes(c1, 'one');
  await assertEchoes(c2, 'two');
  const sid1 = sessionIdOf(c1);
  const sid2 = sessionIdOf(c2);
  assert.ok(hlOne.session(sid1) && !hlOne.session(sid2));
  assert.ok(hlTwo.session(sid2) && !hlTwo.session(sid1));
  assert.equal(hlOne.sessionCount, 1);
  assert.equal(hlTwo.sessionCount, 1);

  // A session of /one is unknown at /two.
  const open1 = await post(`${origin}/one/open`, JSON.stringify({ v: 1, attempt: attemptId() }));
  const { sid, token } = JSON.parse(open1.text) as { sid: string; token: string };
  const cross = await post(`${origin}/two/poll`, JSON.stringify({ sid, token, ack: 0, hold: 0 }));
  assert.equal(cross.status, 404);
  assert.equal(errorCode(cross), 'session_unknown');
  const home = await post(`${origin}/one/poll`, JSON.stringify({ sid, token, ack: 0, hold: 0 }));
  assert.equal(home.status, 200);
  await assertEndpointsComplete(`${origin}/one`);
  await assertEndpointsComplete(`${origin}/two`);

  const res = await raw(`${origin}/three`, { method: 'GET' });
  assert.equal(res.text, 'app:/three');
  assert.deepEqual(appSaw, ['GET /three'], 'the app saw only its own request, once');
});

test('two attached HoldlineServers: closing the first one leaves the second one and the app working', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const { appSaw, hlOne, origin } = await twoAttachedToOneServer(cleanup);
  const c2 = await connectedClient(cleanup, `${origin}/two`);

  await hlOne.close();

  await assertEchoes(c2, 'two');
  const opened = await post(`${origin}/two/open`, JSON.stringify({ v: 1, attempt: attemptId() }));
  assert.equal(opened.status, 200, opened.text);
  const res = await raw(`${origin}/three`, { method: 'GET' });
  assert.equal(res.text, 'app:/three');
  assert.deepEqual(appSaw, ['GET /three'], 'the app got /three once and no /two request');
});

test('handler(): serves its path and passes everything else to next()', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const hl = echoServer(cleanup, 'H');
  const handle = hl.handler({ path: '/h/' }); // a trailing slash is the same mount
  const nextSaw: string[] = [];
  const server = http.createServer((req, res) => {
    handle(req, res, () => {
      nextSaw.push(req.url ?? '');
      res.end('next');
    });
  });
  cleanup.add(() => closeHttpServer(server));
  const origin = await listen(server);

  const c = await connectedClient(cleanup, `${origin}/h`);
  await assertEchoes(c, 'H');
  await assertEndpointsComplete(`${origin}/h`);
  for (const path of ['/', '/x', '/hh/open', '/x/h/open']) {
    assert.equal((await raw(`${origin}${path}`, { method: 'GET' })).text, 'next');
  }
  assert.deepEqual(nextSaw, ['/', '/x', '/hh/open', '/x/h/open']);
  // Query strings do not change the route.
  const q = await post(`${origin}/h/open?cachebust=1`, JSON.stringify({ v: 1, attempt: attemptId() }));
  assert.equal(q.status, 200, q.text);
});

test('handler() without next() answers 404 not_found outside its path; the default path is /holdline', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const hl = echoServer(cleanup, 'D');
  const handle = hl.handler();
  const server = http.createServer((req, res) => handle(req, res));
  cleanup.add(() => closeHttpServer(server));
  const origin = await listen(server);
  const outside = await post(`${origin}/elsewhere`, '{}');
  assert.equal(outside.status, 404);
  assert.equal(errorCode(outside), 'not_found');
  assertCompleteAnswer(outside);
  const c = await connectedClient(cleanup, `${origin}/holdline`);
  await assertEchoes(c, 'D');
});

test('mount paths are checked when mounting', () => {
  const hl = new HoldlineServer();
  for (const path of ['', 'holdline', 'http://x/holdline']) {
    assert.throws(() => hl.handler({ path }), (e: unknown) => e instanceof HoldlineError && e.code === 'invalid_argument' && e.message.includes('"path"'));
  }
});
