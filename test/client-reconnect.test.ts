/**
 * Robustness, item 4: a server that shuts down gracefully and comes back
 * (a restart, a rolling deploy) must not disconnect its clients for good.
 *
 * The client used to give up 60 s after the session was lost: the opens of
 * its new session were bounded by max(connectTimeoutMs, 60 s), then the
 * client was `closed`. It now keeps reconnecting with its back-off, as it
 * does through a network outage; connectTimeoutMs bounds the first
 * connect() only.
 */
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type ResetEvent } from '../client/index.js';
import { HoldlineClientCore } from '../client/holdline-client.js';
import type { HttpAnswer, HttpRequester, Platform } from '../client/platform.js';
import { HoldlineServer } from '../server/index.js';
import { encodeClose, HoldlineError } from '../shared/index.js';

/** The state, read afresh (an assertion on it does not narrow the next read). */
const stateOf = (c: { readonly state: string }): string => c.state;

interface Running {
  hl: HoldlineServer;
  server: http.Server;
  port: number;
  stop(): Promise<void>;
}

/** A Holdline server on 127.0.0.1 at `port` (0: any). */
async function start(port: number): Promise<Running> {
  const hl = new HoldlineServer({ pollTimeoutMs: 2_000 });
  const server = http.createServer();
  hl.attach(server, { path: '/holdline' });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await hl.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })());
  return { hl, server, port: (server.address() as AddressInfo).port, stop };
}

test('a server closed with hl.close() and restarted on the same port 2.5 s later: the client ends open on a new session (reset), never closed', { timeout: 30_000 }, async (t) => {
  const first = await start(0);
  t.after(() => first.stop());
  const client = new HoldlineClient(`http://127.0.0.1:${first.port}/holdline`, {
    reconnect: { minDelayMs: 50, maxDelayMs: 400 },
    connectTimeoutMs: 1_000, // bounds the first connect() only
  });
  t.after(() => client.close());
  const states: string[] = [];
  const resets: ResetEvent[] = [];
  let closed = false;
  client.on('close', () => (closed = true));
  client.on('reset', (e) => resets.push(e));
  client.on('reconnecting', () => states.push('reconnecting'));
  client.on('open', () => states.push('open'));
  await client.connect();
  const before = client.sessionId;

  await first.stop();
  await sleep(2_500);
  assert.equal(closed, false, 'the client is still trying');
  assert.equal(stateOf(client), 'reconnecting');
  const second = await start(first.port);
  t.after(() => second.stop());
  const end = Date.now() + 10_000;
  while (client.state !== 'open' && Date.now() < end) await sleep(20);

  assert.equal(client.state, 'open');
  assert.equal(closed, false);
  assert.equal(resets.length, 1, 'one new session');
  assert.equal(resets[0]?.previousSessionId, before);
  // The shutdown's close frame, or the new server not knowing the session: either way a new one.
  assert.ok(['server_shutdown', 'session_unknown'].includes(resets[0]?.reason.code ?? ''), `reset reason ${resets[0]?.reason.code}`);
  assert.notEqual(client.sessionId, before);
  assert.equal(states.at(-1), 'open');
});

/** Node's timers and Date, faked: minutes of back-off pass in milliseconds. */
class AwayServer implements HttpRequester {
  down = false;
  opens = 0;
  failedOpens = 0;
  #endHeld: ((a: HttpAnswer) => void) | undefined;

  async post(url: string, body: string, signal: AbortSignal): Promise<HttpAnswer> {
    if (url.endsWith('/close')) return { status: 200, body: '{}' };
    if (this.down) {
      if (url.endsWith('/open')) this.failedOpens++;
      throw new HoldlineError('network_error', 'connect ECONNREFUSED');
    }
    if (url.endsWith('/open')) {
      this.opens++;
      const open = { v: 1, sid: `session-${String(this.opens).padStart(4, '0')}`, token: 't'.repeat(22), pollTimeoutMs: 20_000, sessionIdleTimeoutMs: 60_000, maxMessageBytes: 1024, maxBatchBytes: 65_536 };
      return { status: 200, body: JSON.stringify(open) };
    }
    // A poll: held for what it asks (timers are faked), or until the test ends it.
    const hold = (JSON.parse(body) as { hold: number }).hold;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const t = setTimeout(() => resolve({ status: 200, body: '{"ack":0,"seq":1,"m":[]}' }), hold);
      this.#endHeld = (a) => {
        clearTimeout(t);
        resolve(a);
      };
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new HoldlineError('timeout', 'aborted'));
      }, { once: true });
    });
  }

  /** The server shuts down: its held poll gets the close frame, and nothing answers from now on. */
  shutDown(): void {
    this.down = true;
    this.#endHeld?.(({ status: 200, body: encodeClose(0, { code: 'server_shutdown', message: 'the server is stopping' }) }));
  }

  async close(): Promise<void> {}
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

test('a server away for 5 minutes after a graceful shutdown: the client is still reconnecting (not closed), and opens a new session once it is back', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_700_000_000_000 });
  t.after(() => mock.timers.reset());
  const server = new AwayServer();
  const platform: Platform = { name: 'node', createRequester: () => server };
  const client = new HoldlineClientCore('http://127.0.0.1:9/holdline', { reconnect: { minDelayMs: 100, maxDelayMs: 5_000 }, connectTimeoutMs: 1_000 }, platform);
  let closed = false;
  const resets: ResetEvent[] = [];
  client.on('close', () => (closed = true));
  client.on('reset', (e) => resets.push(e));
  client.on('error', () => {});
  await client.connect();
  await turns();
  server.shutDown();
  await turns();
  for (let ms = 0; ms < 5 * 60_000; ms += 500) {
    mock.timers.tick(500);
    await turns();
    assert.equal(closed, false, `closed after ${ms} ms away`);
  }
  assert.equal(stateOf(client), 'reconnecting');
  assert.ok(server.failedOpens >= 50, `kept trying: ${server.failedOpens} opens`);
  assert.ok(server.failedOpens <= 5 * 60 * 10, `with back-off: ${server.failedOpens} opens`);

  server.down = false;
  for (let i = 0; i < 40 && client.state !== 'open'; i++) {
    mock.timers.tick(500);
    await turns();
  }
  assert.equal(client.state, 'open');
  assert.equal(resets.length, 1);
  assert.equal(resets[0]?.reason.code, 'server_shutdown');
  assert.equal(client.sessionId, 'session-0002');
  const closing = client.close();
  mock.timers.tick(5_000);
  await closing;
});
