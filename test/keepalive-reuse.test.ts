/**
 * Core v2, item 4: a keep-alive connection the server closes under a request.
 *
 * The server closes idle keep-alive connections after one second
 * (`keepAliveTimeout = 1000`; node itself waits one more second) and does not
 * announce it (no `Keep-Alive: timeout=` header, like nginx by default or a
 * load balancer in front), so the client keeps its connections for its own
 * 4 s. The application then idles past the server's timeout before each send:
 * waiting, or (every other send) busy with 200 ms of synchronous work right
 * before it sends (the case).
 *
 * The server's idle timer and the client's next request meet on that
 * connection. Here the server always loses the race the same way, so the test
 * is reproducible: when its keep-alive timer fires it marks the connection,
 * and a request that then arrives on it is dropped with the connection,
 * unanswered (as when the timer's close and the request cross on the wire).
 * The client must send such a request again on a fresh connection at once:
 * no `reconnecting`, every echo back, in order.
 *
 * Runs over https too (`npm run test:https`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { HoldlineClient } from '../client/index.js';
import { HoldlineServer } from '../server/index.js';
import type { Payload } from '../shared/index.js';
import { closeHttpServer, listen, nextMessage } from './helpers/server.js';
import { createTestServer, testScheme } from './helpers/tls.js';

const SERVER_KEEP_ALIVE_MS = 1_000;
/** node 20.20 and later close an idle connection 1 s after keepAliveTimeout (a margin for the announced value); idle past both. */
const IDLE_MS = SERVER_KEEP_ALIVE_MS + 1_000 + 300;
const SENDS = 10;

interface RacyServer {
  url: string;
  /** Requests that arrived on a connection whose keep-alive timer had fired: dropped unanswered. */
  dropped(): number;
}

async function startRacyServer(t: import('node:test').TestContext): Promise<RacyServer> {
  const hl = new HoldlineServer();
  hl.on('session', (s) => {
    s.on('message', (d: Payload) => {
      s.send(d).catch(() => {}); // the echo; a send failing here shows as a missing echo
    });
  });
  const handle = hl.handler({ path: '/holdline' });
  const expired = new WeakSet<Socket>();
  let dropped = 0;
  const server = createTestServer((req, res) => {
    if (expired.has(req.socket)) {
      dropped++;
      req.socket.destroy();
      return;
    }
    // Set explicitly, the Connection header stops node from announcing its timeout.
    res.setHeader('Connection', 'keep-alive');
    handle(req, res);
  });
  server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS;
  // With a 'timeout' listener node leaves the idle connection to it: mark it, and drop it when a request comes.
  server.on('timeout', (socket: Socket) => expired.add(socket));
  const origin = await listen(server);
  t.after(async () => {
    await hl.close();
    await closeHttpServer(server);
  });
  return { url: `${origin}/holdline`, dropped: () => dropped };
}

/** Synchronous work: nothing else in this process (server included) runs meanwhile. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

async function sendsAfterIdle(t: import('node:test').TestContext, idle: (i: number) => Promise<void>): Promise<void> {
  const server = await startRacyServer(t);
  assert.ok(server.url.startsWith(`${testScheme()}://`), `served over ${testScheme()}: ${server.url}`);
  const client = new HoldlineClient(server.url, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } });
  t.after(() => client.close());
  const reconnecting: string[] = [];
  client.on('reconnecting', (e) => reconnecting.push(`${e.error.code}: ${e.error.message}`));
  const errors: string[] = [];
  client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
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
  // The race happened: each send found its connection closed under it.
  assert.ok(server.dropped() >= SENDS, `requests dropped on expired connections: ${server.dropped()}`);
  t.diagnostic(`requests dropped on expired keep-alive connections and sent again: ${server.dropped()}`);
}

test('the application idles past the server\'s keep-alive timeout before each send (waiting, or busy for the last 200 ms): no reconnecting, every echo in order', { timeout: 90_000 }, async (t) => {
  await sendsAfterIdle(t, async (i) => {
    if (i % 2 === 0) return sleep(IDLE_MS);
    await sleep(IDLE_MS - 200);
    busy(200);
  });
});
