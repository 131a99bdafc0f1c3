/**
 * Link and Lane: one connection proxied by the fault proxy (see
 * ../fault-proxy.ts). A Link owns the client socket, the upstream socket, an
 * HttpFramer per direction and one Lane per direction; it asks its proxy
 * (LinkContext) for a decision on every request head, and executes it: holds a
 * message back and cuts it, or queues a kill. A Lane is one direction: an
 * ordered queue from src to dst that applies latency, bandwidth pacing and
 * stalls, and runs kill markers in order with the data, so a kill destroys the
 * connection only once every earlier byte is in the kernel.
 */
import type net from 'node:net';
import { connectRelayUpstream } from '../tls.js';
import type { FaultKind, FaultProxyStats } from '../fault-proxy.js';
import { HttpFramer, type MessageHead } from './http-framer.js';

const STAT_KEY = { request: 'request', 'mid-response': 'midResponse', 'after-response': 'afterResponse', 'before-response': 'beforeResponse' } as const;
const MAX_HOLD = 1024 * 1024; // a held (doomed) message is cut at this size
const HIGH_WATER = 1024 * 1024; // stop reading while a lane queues more

type LaneItem = { at: number; bytes: Buffer } | { at: number; kill: FaultKind } | { at: number; end: true };

export interface Exchange {
  readonly method: string;
  readonly fault: FaultKind | null;
  readonly frac: number; // where to cut, for the partial kinds
  started: boolean; // a response head was seen
}

/** What a link needs from its proxy. */
export interface LinkContext {
  readonly stats: FaultProxyStats;
  readonly latencyMs: number;
  readonly bandwidth: number; // bytes/s, 0 = unlimited
  decide(head: MessageHead): Exchange;
  drawStall(): number; // a stall duration in ms, or 0
}

/** One direction of a link: ordered, delayed, paced writes from src to dst. */
class Lane {
  /** A kill is queued: any later input is dropped. */
  doomed = false;
  readonly #items: LaneItem[] = [];
  #hold: { parts: Buffer[]; bytes: number; frac: number; fault: FaultKind } | undefined;
  #queued = 0; // bytes in #items
  #inFlight = 0; // writes whose callback has not run yet
  #pendingKill: FaultKind | undefined;
  #timer: NodeJS.Timeout | undefined;
  #blocked = false; // waiting for 'drain'
  #srcPaused = false;
  #busyUntil = 0; // bandwidth pacing
  #disposed = false;

  constructor(
    readonly link: Link,
    readonly src: net.Socket,
    readonly dst: net.Socket,
    readonly ctx: LinkContext,
  ) {}

