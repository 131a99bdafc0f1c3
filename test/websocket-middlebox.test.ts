/**
 * The WebSocket fast path through real middleboxes (issue "WebSocket fast
 * path", items 2 and 3):
 * - nginx as a reverse proxy WITH the upgrade headers: the session rides a
 *   WebSocket, and the server sees the upgrade come through nginx; an idle
 *   period longer than nginx's proxy_read_timeout costs nothing, because the
 *   server's heartbeat (which follows pollTimeoutMs) keeps the connection
 *   alive. And the control: a heartbeat longer than proxy_read_timeout gets
 *   the upgraded connection cut, which the session survives on polling.
 * - nginx WITHOUT the upgrade headers: the upgrade arrives as a plain GET;
 *   the session stays on polling and works, with nothing surfaced to the app.
 * - squid as the forward proxy with CONNECT allowed only to 443: the
 *   WebSocket attempt is a CONNECT that squid refuses (403); the session stays
 *   on polling through squid, with nothing surfaced to the app.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { HoldlineClient, type TransportEvent } from '../client/index.js';
import type { Session } from '../server/index.js';
import type { HoldlineError, Payload } from '../shared/index.js';
import { startServer, type StartedServer } from './helpers/server.js';
import { startNginx } from './middlebox/nginx.js';
import { startSquid } from './middlebox/squid.js';
import { waitFor } from './helpers/wait.js';


const RECONNECT = { minDelayMs: 20, maxDelayMs: 150 };

/** Message i of a batch tagged `tag`: every third is binary (4 bytes of i, then 0xff), the others text. */
function message(tag: string, i: number): Payload {
  if (i % 3 !== 0) return `${tag} ${i}`;
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, i);
  b[4] = 0xff;
  return b;
}

