/**
 * What the client-on-a-WebSocket tests (test/client-websocket/*.test.ts)
 * share: numbered messages both ways (every third binary) and how to compare
 * them, a polling wait, the UpgradeProxy that tells upgraded connections from
 * the rest (and can record, kill, silence or refuse them), and the set-up of
 * one test: a server (`serve`), a proxy in front of it (`proxied`), a
 * connected client whose events are noted (`connect`), and a lock-step
 * exchange both ways (`exchange`). Everything a test starts is closed after
 * it, the last started first.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';
import { HoldlineClient } from '../../client/index.js';
import type { HoldlineClientOptions, TransportEvent } from '../../client/index.js';
import type { HoldlineServerOptions, Session } from '../../server/index.js';
import type { HoldlineError, Payload } from '../../shared/index.js';
import { Cleanup, startServer, type StartedServer } from '../helpers/server.js';
import { connectRelayUpstream, createRelayServer } from '../helpers/tls.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../helpers/wait.js';
export { sleep, waitFor };


/** Message i: every third is binary (4 bytes of i, then 0xff), the others text. */
export function message(side: 'up' | 'down', i: number): Payload {
  if (i % 3 !== 0) return `${side} ${i}`;
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, i);
  b[4] = side === 'up' ? 0xff : 0xfe;
  return b;
}

/** What a message list says, compactly, for deepEqual: binary as `bin:<hex>`. */
export function show(m: readonly Payload[]): string[] {
  return m.map((p) => (typeof p === 'string' ? p : `bin:${Buffer.from(p).toString('hex')}`));
}