  push(bytes: Buffer): void {
    if (this.doomed || bytes.length === 0) return;
    if (this.#hold !== undefined) {
      this.#hold.parts.push(bytes);
      this.#hold.bytes += bytes.length;
      if (this.#hold.bytes > MAX_HOLD) this.cut();
      return;
    }
    this.#items.push({ at: performance.now() + this.ctx.latencyMs, bytes });
    this.#queued += bytes.length;
    if (this.#queued > HIGH_WATER && !this.#srcPaused) {
      this.#srcPaused = true;
      this.src.pause();
    }
    this.#pump();
  }

  /** Starts holding bytes back; `cut()` later forwards a random prefix and kills. */
  hold(frac: number, fault: FaultKind): void {
    this.#hold ??= { parts: [], bytes: 0, frac, fault };
  }

  /** Forwards a prefix of the held bytes (at least 1 byte, never all), then kills. False if not holding. */
  cut(): boolean {
    const hold = this.#hold;
    this.#hold = undefined;
    if (hold === undefined) return false;
    const all = Buffer.concat(hold.parts);
    this.push(all.subarray(0, 1 + Math.floor(hold.frac * Math.max(0, all.length - 1))));
    this.kill(hold.fault);
    return true;
  }

  /** Forwards anything held, unharmed (pass-through, or the stream ended early). */
  release(): void {
    const hold = this.#hold;
    this.#hold = undefined;
    if (hold !== undefined) this.push(Buffer.concat(hold.parts));
  }

  kill(fault: FaultKind): void {
    if (this.doomed) return;
    this.doomed = true;
    this.#items.push({ at: 0, kill: fault });
    this.#pump();
  }

  end(): void {
    this.release();
    if (this.doomed) return;
    this.#items.push({ at: performance.now() + this.ctx.latencyMs, end: true });
    this.#pump();
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    this.#items.length = 0;
  }

  readonly #onWritten = (err?: Error | null): void => {
    if (--this.#inFlight === 0 && !err && this.#pendingKill !== undefined) this.link.fault(this.#pendingKill);
  };

  #pump(): void {
    if (this.#disposed || this.#timer !== undefined || this.#blocked) return;
    const rate = this.ctx.bandwidth;
    for (let item = this.#items[0]; item !== undefined; item = this.#items[0]) {
      if ('kill' in item) {
        // No latency, pacing or stall: destroy as soon as every earlier byte is in the kernel,
        // before a client that has the whole response can send its next request.
        this.#items.shift();
        if (this.#inFlight === 0) this.link.fault(item.kill);
        else this.#pendingKill = item.kill;
        return;
      }
      const now = performance.now();
      const wait = Math.max(item.at, this.link.stallUntil, this.#busyUntil) - now;
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, Math.ceil(wait));
        return;
      }
      if ('end' in item) {
        this.#items.shift();
        this.dst.end();
        continue;
      }
      // With a bandwidth cap, write 50 ms worth at a time, then wait that long.
      const slice = rate > 0 ? Math.max(1, Math.floor(rate / 20)) : Infinity;
      const bytes = item.bytes.length > slice ? item.bytes.subarray(0, slice) : item.bytes;
      if (bytes === item.bytes) this.#items.shift();
      else item.bytes = item.bytes.subarray(slice);
      if (rate > 0) this.#busyUntil = now + (bytes.length * 1000) / rate;
      this.#queued -= bytes.length;
      if (this.#srcPaused && this.#queued < HIGH_WATER / 2) {
        this.#srcPaused = false;
        this.src.resume();
      }
      this.#inFlight++;
      if (!this.dst.write(bytes, this.#onWritten)) {
        this.#blocked = true;
        this.dst.once('drain', () => {
          this.#blocked = false;
          this.#pump();
        });
        return;
      }
    }
  }
}

/** One proxied connection: client socket, upstream socket, two lanes, two framers. */
export class Link {
  readonly closed: Promise<void>;
  destroyed = false;
  /** Both lanes hold their writes until this time (performance.now()). */
  stallUntil = 0;
  readonly #ctx: LinkContext;
  readonly #sockets: [client: net.Socket, upstream: net.Socket];
  readonly #up: Lane;
  readonly #down: Lane;
  readonly #exchanges: Exchange[] = []; // requests whose final response has not ended
  readonly #requests = new HttpFramer('request');
  readonly #responses = new HttpFramer('response', () => this.#exchanges[0]?.method);
  #passThrough = false;

  constructor(ctx: LinkContext, client: net.Socket, target: { host: string; port: number }) {
    const upstream = connectRelayUpstream(target.port, { host: target.host, allowHalfOpen: true, noDelay: true });
    this.#ctx = ctx;
    this.#sockets = [client, upstream];
    this.#up = new Lane(this, client, upstream, ctx);
    this.#down = new Lane(this, upstream, client, ctx);
    this.closed = new Promise((resolve) => {
      let open = 2;
      const onClose = (): void => {
        if (--open > 0) return;
        this.destroy(); // clears lane timers
        resolve();
      };
      for (const socket of this.#sockets) socket.once('close', onClose);
    });
    for (const socket of this.#sockets) socket.on('error', () => this.destroy());
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.#fromTarget(chunk));
    client.on('end', () => this.#onEnd(this.#up, this.#requests));
    upstream.on('end', () => this.#onEnd(this.#down, this.#responses));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#up.dispose();
    this.#down.dispose();
    for (const socket of this.#sockets) socket.destroy();
  }

  fault(kind: FaultKind): void {
    if (this.destroyed) return;
    this.#ctx.stats.faults[STAT_KEY[kind]]++;
    this.#ctx.stats.faults.total++;
    this.destroy();
  }

  #maybeStall(): void {
    const now = performance.now();
    const duration = now < this.stallUntil ? 0 : this.#ctx.drawStall();
    if (duration > 0) this.stallUntil = now + duration;
  }

  #fromClient(chunk: Buffer): void {
    this.#maybeStall();
    if (this.#passThrough) return this.#up.push(chunk);
    for (const event of this.#requests.push(chunk)) {
      if (this.#up.doomed) return; // killed mid-chunk: ignore whatever follows
      if (event.type === 'head') {
        const exchange = this.#ctx.decide(event.head);
        this.#exchanges.push(exchange);
        if (exchange.fault === 'request') this.#up.hold(exchange.frac, 'request');
      } else if (event.type === 'data') {
        this.#up.push(event.bytes);
      } else if (event.type === 'end') {
        this.#up.cut(); // no-op unless this request is being held for a `request` fault
      } else {
        this.#toPassThrough();
        this.#up.push(event.bytes);
      }
    }
  }

  #fromTarget(chunk: Buffer): void {
    this.#maybeStall();
    if (this.#passThrough) return this.#down.push(chunk);
    for (const event of this.#responses.push(chunk)) {
      if (this.#down.doomed) return;
      if (event.type === 'head') {
        const exchange = this.#exchanges[0];
        if (exchange === undefined) continue; // unsolicited (e.g. a 408): never faulted
        if (!exchange.started && exchange.fault === 'before-response') this.#down.kill('before-response');
        exchange.started = true;
        if (exchange.fault === 'mid-response' && event.head.status >= 200 && event.head.framing !== 'raw') {
          this.#down.hold(exchange.frac, 'mid-response');
        }
      } else if (event.type === 'data') {
        this.#down.push(event.bytes);
      } else if (event.type === 'end') {
        if (event.head.status < 200) continue; // an interim 1xx
        this.#ctx.stats.responses++;
        const exchange = this.#exchanges.shift();
        if (!this.#down.cut() && exchange?.fault === 'after-response') this.#down.kill('after-response');
      } else {
        this.#toPassThrough();
        this.#down.push(event.bytes);
      }
    }
  }

  #toPassThrough(): void {
    if (this.#passThrough) return;
    this.#passThrough = true;
    this.#ctx.stats.passThroughConnections++;
    this.#up.release();
    this.#down.release();
    this.#up.push(this.#requests.drain());
    this.#down.push(this.#responses.drain());
  }

  #onEnd(lane: Lane, framer: HttpFramer): void {
    lane.release(); // the sender stopped mid-message: deliver what there is
    if (!this.#passThrough) lane.push(framer.drain());
    lane.end();
  }
}