function show(m: readonly Payload[]): string[] {
  return m.map((p) => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`));
}

function expected(tag: string, from: number, count: number): string[] {
  return show(Array.from({ length: count }, (_, i) => message(tag, from + i)));
}

/** An upgrade request as the Holdline server's HTTP server saw it. */
interface SeenUpgrade {
  url: string;
  upgrade: string | undefined;
  forwardedFor: string | undefined;
}

/** A server with its first session and everything both sides got, and a client whose events are noted. */
interface Rig {
  h: StartedServer;
  c: HoldlineClient;
  session: Session;
  atServer: Payload[];
  atClient: Payload[];
  switches: TransportEvent[];
  errors: HoldlineError[];
  /** Upgrade requests that reached the server's HTTP server. */
  upgrades: SeenUpgrade[];
}

/** Connect `c` to the server of `h` (already listening) and note what happens. */
async function rig(t: TestContext, h: StartedServer, c: HoldlineClient, upgrades: SeenUpgrade[]): Promise<Rig> {
  t.after(() => c.close());
  const atServer: Payload[] = [];
  const atClient: Payload[] = [];
  const switches: TransportEvent[] = [];
  const errors: HoldlineError[] = [];
  c.on('message', (m) => atClient.push(m));
  c.on('transport', (e) => switches.push(e));
  c.on('error', (e) => errors.push(e));
  const session = new Promise<Session>((resolve) => {
    h.hl.once('session', (s) => {
      s.on('message', (m) => atServer.push(m));
      resolve(s);
    });
  });
  await c.connect();
  return { h, c, session: await session, atServer, atClient, switches, errors, upgrades };
}

/** Start a Holdline server whose HTTP server notes every upgrade request it gets. */
async function serverNotingUpgrades(t: TestContext, pollTimeoutMs: number): Promise<{ h: StartedServer; upgrades: SeenUpgrade[] }> {
  const h = await startServer({ pollTimeoutMs });
  t.after(() => h.close());
  const upgrades: SeenUpgrade[] = [];
  // Holdline's own listener takes the upgrade; this one only looks.
  h.server.on('upgrade', (req: IncomingMessage) => {
    const xff = req.headers['x-forwarded-for'];
    upgrades.push({ url: req.url ?? '', upgrade: req.headers.upgrade, forwardedFor: typeof xff === 'string' ? xff : undefined });
  });
  return { h, upgrades };
}

/**
 * `count` messages each way, both sides sending at once; asserts exactly
 * once and in order on both sides (messages numbered on from what each side
 * already got).
 */
async function exchange(r: Rig, tag: string, count: number): Promise<void> {
  const fromUp = r.atServer.length;
  const fromDown = r.atClient.length;
  await Promise.all([
    (async () => {
      for (let i = 0; i < count; i++) await r.c.send(message(`${tag} up`, fromUp + i));
    })(),
    (async () => {
      for (let i = 0; i < count; i++) await r.session.send(message(`${tag} down`, fromDown + i));
    })(),
  ]);
  await waitFor(() => r.atServer.length >= fromUp + count && r.atClient.length >= fromDown + count, 20_000, `${tag}: both ways delivered`);
  // A moment more, so that a late duplicate would show.
  await sleep(100);
  assert.deepEqual(show(r.atServer.slice(fromUp)), expected(`${tag} up`, fromUp, count), `${tag}: client to server exactly once, in order`);
  assert.deepEqual(show(r.atClient.slice(fromDown)), expected(`${tag} down`, fromDown, count), `${tag}: server to client exactly once, in order`);
}

/**
 * A TCP tap between nginx and the server: forwards bytes as they are, and
 * for each connection the server answered with a 101, notes when each chunk
 * came from the server (its heartbeats, when idle) and whether it is still open.
 */
class UpgradeTap {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Per upgraded connection: times (ms, performance.now()) of the server's chunks; `open` until either side closes. */
  readonly upgraded: Array<{ chunks: number[]; open: boolean }> = [];
  port = 0;

  constructor(target: number) {
    this.#server = net.createServer((near) => {
      const far = net.connect(target, '127.0.0.1');
      for (const s of [near, far]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      let first = true;
      let record: { chunks: number[]; open: boolean } | undefined;
      near.on('data', (d: Buffer) => far.write(d));
      far.on('data', (d: Buffer) => {
        if (first && d.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') {
          record = { chunks: [], open: true };
          this.upgraded.push(record);
        }
        first = false;
        record?.chunks.push(performance.now());
        near.write(d);
      });
      const closed = (): void => {
        if (record) record.open = false;
        near.destroy();
        far.destroy();
      };
      near.on('close', closed);
      far.on('close', closed);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    assert.ok(address !== null && typeof address === 'object');
    this.port = address.port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Set proxy variables for one test, restoring them afterwards. */
function withProxyEnv(t: TestContext, vars: Record<string, string>): void {
  const saved = new Map<string, string | undefined>();
  for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
    saved.set(k, process.env[k]);
    delete process.env[k];
  }
  for (const [k, v] of Object.entries(vars)) process.env[k] = v;
  t.after(() => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describe('WebSocket through nginx (reverse proxy)', { timeout: 120_000 }, () => {
  it('with the upgrade headers: the session runs on a WebSocket that the server saw come through nginx', async (t) => {
    const { h, upgrades } = await serverNotingUpgrades(t, 5_000);
    const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: portOf(h.url) }], webSocketUpgrade: true });
    t.after(() => nginx.stop());
    const r = await rig(t, h, new HoldlineClient(`${nginx.url}/holdline`, { reconnect: RECONNECT }), upgrades);

    await waitFor(() => r.c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    assert.deepEqual(r.switches, [{ transport: 'websocket', previous: 'polling' }]);
    const before = r.c.stats;
    await exchange(r, 'ws', 300);
    const after = r.c.stats;
    assert.equal(after.polls, before.polls, 'no poll while on the WebSocket');
    assert.equal(after.sendRequests, before.sendRequests, 'no HTTP send while on the WebSocket');
    assert.equal(r.c.transport, 'websocket');
    assert.equal(r.c.state, 'open');
    assert.deepEqual(r.errors, []);

    // The server saw one upgrade, and it came through nginx (nginx added X-Forwarded-For and passed Upgrade on).
    assert.equal(upgrades.length, 1, `upgrades at the server: ${JSON.stringify(upgrades)}`);
    assert.deepEqual(upgrades[0], { url: '/holdline/ws', upgrade: 'websocket', forwardedFor: '127.0.0.1' });
    // nginx logs an upgraded request when the connection ends: a 101, from the upstream.
    await r.c.close();
    const entry = await nginx.waitForAccessEntry((e) => e.uri === '/holdline/ws', 10_000);
    assert.equal(entry.status, 101);
    assert.equal(entry.upstreamStatus, '101');
    t.diagnostic(`nginx: GET /holdline/ws ${entry.status}, upgraded connection lived ${entry.requestTime} s; polls before the switch: ${before.polls}`);
  });

  it('without the upgrade headers: the session stays on polling and works; nothing reaches the app', async (t) => {
    const { h, upgrades } = await serverNotingUpgrades(t, 5_000);
    const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: portOf(h.url) }] });
    t.after(() => nginx.stop());
    const r = await rig(t, h, new HoldlineClient(`${nginx.url}/holdline`, { reconnect: RECONNECT }), upgrades);

    // The upgrade tried reaches the server as a plain GET (nginx drops the hop-by-hop Upgrade header).
    const first = await nginx.waitForAccessEntry((e) => e.uri === '/holdline/ws', 10_000);
    await exchange(r, 'poll', 300);
    // Several back-off delays (maxDelayMs 150 ms) after the attempts: no more come.
    await sleep(1_000);
    const tries = (await nginx.accessLog()).filter((e) => e.uri === '/holdline/ws');
    t.diagnostic(
      `nginx: ${tries.length} WebSocket attempt(s), answered ${tries.map((e) => `${e.status} (upstream ${e.upstreamStatus ?? '-'})`).join(', ')}; ` +
        `polls ${r.c.stats.polls}, sends ${r.c.stats.sendRequests}`,
    );
    assert.notEqual(first.status, 101);
    assert.equal(tries.length, 1, `a path that never opened a WebSocket is tried once this session; attempts: ${tries.length}`);
    assert.ok(tries.every((e) => e.status !== 101 && e.upstreamStatus !== null), 'each attempt reached the server and was not upgraded');
    assert.deepEqual(upgrades, [], 'no upgrade reached the server');
    assert.equal(r.c.transport, 'polling');
    assert.deepEqual(r.switches, []);
    assert.deepEqual(r.errors, [], 'no error event');
    assert.equal(r.c.state, 'open');
    assert.ok(r.c.stats.polls > 0 && r.c.stats.sendRequests > 0, 'polls and sends went through nginx');
  });

  it('idle longer than proxy_read_timeout (3 s) with pollTimeoutMs 1 s: heartbeats every ~1 s keep the WebSocket; nothing switches', async (t) => {
    const { h, upgrades } = await serverNotingUpgrades(t, 1_000);
    const tap = new UpgradeTap(portOf(h.url));
    await tap.listen();
    t.after(() => tap.close());
    const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: tap.port }], webSocketUpgrade: true, proxyReadTimeoutSec: 3 });
    t.after(() => nginx.stop());
    const r = await rig(t, h, new HoldlineClient(`${nginx.url}/holdline`, { reconnect: RECONNECT }), upgrades);

    await waitFor(() => r.c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    await exchange(r, 'before idle', 50);
    const IDLE_MS = 8_000;
    const idleFrom = performance.now();
    await sleep(IDLE_MS);
    const idleTo = performance.now();

    // One upgraded connection, still open, carrying the session all along.
    assert.equal(tap.upgraded.length, 1, 'no second WebSocket');
    const conn = tap.upgraded[0];
    assert.ok(conn !== undefined);
    assert.equal(conn.open, true, 'nginx did not close the upgraded connection');
    assert.equal(r.c.transport, 'websocket');
    assert.deepEqual(r.switches, [{ transport: 'websocket', previous: 'polling' }]);
    assert.doesNotMatch(await nginx.errorLog(), /timed out/, 'no proxy_read_timeout in nginx');

    // The server's chunks during the idle period: its heartbeats. Gaps between them (and from the edges).
    const beats = conn.chunks.filter((at) => at > idleFrom && at <= idleTo);
    const marks = [idleFrom, ...beats, idleTo];
    const gaps = marks.slice(1).map((at, i) => at - (marks[i] ?? at));
    const maxGap = Math.max(...gaps);
    const inner = gaps.slice(1, -1).sort((a, b) => a - b);
    const median = inner[Math.floor(inner.length / 2)] ?? NaN;
    t.diagnostic(`idle ${IDLE_MS} ms: ${beats.length} heartbeat chunks from the server, median gap ${median.toFixed(0)} ms, max gap ${maxGap.toFixed(0)} ms (proxy_read_timeout 3000 ms)`);
    // pollTimeoutMs 1 s should mean a heartbeat every ~1 s: 8 s idle has at least 5 of them, and no gap near 3 s.
    assert.ok(beats.length >= 5, `heartbeats in ${IDLE_MS} ms: ${beats.length}`);
    assert.ok(maxGap < 2_500, `the longest silence from the server: ${maxGap.toFixed(0)} ms`);

    await exchange(r, 'after idle', 50);
    assert.equal(r.c.transport, 'websocket');
    assert.equal(tap.upgraded.length, 1);
    assert.deepEqual(r.errors, []);
    assert.equal(r.c.state, 'open');
    assert.equal(upgrades.length, 1);
  });

  it('control: a heartbeat longer than proxy_read_timeout (pollTimeoutMs 25 s, nginx 3 s) gets the upgraded connection cut; the session goes on', async (t) => {
    const { h, upgrades } = await serverNotingUpgrades(t, 25_000);
    const nginx = await startNginx({ upstreams: [{ host: '127.0.0.1', port: portOf(h.url) }], webSocketUpgrade: true, proxyReadTimeoutSec: 3 });
    t.after(() => nginx.stop());
    const r = await rig(t, h, new HoldlineClient(`${nginx.url}/holdline`, { reconnect: RECONNECT }), upgrades);

    await waitFor(() => r.c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    const upAt = performance.now();
    // Idle: nginx cuts the silent upgraded connection after 3 s; the client moves to polling at once.
    await waitFor(() => r.switches.some((s) => s.transport === 'polling'), 10_000, 'cut by nginx, back on polling');
    const cutAfter = performance.now() - upAt;
    const errorLog = await nginx.errorLog();
    assert.match(errorLog, /timed out.*while proxying upgraded connection/);
    t.diagnostic(`upgraded connection cut ${cutAfter.toFixed(0)} ms after it came up; switches: ${r.switches.map((s) => s.transport).join(' ')}`);
    assert.ok(cutAfter >= 2_500, `not cut before proxy_read_timeout: ${cutAfter.toFixed(0)} ms`);
    // The transport event says why: the connection closed under the client, with no close frame.
    const down = r.switches.find((s) => s.transport === 'polling');
    assert.equal(down?.reason?.code, 'network_error');
    assert.match(down.reason.message, /the WebSocket closed \(code \d+.*\) without a close frame/);
    await exchange(r, 'after the cut', 50);
    assert.equal(r.c.state, 'open');
    assert.equal(r.c.stats.resets, 0);
  });
});

describe('WebSocket through squid (forward proxy, CONNECT only to 443)', { timeout: 120_000 }, () => {
  for (const via of ['HTTP_PROXY', 'proxy option'] as const) {
    it(`via ${via}: the WebSocket's CONNECT is refused (403); the session stays on polling through squid; nothing reaches the app`, async (t) => {
      const squid = await startSquid();
      t.after(() => squid.stop());
      const { h, upgrades } = await serverNotingUpgrades(t, 5_000);
      const port = portOf(h.url);
      assert.notEqual(port, 443);
      withProxyEnv(t, via === 'HTTP_PROXY' ? { HTTP_PROXY: squid.url } : {});
      const options = via === 'HTTP_PROXY' ? { reconnect: RECONNECT } : { reconnect: RECONNECT, proxy: squid.url };
      const r = await rig(t, h, new HoldlineClient(h.url, options), upgrades);

      const isConnect = (e: { method: string }) => e.method === 'CONNECT';
      await squid.waitForAccessEntry(isConnect, 10_000);
      await exchange(r, 'squid', 300);
      // Several back-off delays (maxDelayMs 150 ms) after the attempts: no more come.
      await sleep(1_000);
      const log = await squid.accessLog();
      const connects = log.filter(isConnect);
      const ours = log.filter((e) => e.url.startsWith(`http://127.0.0.1:${port}/holdline/`));
      t.diagnostic(
        `squid: ${connects.length} CONNECT(s) ${connects.map((e) => `${e.url} ${e.squidStatus}/${e.httpStatus}`).join(', ')}; ` +
          `${ours.filter((e) => e.url.endsWith('/poll')).length} polls and ${ours.filter((e) => e.url.endsWith('/send')).length} sends through squid`,
      );
      assert.equal(connects.length, 1, `a path that never opened a WebSocket is tried once this session; CONNECT attempts: ${connects.length}`);
      for (const e of connects) {
        assert.equal(e.url, `127.0.0.1:${port}`);
        assert.equal(e.httpStatus, 403);
        assert.equal(e.squidStatus, 'TCP_DENIED');
      }
      assert.deepEqual(upgrades, [], 'no upgrade reached the server');
      assert.ok(ours.some((e) => e.url.endsWith('/poll') && e.httpStatus === 200), 'polls went through squid');
      assert.ok(ours.some((e) => e.url.endsWith('/send') && e.httpStatus === 200), 'sends went through squid');
      assert.equal(r.c.transport, 'polling');
      assert.deepEqual(r.switches, []);
      assert.deepEqual(r.errors, [], 'no error event');
      assert.equal(r.c.state, 'open');
    });
  }
});
