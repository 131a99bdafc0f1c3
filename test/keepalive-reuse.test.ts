/**
 * Core v2, item 4: a keep-alive connection the server closes under a request.
 *
 * The server closes idle keep-alive connections after one second
 * (`keepAliveTimeout = 1000`; node itself waits one more second) and does not
 * announce it (no `Keep-Alive: timeout=` header, like nginx by default or a
 * load balancer in front), so the client keeps its connections for its own
 * 4 s. The application then idles past the server's timeout before each send:
 * busy with 200 ms of synchronous work right before every send (the issue's
 * case), or waiting, or busy, in turn.
 *
 * The server's idle timer and the client's next request meet on that
 * connection. Here the server always loses the race the same way, so the test
 * is reproducible: when its keep-alive timer fires it marks the connection,
 * and a request that then arrives on it is dropped with the connection,
 * unanswered (as when the timer's close and the request cross on the wire).
 * The client must send such a request again on a fresh connection at once:
 * no `reconnecting`, every echo back, in order, and each send on the wire
 * exactly twice (dropped, then answered).
 *
 * "Once", and "before any answer", are held by two more tests, with a server
 * that fails a send the same way every time (no timers): a send dropped on
 * its second connection too is not sent a third time at once but goes
 * through the back-off (`reconnecting`); a send whose answer had begun (its
 * whole head in, the body cut) when its connection was cut is not sent again
 * at once either. An answer counts from its whole head, the first thing
 * undici reports: a connection cut inside the head is sent once more at once
 * (the server had not answered; every request is safe to repeat).
 *
 * Runs over https too (`npm run test:https`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { HoldlineClient, type HoldlineClientOptions } from '../client/index.js';
import { HoldlineServer } from '../server/index.js';
import { isConnectionLost } from '../client/node/exchange.js';
import type { Payload } from '../shared/index.js';
import { closeHttpServer, listen, nextMessage, withTimeout } from './helpers/server.js';
import { createTestServer, testScheme } from './helpers/tls.js';

const SERVER_KEEP_ALIVE_MS = 1_000;
/** node 20.20 and later close an idle connection 1 s after keepAliveTimeout (a margin for the announced value); idle past both. */
const IDLE_MS = SERVER_KEEP_ALIVE_MS + 1_000 + 300;
const BUSY_MS = 200;
const SENDS = 10;

/**
 * What the server does with a request: answer it; drop it with its
 * connection, unread and unanswered; or answer it in part and close the
 * connection (`cut-body`: the whole head, then 5 of the 64 body bytes its
 * Content-Length declares; `cut-head`: the status line and one header, not
 * the end of the head).
 */
type Fate = 'answered' | 'dropped' | 'cut-body' | 'cut-head';

