/**
 * The client on a WebSocket (PROTOCOL.md, "WebSocket") against a real
 * HoldlineServer: binary as binary frames (seen on the wire by a byte-level
 * tap), exactly-once across forced switches both ways mid-stream, a proxy
 * that kills upgraded connections (down with nothing lost, then up again;
 * and one that always kills them: the session stays on polling), and the
 * cases where no WebSocket is used.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { HoldlineClient } from '../client/index.js';
import type { TransportEvent } from '../client/index.js';
import type { Session } from '../server/index.js';
import type { HoldlineError, Payload } from '../shared/index.js';
import { Cleanup, startServer, withTimeout } from './helpers/server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolve once `check()` holds, looking every 10 ms; reject after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(10);
  }
}

/** Message i: every third is binary (4 bytes of i, then 0xff), the others text. */
function message(side: 'up' | 'down', i: number): Payload {
  if (i % 3 !== 0) return `${side} ${i}`;
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, i);
  b[4] = side === 'up' ? 0xff : 0xfe;
  return b;
}

/** What a message list says, compactly, for deepEqual: binary as `bin:<hex>`. */
function show(m: readonly Payload[]): string[] {
  return m.map((p) => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`));
}

function expected(side: 'up' | 'down', count: number): string[] {
  return show(Array.from({ length: count }, (_, i) => message(side, i)));
}

interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Reads WebSocket frames from one direction of a connection (after the HTTP head), unmasking client frames. */
class FrameReader {
  #buf = Buffer.alloc(0);
  #headDone = false;
  readonly frames: Frame[] = [];

  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (!this.#headDone) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.#headDone = true;
      this.#buf = this.#buf.subarray(end + 4);
    }
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return;
      const opcode = (b[0] ?? 0) & 0x0f;
      const masked = ((b[1] ?? 0) & 0x80) !== 0;
      let len = (b[1] ?? 0) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (b.length < at + len) return;
      const payload = Buffer.from(b.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] = (payload[i] ?? 0) ^ (b[maskAt + (i % 4)] ?? 0);
      this.frames.push({ opcode, payload });
      this.#buf = b.subarray(at + len);
    }
  }
}

interface ProxyOptions {
  /** Destroy an upgraded connection this long after the 101 (undefined: never). */
  killAfterMs?: number;
  /** Only the first this many upgraded connections are killed. Default: all. */
  killFirst?: number;
  /** Keep the WebSocket frames of upgraded connections, both ways. */
  record?: boolean;
  /**
   * Drop every upgrade request without an answer: all a browser learns of a
   * 404 to the upgrade (no WebSocket path there) is a failed handshake.
   */
  refuseUpgrades?: boolean;
}

/**
 * A loopback TCP proxy that forwards bytes as they are, tells upgraded
 * connections (the answer starts "HTTP/1.1 101") from the rest, and can
 * destroy those some time after the 101 or read their frames.
 */
class UpgradeProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #options: ProxyOptions;
  /** Connections that began with a GET (polls and sends are POSTs): WebSocket upgrades tried. */
  upgradeRequests = 0;
  upgrades = 0;
  killed = 0;
  readonly up = new FrameReader();
  readonly down = new FrameReader();
  port = 0;

  constructor(target: number, options: ProxyOptions) {
    this.#options = options;
    this.#server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      let first = true;
      let upgraded = false;
      let request = true;
      const requestHead: Buffer[] = [];
      client.on('data', (chunk: Buffer) => {
        if (request && chunk.subarray(0, 4).toString('latin1') === 'GET ') {
          this.upgradeRequests++;
          if (options.refuseUpgrades === true) {
            client.destroy();
            upstream.destroy();
            return;
          }
        }
        request = false;
        upstream.write(chunk);
        if (options.record !== true) return;
        if (upgraded) this.up.push(chunk);
        else requestHead.push(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (first) {
          first = false;
          if (chunk.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') {
            upgraded = true;
            this.#upgraded(client, upstream);
            if (options.record === true) for (const c of requestHead.splice(0)) this.up.push(c);
          }
        }
        if (upgraded && options.record === true) this.down.push(chunk);
        client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  #upgraded(client: net.Socket, upstream: net.Socket): void {
    const n = ++this.upgrades;
    const { killAfterMs, killFirst } = this.#options;
    if (killAfterMs === undefined || (killFirst !== undefined && n > killFirst)) return;
    setTimeout(() => {
      this.killed++;
      client.destroy();
      upstream.destroy();
    }, killAfterMs).unref();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The server's side of a session: every message it got, and the first session itself. */
function collect(h: { hl: { once(e: 'session', fn: (s: Session) => void): unknown } }): { got: Payload[]; session: Promise<Session> } {
  const got: Payload[] = [];
  const session = new Promise<Session>((resolve) => {
    h.hl.once('session', (s) => {
      s.on('message', (m) => got.push(m));
      resolve(s);
    });
  });
  return { got, session };
}

/** A client whose events are noted: received messages, transport switches, errors. */
function watch(c: HoldlineClient): { got: Payload[]; switches: TransportEvent[]; errors: HoldlineError[] } {
  const got: Payload[] = [];
  const switches: TransportEvent[] = [];
  const errors: HoldlineError[] = [];
  c.on('message', (m) => got.push(m));
  c.on('transport', (e) => switches.push(e));
  c.on('error', (e) => errors.push(e));
  return { got, switches, errors };
}

const RECONNECT = { minDelayMs: 20, maxDelayMs: 150 };

describe('client on a WebSocket', { timeout: 90_000 }, () => {
  it('moves to a WebSocket after the open; binary goes as binary frames both ways, text as text, no polls or sends meanwhile', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const proxy = new UpgradeProxy(Number(new URL(h.url).port), { record: true });
    await proxy.listen();
    cleanup.add(() => proxy.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${proxy.port}/`), { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    await until(() => c.transport === 'websocket', 10_000, 'the client on a WebSocket');
    assert.deepEqual(w.switches, [{ transport: 'websocket', previous: 'polling' }]);
    const before = c.stats;

    const count = 60;
    for (let i = 0; i < count; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length === count && w.got.length === count, 10_000, 'both ways delivered');
    assert.deepEqual(show(server.got), expected('up', count));
    assert.deepEqual(show(w.got), expected('down', count));
    const after = c.stats;
    assert.equal(after.polls, before.polls, 'no poll while on the WebSocket');
    assert.equal(after.sendRequests, 0, 'no HTTP send at all');
    assert.equal(after.transportSwitches, 1);

    // On the wire: each binary message is one binary frame holding its bytes; no base64 JSON anywhere.
    await sleep(50);
    const binUp = proxy.up.frames.filter((f) => f.opcode === 2).map((f) => `bin:${f.payload.toString('hex')}`);
    const binDown = proxy.down.frames.filter((f) => f.opcode === 2).map((f) => `bin:${f.payload.toString('hex')}`);
    assert.deepEqual(binUp, expected('up', count).filter((m) => m.startsWith('bin:')));
    assert.deepEqual(binDown, expected('down', count).filter((m) => m.startsWith('bin:')));
    const texts = [...proxy.up.frames, ...proxy.down.frames].filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
    assert.ok(texts.includes('up 1') && texts.includes('down 1'), 'a text message is a text frame holding the text');
    assert.deepEqual(texts.filter((s) => s.includes('"b"')), [], 'no base64 {"b":…} on the WebSocket');
    assert.equal(proxy.upgrades, 1);
    assert.deepEqual(w.errors, []);
  });

  it('exactly once, in order, 20,000 messages each way (text and binary) across forced switches down and up mid-stream', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    // The server-side sockets of WebSocket upgrades: destroying one is the downgrade.
    const upgraded = new Set<Duplex>();
    h.server.on('upgrade', (_req, socket: Duplex) => {
      upgraded.add(socket);
      socket.on('close', () => upgraded.delete(socket));
    });
    const server = collect(h);
    const c = new HoldlineClient(h.url, { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;

    const COUNT = 20_000;
    const CHUNK = 500;
    const KILLS = 3;
    let kills = 0;
    let upSince = 0;
    c.on('transport', (e) => {
      if (e.transport === 'websocket') upSince = Date.now();
    });
    // Each sender waits at its gates until the switcher driver has killed the WebSocket that many times.
    const gate = async (i: number) => {
      const due = Math.floor(i / (COUNT / (KILLS + 1)));
      if (i % CHUNK === 0 && due > 0) await until(() => kills >= Math.min(due, KILLS), 30_000, `kill ${due}`);
    };
    const driver = (async () => {
      while (kills < KILLS) {
        await until(() => c.transport === 'websocket' && Date.now() - upSince > RECONNECT.maxDelayMs + 50, 30_000, 'on a WebSocket a while');
        // Mid-stream: both sides have sent some and not all.
        await until(() => server.got.length > kills * 1000 && w.got.length > kills * 1000, 30_000, 'traffic before the kill');
        for (const s of upgraded) s.destroy();
        kills++;
        await until(() => c.transport === 'polling', 10_000, 'back on polling');
      }
    })();
    const up = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await gate(i);
        await c.send(message('up', i));
      }
    })();
    const down = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await gate(i);
        await session.send(message('down', i));
      }
    })();
    await withTimeout(Promise.all([up, down, driver]), 80_000, 'the exchange');
    await until(() => server.got.length >= COUNT && w.got.length >= COUNT, 30_000, 'everything delivered');
    await until(() => c.transport === 'websocket', 10_000, 'up again at the end');
    await sleep(100);
    assert.deepEqual(show(server.got), expected('up', COUNT), 'client to server: exactly once, in order');
    assert.deepEqual(show(w.got), expected('down', COUNT), 'server to client: exactly once, in order');
    assert.equal(kills, KILLS);
    const names = w.switches.map((s) => s.transport);
    assert.ok(names.length >= 2 * KILLS + 1, `switches: ${names.join(' ')}`);
    assert.deepEqual(names.slice(0, 2 * KILLS + 1), ['websocket', 'polling', 'websocket', 'polling', 'websocket', 'polling', 'websocket']);
    assert.equal(c.stats.transportSwitches, names.length);
    assert.equal(c.stats.resets, 0);
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
  });

  it('a proxy that kills upgraded connections after the 101: down with nothing lost, then up again once it lets one live', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const proxy = new UpgradeProxy(Number(new URL(h.url).port), { killAfterMs: 250, killFirst: 2 });
    await proxy.listen();
    cleanup.add(() => proxy.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${proxy.port}/`), { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    const COUNT = 3_000;
    // Paced so that the stream spans both kills and the last upgrade.
    const pace = (i: number) => (i % 100 === 99 ? sleep(10) : undefined);
    const up = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await c.send(message('up', i));
        await pace(i);
      }
    })();
    const down = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await session.send(message('down', i));
        await pace(i);
      }
    })();
    await withTimeout(Promise.all([up, down]), 60_000, 'the exchange');
    await until(() => proxy.killed === 2 && proxy.upgrades >= 3 && c.transport === 'websocket', 20_000, 'two kills, then a WebSocket that lives');
    await until(() => server.got.length >= COUNT && w.got.length >= COUNT, 20_000, 'everything delivered');
    await sleep(100);
    assert.deepEqual(show(server.got), expected('up', COUNT));
    assert.deepEqual(show(w.got), expected('down', COUNT));
    assert.deepEqual(w.switches.map((s) => s.transport).slice(0, 5), ['websocket', 'polling', 'websocket', 'polling', 'websocket']);
    assert.deepEqual(w.errors, []);
    assert.equal(c.state, 'open');
  });

  it('a proxy that kills every upgraded connection at once: after 3 failures the session stays on polling', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const proxy = new UpgradeProxy(Number(new URL(h.url).port), { killAfterMs: 0 });
    await proxy.listen();
    cleanup.add(() => proxy.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${proxy.port}/`), { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    await until(() => proxy.upgrades >= 3, 10_000, 'three upgrades');
    // Long enough for several more back-off delays (maxDelayMs 150 ms).
    await sleep(800);
    assert.equal(proxy.upgrades, 3, 'no fourth WebSocket');
    assert.equal(c.transport, 'polling');
    for (let i = 0; i < 30; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length >= 30 && w.got.length >= 30, 10_000, 'both ways on polling');
    assert.deepEqual(show(server.got), expected('up', 30));
    assert.deepEqual(show(w.got), expected('down', 30));
    assert.deepEqual(w.errors, []);
    assert.equal(c.state, 'open');
  });

  it('a WebSocket path that fails its first handshake with no status (as a browser sees a 404): one try only, the session stays on polling, no error', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const proxy = new UpgradeProxy(Number(new URL(h.url).port), { refuseUpgrades: true });
    await proxy.listen();
    cleanup.add(() => proxy.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${proxy.port}/`), { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    await until(() => proxy.upgradeRequests >= 1, 5_000, 'the upgrade tried');
    // Long enough for several back-off delays (maxDelayMs 150 ms): no second try.
    await sleep(800);
    assert.equal(proxy.upgradeRequests, 1, 'a path that never opened a WebSocket is not tried again this session');
    for (let i = 0; i < 20; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length >= 20 && w.got.length >= 20, 10_000, 'both ways on polling');
    assert.deepEqual(show(server.got), expected('up', 20));
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.equal(c.transport, 'polling');
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.switches, []);
  });

  it('stats.rttMs is measured on the WebSocket (hello to ok, batch to its ack), with no HTTP send to time', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url, { reconnect: RECONNECT, transports: ['websocket'] });
    cleanup.add(() => c.close());
    await c.connect();
    await server.session;
    for (let i = 0; i < 10; i++) await c.send(`m ${i}`);
    await until(() => server.got.length >= 10 && c.stats.messagesAcked >= 10, 10_000, 'sent and acknowledged');
    assert.equal(c.transport, 'websocket');
    assert.equal(c.stats.sendRequests, 0, 'nothing went over HTTP sends');
    assert.ok(c.stats.rttMs > 0, `rttMs measured on the WebSocket (got ${c.stats.rttMs})`);
    assert.ok(c.stats.rttMs < 10_000, `rttMs is a round trip in ms (got ${c.stats.rttMs})`);
  });

  it("transports ['polling'] never opens a WebSocket", async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    let upgrades = 0;
    h.server.on('upgrade', () => upgrades++);
    const server = collect(h);
    const c = new HoldlineClient(h.url, { reconnect: RECONNECT, transports: ['polling'] });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    for (let i = 0; i < 20; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length >= 20 && w.got.length >= 20, 10_000, 'both ways');
    await sleep(300);
    assert.equal(upgrades, 0);
    assert.equal(c.transport, 'polling');
    assert.deepEqual(w.switches, []);
    assert.ok(c.stats.polls > 0);
  });

  it("a server without WebSockets (transports ['polling'], 404 to the upgrade): the client stays on polling, no error", async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer({ transports: ['polling'] });
    cleanup.add(() => h.close());
    // Counted by a proxy: another 'upgrade' listener on the server would make it leave upgrades to that one.
    const proxy = new UpgradeProxy(Number(new URL(h.url).port), {});
    await proxy.listen();
    cleanup.add(() => proxy.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${proxy.port}/`), { reconnect: RECONNECT });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    await until(() => proxy.upgradeRequests >= 1, 5_000, 'the upgrade tried');
    for (let i = 0; i < 20; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length >= 20 && w.got.length >= 20, 10_000, 'both ways');
    await sleep(500);
    assert.equal(proxy.upgradeRequests, 1, 'a 404 is final for the session: no retries');
    assert.equal(proxy.upgrades, 0);
    assert.equal(c.transport, 'polling');
    assert.equal(c.state, 'open');
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.switches, []);
  });

  it("transports ['websocket']: no poll after the open; a close frame ends the client as a poll's would", async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer();
    cleanup.add(() => h.close());
    const server = collect(h);
    const c = new HoldlineClient(h.url, { reconnect: RECONNECT, transports: ['websocket'] });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    for (let i = 0; i < 20; i++) {
      await c.send(message('up', i));
      await session.send(message('down', i));
    }
    await until(() => server.got.length >= 20 && w.got.length >= 20, 10_000, 'both ways');
    assert.deepEqual(show(w.got), expected('down', 20));
    assert.equal(c.transport, 'websocket');
    assert.equal(c.stats.polls, 0);
    assert.equal(c.stats.sendRequests, 0);
    const closed = new Promise<string>((resolve) => c.once('close', (reason) => resolve(reason.code)));
    session.close({ code: 'server_closed', message: 'bye' });
    assert.equal(await withTimeout(closed, 5_000, 'close'), 'server_closed');
    assert.equal(c.state, 'closed');
  });

  it('a WebSocket that goes silent (a black-holing middlebox) is dropped after its heartbeat plus grace; polling carries on', async (t) => {
    const cleanup = new Cleanup();
    t.after(() => cleanup.run());
    const h = await startServer({ pollTimeoutMs: 1_000 });
    cleanup.add(() => h.close());
    // Forward everything, except that upgraded connections stop carrying anything 300 ms after the 101.
    let silenced = 0;
    const target = Number(new URL(h.url).port);
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      let muted = false;
      let first = true;
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.on('data', (d: Buffer) => muted || upstream.write(d));
      upstream.on('data', (d: Buffer) => {
        if (first && d.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101' && silenced++ === 0) {
          setTimeout(() => (muted = true), 300).unref();
        }
        first = false;
        if (!muted) client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      proxy.close(() => resolve());
    }));
    const port = (proxy.address() as net.AddressInfo).port;
    const server = collect(h);
    const c = new HoldlineClient(h.url.replace(/:\d+\//, `:${port}/`), { reconnect: { minDelayMs: 20, maxDelayMs: 5_000 }, pollGraceMs: 500 });
    cleanup.add(() => c.close());
    const w = watch(c);
    await c.connect();
    const session = await server.session;
    await until(() => c.transport === 'websocket', 5_000, 'up');
    await sleep(400);
    // Sent into the black hole: it must come again on polling.
    await c.send('into the void');
    await session.send('out of the void');
    const start = Date.now();
    await until(() => c.transport === 'polling', 5_000, 'dropped for silence');
    const took = Date.now() - start;
    assert.ok(took < 4_000, `noticed within the heartbeat (1 s) plus grace (0.5 s), give or take: ${took} ms`);
    await until(() => server.got.length >= 1 && w.got.length >= 1, 5_000, 'both delivered on polling');
    assert.deepEqual(server.got, ['into the void']);
    assert.deepEqual(w.got, ['out of the void']);
    assert.deepEqual(w.errors, []);
  });
});