export function expected(side: 'up' | 'down', count: number): string[] {
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

export interface ProxyOptions {
  /** Destroy an upgraded connection this long after the 101 (undefined: never). */
  killAfterMs?: number;
  /** Only the first this many upgraded connections are killed. Default: all. */
  killFirst?: number;
  /**
   * The first upgraded connection goes silent this long after its 101 (a
   * black-holing middlebox): from then on it carries nothing either way, and
   * stays open. Undefined: none does.
   */
  muteFirstAfterMs?: number;
  /** Keep the WebSocket frames of upgraded connections, both ways. */
  record?: boolean;
  /** Rewrite what an upgraded connection carries to the client (bytes after the 101's chunk), e.g. a frame's text, keeping its length. */
  rewriteDown?: (chunk: Buffer) => Buffer;
  /**
   * Drop every upgrade request without an answer: all a browser learns of a
   * 404 to the upgrade (no WebSocket path there) is a failed handshake.
   */
  refuseUpgrades?: boolean;
}

/**
 * A loopback TCP proxy that forwards bytes as they are, tells upgraded
 * connections (the answer starts "HTTP/1.1 101") from the rest, and can
 * destroy or silence those some time after the 101 or read their frames.
 * In TLS mode (the https run) it terminates TLS on both sides, as a
 * TLS-inspecting middlebox does: the client's https and wss end at it, it
 * reads the bytes in the clear, and it speaks TLS again to the server.
 */
export class UpgradeProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #options: ProxyOptions;
  /** Connections that began with a GET (polls and sends are POSTs): WebSocket upgrades tried. */
  upgradeRequests = 0;
  upgrades = 0;
  killed = 0;
  /** Chunks rewriteDown changed. */
  rewritten = 0;
  readonly up = new FrameReader();
  readonly down = new FrameReader();
  port = 0;

  constructor(target: number, options: ProxyOptions) {
    this.#options = options;
    this.#server = createRelayServer((client) => {
      const upstream = connectRelayUpstream(target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      let first = true;
      let upgraded = false;
      let request = true;
      let muted = false;
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
        if (muted) return;
        upstream.write(chunk);
        if (options.record !== true) return;
        if (upgraded) this.up.push(chunk);
        else requestHead.push(chunk);
      });
      upstream.on('data', (data: Buffer) => {
        if (muted) return;
        let chunk = data;
        const head = first;
        if (first) {
          first = false;
          if (chunk.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') {
            upgraded = true;
            const n = this.#upgraded(client, upstream);
            const { muteFirstAfterMs } = options;
            if (muteFirstAfterMs !== undefined && n === 1) setTimeout(() => (muted = true), muteFirstAfterMs).unref();
            if (options.record === true) for (const c of requestHead.splice(0)) this.up.push(c);
          }
        }
        if (upgraded && !head && options.rewriteDown !== undefined) {
          chunk = options.rewriteDown(chunk);
          if (!chunk.equals(data)) this.rewritten++;
        }
        if (upgraded && options.record === true) this.down.push(chunk);
        client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  /** Counts an upgraded connection and sets its kill, if it is to die; returns its number, from 1. */
  #upgraded(client: net.Socket, upstream: net.Socket): number {
    const n = ++this.upgrades;
    const { killAfterMs, killFirst } = this.#options;
    if (killAfterMs === undefined || (killFirst !== undefined && n > killFirst)) return n;
    setTimeout(() => {
      this.killed++;
      client.destroy();
      upstream.destroy();
    }, killAfterMs).unref();
    return n;
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
export function collect(h: { hl: { once(e: 'session', fn: (s: Session) => void): unknown } }): { got: Payload[]; session: Promise<Session> } {
  const got: Payload[] = [];
  const session = new Promise<Session>((resolve) => {
    h.hl.once('session', (s) => {
      s.on('message', (m) => got.push(m));
      resolve(s);
    });
  });
  return { got, session };
}

/** A client's noted events: received messages, transport switches, errors. */
export interface Watched {
  got: Payload[];
  switches: TransportEvent[];
  errors: HoldlineError[];
}

/** A client whose events are noted: received messages, transport switches, errors. */
export function watch(c: HoldlineClient): Watched {
  const got: Payload[] = [];
  const switches: TransportEvent[] = [];
  const errors: HoldlineError[] = [];
  c.on('message', (m) => got.push(m));
  c.on('transport', (e) => switches.push(e));
  c.on('error', (e) => errors.push(e));
  return { got, switches, errors };
}

export const RECONNECT = { minDelayMs: 20, maxDelayMs: 150 };

/** One test's server, and the clean-up (run after the test) that closes it and all started after it. */
export interface Rig {
  cleanup: Cleanup;
  h: StartedServer;
}

/** Start a server for test `t`; it is closed after the test. */
export async function serve(t: TestContext, options: HoldlineServerOptions = {}): Promise<Rig> {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const h = await startServer(options);
  cleanup.add(() => h.close());
  return { cleanup, h };
}

/** An UpgradeProxy in front of the rig's server, listening; closed after the test. */
export async function proxied(rig: Rig, options: ProxyOptions): Promise<UpgradeProxy> {
  const proxy = new UpgradeProxy(Number(new URL(rig.h.url).port), options);
  await proxy.listen();
  rig.cleanup.add(() => proxy.close());
  return proxy;
}

/** A connected client, watched, and the server's side of its session. */
export interface Connected {
  c: HoldlineClient;
  w: Watched;
  server: { got: Payload[] };
  session: Session;
}

/**
 * Connect a watched client (reconnect delays RECONNECT unless `options` say
 * otherwise) to the rig's server, through the proxy at `via` if given, and
 * wait for its session on the server; the client is closed after the test.
 */
export async function connect(rig: Rig, options: HoldlineClientOptions = {}, via?: UpgradeProxy): Promise<Connected> {
  const server = collect(rig.h);
  const url = via === undefined ? rig.h.url : rig.h.url.replace(/:\d+\//, `:${via.port}/`);
  const c = new HoldlineClient(url, { reconnect: RECONNECT, ...options });
  rig.cleanup.add(() => c.close());
  const w = watch(c);
  await c.connect();
  const session = await server.session;
  return { c, w, server, session };
}

/**
 * Send messages 0..count-1 both ways, one up then one down at a time, and
 * wait (10 s at most) until each side has at least `count`.
 */
export async function exchange({ c, w, server, session }: Connected, count: number, what: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    await c.send(message('up', i));
    await session.send(message('down', i));
  }
  await waitFor(() => server.got.length >= count && w.got.length >= count, 10_000, what);
}