const CUT: Record<'cut-body' | 'cut-head', string> = {
  'cut-body': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 64\r\n\r\n{"ack"',
  'cut-head': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n',
};

interface EchoServer {
  url: string;
  /**
   * What happened, in order: each request as `<path> <fate>` (e.g.
   * `/send dropped`), and whatever the test adds (the client's events), so
   * that the order of the two can be asserted.
   */
  log: string[];
  /** Requests that arrived on a connection whose keep-alive timer had fired: dropped unanswered. */
  dropped(): number;
}

interface EchoServerOptions {
  /** Close idle connections after SERVER_KEEP_ALIVE_MS, losing every race against a request (see the top of the file). */
  racy?: boolean;
  /** The fate of the `nth` request (from 1) to `path`, on a connection that has not expired; default: answered. */
  fate?: (path: string, nth: number) => Fate;
}

/** A HoldlineServer that echoes every message, behind a request listener that decides each request's fate. */
async function startEchoServer(t: TestContext, options: EchoServerOptions = {}): Promise<EchoServer> {
  const hl = new HoldlineServer();
  hl.on('session', (s) => {
    s.on('message', (d: Payload) => {
      s.send(d).catch(() => {}); // the echo; a send failing here shows as a missing echo
    });
  });
  const handle = hl.handler({ path: '/holdline' });
  const expired = new WeakSet<Socket>();
  const arrivals = new Map<string, number>();
  const log: string[] = [];
  let dropped = 0;
  const server: http.Server = createTestServer((req, res) => {
    const path = (req.url ?? '').replace(/^\/holdline/, '');
    const nth = (arrivals.get(path) ?? 0) + 1;
    arrivals.set(path, nth);
    const onExpired = expired.has(req.socket);
    if (onExpired) dropped++;
    const fate = onExpired ? 'dropped' : (options.fate?.(path, nth) ?? 'answered');
    log.push(`${path} ${fate}`);
    if (fate === 'dropped') {
      req.socket.destroy();
      return;
    }
    if (fate === 'cut-body' || fate === 'cut-head') {
      // Once the request is read (closing a socket with unread bytes resets it, which may lose what was written).
      req.resume();
      req.once('end', () => req.socket.end(CUT[fate]));
      return;
    }
    // Set explicitly, the Connection header stops node from announcing its timeout.
    res.setHeader('Connection', 'keep-alive');
    handle(req, res);
  });
  if (options.racy === true) {
    server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS;
    // With a 'timeout' listener node leaves the idle connection to it: mark it, and drop it when a request comes.
    server.on('timeout', (socket: Socket) => expired.add(socket));
  }
  const origin = await listen(server);
  t.after(async () => {
    await hl.close();
    await closeHttpServer(server);
  });
  assert.ok(origin.startsWith(`${testScheme()}://`), `served over ${testScheme()}: ${origin}`);
  return { url: `${origin}/holdline`, log, dropped: () => dropped };
}

interface Watched {
  client: HoldlineClient;
  /** Each 'reconnecting' event, as `code: message`. */
  reconnecting: string[];
  /** Each 'reconnecting' event's error. */
  reconnectErrors: Error[];
  errors: string[];
}

/** A client of `server`, closed when the test ends; its 'reconnecting' events also go into the server's log. */
function watchedClient(t: TestContext, server: EchoServer, options: HoldlineClientOptions = {}): Watched {
  const client = new HoldlineClient(server.url, { reconnect: { minDelayMs: 50, maxDelayMs: 200 }, ...options });
  t.after(() => client.close());
  const w: Watched = { client, reconnecting: [], reconnectErrors: [], errors: [] };
  client.on('reconnecting', (e) => {
    w.reconnecting.push(`${e.error.code}: ${e.error.message}`);
    w.reconnectErrors.push(e.error);
    server.log.push(`reconnecting ${e.error.code}`);
  });
  client.on('error', (e) => w.errors.push(`${e.code}: ${e.message}`));
  return w;
}

/** Synchronous work: nothing else in this process (server included) runs meanwhile. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

/** The log's lines for `/send` requests and the client's 'reconnecting' events, in order. */
function sendsAndReconnects(log: readonly string[]): string[] {
  return log.filter((l) => l.startsWith('/send ') || l.startsWith('reconnecting '));
}

async function sendsAfterIdle(t: TestContext, idle: (i: number) => Promise<void>): Promise<void> {
  const server = await startEchoServer(t, { racy: true });
  const { client, reconnecting, errors } = watchedClient(t, server);
  await client.connect();

  const echoes: Payload[] = [];
  for (let i = 0; i < SENDS; i++) {
    await idle(i);
    const echo = nextMessage(client, 10_000);
    await client.send(`m${i}`);
    echoes.push(await echo);
  }

  assert.deepEqual(reconnecting, [], 'no request failed for the closed keep-alive connection');
  assert.deepEqual(errors, []);
  assert.deepEqual(
    echoes,
    Array.from({ length: SENDS }, (_, i) => `m${i}`),
  );
  // The race happened, and each send was on the wire exactly twice: it found
  // its connection closed under it, and went again once, on a fresh one (not
  // expired: answered). That a second loss is not sent again at once is the
  // test with a send dropped twice, below.
  assert.deepEqual(
    sendsAndReconnects(server.log),
    Array.from({ length: SENDS }, () => ['/send dropped', '/send answered']).flat(),
    'each send: dropped on its expired connection, then sent once more and answered',
  );
  assert.equal(server.dropped(), SENDS, `nothing but the sends was dropped: ${server.log.join(', ')}`);
  t.diagnostic(`requests dropped on expired keep-alive connections and sent again: ${server.dropped()} (${SENDS} sends)`);
}

test('the application is busy for the last 200 ms of an idle past the server\'s keep-alive timeout before each of 10 sends: no reconnecting, every echo in order, each send dropped once and sent again once', { timeout: 90_000 }, async (t) => {
  await sendsAfterIdle(t, async () => {
    await sleep(IDLE_MS - BUSY_MS);
    busy(BUSY_MS);
  });
});

test('the application idles past the server\'s keep-alive timeout before each send (waiting, or busy for the last 200 ms): no reconnecting, every echo in order', { timeout: 90_000 }, async (t) => {
  await sendsAfterIdle(t, async (i) => {
    if (i % 2 === 0) return sleep(IDLE_MS);
    await sleep(IDLE_MS - BUSY_MS);
    busy(BUSY_MS);
  });
});

/** Connects a polling-only client to a server that gives the first `/send`s the `fates`, and sends one message. */
async function sendThrough(t: TestContext, fates: readonly Fate[]): Promise<{ server: EchoServer; w: Watched; echo: Payload }> {
  const server = await startEchoServer(t, { fate: (path, nth) => (path === '/send' ? (fates[nth - 1] ?? 'answered') : 'answered') });
  const w = watchedClient(t, server, { transports: ['polling'] });
  await withTimeout(w.client.connect(), 10_000, 'connect()');
  const echo = nextMessage(w.client, 10_000);
  await withTimeout(w.client.send('m0'), 10_000, 'send()');
  return { server, w, echo: await echo };
}

/**
 * The one 'reconnecting' event's error: network_error for the send, caused by
 * a lost connection (undici's "other side closed", or a reset): the failure
 * that, before any answer, the exchange sends again at once.
 */
function assertLostConnection(w: Watched): void {
  assert.equal(w.reconnectErrors.length, 1, w.reconnecting.join('; '));
  const e = w.reconnectErrors[0] as Error & { code?: string };
  assert.equal(e.code, 'network_error', e.message);
  assert.match(e.message, /^POST \S+\/send failed: /);
  assert.ok(isConnectionLost(e.cause), `a lost connection: ${String(e.cause)}`);
}

test('a send dropped before any answer on its fresh connection too is not sent a third time at once: it goes through the back-off (reconnecting), then gets through', { timeout: 30_000 }, async (t) => {
  const { server, w, echo } = await sendThrough(t, ['dropped', 'dropped']);
  assert.equal(echo, 'm0');
  assert.deepEqual(sendsAndReconnects(server.log), ['/send dropped', '/send dropped', 'reconnecting network_error', '/send answered']);
  assertLostConnection(w);
  assert.deepEqual(w.errors, []);
});

test('a send whose answer had begun (its whole head, part of its body) when the connection was cut is not sent again at once: it goes through the back-off (reconnecting)', { timeout: 30_000 }, async (t) => {
  const { server, w, echo } = await sendThrough(t, ['cut-body']);
  assert.equal(echo, 'm0');
  // Without the answer's head, the same error makes the exchange send at once (the tests above): only the answer having begun stops it.
  assert.deepEqual(sendsAndReconnects(server.log), ['/send cut-body', 'reconnecting network_error', '/send answered']);
  assertLostConnection(w);
  assert.deepEqual(w.errors, []);
});

test('a send whose connection was cut inside its answer\'s head is sent once more at once (an answer counts from its whole head: all undici reports)', { timeout: 30_000 }, async (t) => {
  const { server, w, echo } = await sendThrough(t, ['cut-head']);
  assert.equal(echo, 'm0');
  // Safe: the server had not answered (no whole head), and every request is safe to repeat.
  assert.deepEqual(sendsAndReconnects(server.log), ['/send cut-head', '/send answered']);
  assert.deepEqual(w.errors, []);
});
