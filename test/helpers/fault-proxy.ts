/**
 * FaultProxy: a loopback TCP proxy for integration tests and benchmarks that
 * breaks HTTP/1.1 exchanges on purpose, reproducibly (seeded PRNG).
 *
 *   client ──► [client socket] ──── up lane ────► [upstream socket] ──► target
 *          ◄──                 ◄─── down lane ───                   ◄──
 *
 * - A Lane is one direction: an ordered queue that applies latency, bandwidth
 *   pacing and stalls, and runs "kill" markers in order with the data.
 * - An HttpFramer per lane finds message boundaries (head, then Content-Length
 *   or chunked body), so faults are drawn per *exchange*, not per connection:
 *   keep-alive clients reuse a handful of sockets for thousands of requests.
 * - Whatever the framer cannot follow (bad syntax, chunked request bodies, 101
 *   upgrades, close-delimited responses) turns the connection into plain
 *   pass-through (no more faults), counted in `stats.passThroughConnections`.
 *
 * Fault kinds, drawn when a request head is parsed:
 *   request          forward part of the request, then destroy both sockets
 *   before-response  the request was delivered; destroy as the response starts
 *   mid-response     forward part of the response (never all of it), destroy
 *   after-response   forward the whole response, destroy as soon as its last
 *                    byte is in the kernel: the client has it, the server
 *                    considers it delivered, the connection is gone
 * The two partial kinds hold the message back until its end (at most 1 MiB),
 * then forward a random prefix of it: cut points need the total length.
 */
import net from 'node:net';

export type FaultKind = 'request' | 'mid-response' | 'after-response' | 'before-response';
export const FAULT_KINDS: readonly FaultKind[] = ['request', 'mid-response', 'after-response', 'before-response'];

export interface FaultProxyOptions {
  /** Where every connection is forwarded. Loopback only. */
  target: { host: string; port: number };
  /** Probability (0..1) that an exchange is faulted. Default 0. */
  killRate?: number;
  /** Kinds to choose from, uniformly. Default: all four. */
  faults?: readonly FaultKind[];
  /** Delay added to every chunk, in each direction. Default 0. */
  latencyMs?: number;
  /** Cap per direction per connection. Default: unlimited. */
  bandwidthBytesPerSec?: number;
  /** Drawn per incoming chunk: hold both directions of that connection for durationMs. */
  stall?: { probability: number; durationMs: number };
  /** PRNG seed (uint32). Default: random; read it back as `proxy.seed`. */
  seed?: number;
  /** Called synchronously with the decision for every request head parsed. */
  onDecision?: (decision: FaultDecision) => void;
}

export interface FaultDecision {
  /** 0-based index of the request across the whole proxy. */
  readonly request: number;
  readonly method: string;
  readonly target: string;
  readonly fault: FaultKind | null;
}

export interface FaultProxyStats {
  connections: number;
  /** Request heads parsed. */
  requests: number;
  /** Final (non-1xx) responses fully received from the target. */
  responses: number;
  /** Faults executed (sockets destroyed), by kind. */
  faults: { request: number; midResponse: number; afterResponse: number; beforeResponse: number; total: number };
  stalls: number;
  passThroughConnections: number;
}

const STAT_KEY = { request: 'request', 'mid-response': 'midResponse', 'after-response': 'afterResponse', 'before-response': 'beforeResponse' } as const;
const EMPTY: Buffer = Buffer.alloc(0);
const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024; // a longer head counts as unparseable
const MAX_LINE = 4096; // chunk-size and trailer lines
const MAX_HOLD = 1024 * 1024; // a held (doomed) message is cut at this size
const HIGH_WATER = 1024 * 1024; // stop reading while a lane queues more
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) HTTP/1\\.[01]$`);
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/;
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`);
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/;

/** mulberry32: tiny and fast; good enough to make a failing run reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// HTTP/1.1 framing: just enough to know where each message starts and ends.

/** none: no body; length: Content-Length; chunked; raw: cannot follow, pass through. */
type Framing = 'none' | 'length' | 'chunked' | 'raw';

interface MessageHead {
  readonly method: string; // requests ('' for responses)
  readonly target: string; // requests ('' for responses)
  readonly status: number; // responses (0 for requests)
  readonly framing: Framing;
  readonly bodyBytes: number; // Content-Length, else 0
}

/** Events in byte order; the `data` (and `raw`) bytes are exactly the input. */
type FramerEvent =
  | { type: 'head'; head: MessageHead } // comes before the head's bytes
  | { type: 'data'; bytes: Buffer }
  | { type: 'end'; head: MessageHead } // comes after the message's last byte
  | { type: 'raw'; bytes: Buffer }; // gave up: these and all later bytes are unframed

class HttpFramer {
  readonly #role: 'request' | 'response';
  readonly #pendingMethod: () => string | undefined; // responses to HEAD have no body
  #state: 'head' | 'body' | 'size' | 'chunk' | 'chunk-end' | 'trailer' | 'raw' = 'head';
  #held: Buffer = EMPTY; // an incomplete head, not forwarded yet
  #line = '';
  #remaining = 0;
  #head: MessageHead | undefined;

  constructor(role: 'request' | 'response', pendingMethod: () => string | undefined = () => undefined) {
    this.#role = role;
    this.#pendingMethod = pendingMethod;
  }

  /** Takes back the bytes of an incomplete head (at end of stream, or on pass-through). */
  drain(): Buffer {
    const held = this.#held;
    this.#held = EMPTY;
    return held;
  }

  push(chunk: Buffer): FramerEvent[] {
    const out: FramerEvent[] = [];
    let pos = 0;
    let from = 0; // first byte of `chunk` not emitted yet
    const emit = (): void => {
      if (pos > from) out.push({ type: 'data', bytes: chunk.subarray(from, pos) });
      from = pos;
    };
    const finish = (head: MessageHead): void => {
      emit();
      out.push({ type: 'end', head });
      this.#state = 'head';
    };
    const giveUp = (): FramerEvent[] => {
      out.push({ type: 'raw', bytes: Buffer.concat([this.drain(), chunk.subarray(from)]) });
      this.#state = 'raw';
      return out;
    };
    while (pos < chunk.length) {
      const state = this.#state;
      if (state === 'raw') return giveUp();
      if (state === 'head') {
        const seen = this.#held.length;
        const buf = seen === 0 ? chunk.subarray(pos) : Buffer.concat([this.#held, chunk.subarray(pos)]);
        const at = buf.indexOf(CRLF2, Math.max(0, seen - 3));
        this.#held = at === -1 ? buf : buf.subarray(0, at + 4);
        pos = from = at === -1 ? chunk.length : pos + at + 4 - seen;
        if (at === -1) return buf.length > MAX_HEAD ? giveUp() : out;
        const head = this.#parseHead(this.#held);
        if (head === undefined) return giveUp();
        this.#head = head;
        out.push({ type: 'head', head }, { type: 'data', bytes: this.drain() });
        if (head.framing === 'raw') return giveUp();
        if (head.framing === 'none') finish(head);
        else [this.#state, this.#remaining] = head.framing === 'chunked' ? ['size', 0] : ['body', head.bodyBytes];
      } else if (state === 'body' || state === 'chunk') {
        const n = Math.min(this.#remaining, chunk.length - pos);
        [pos, this.#remaining] = [pos + n, this.#remaining - n];
        if (this.#remaining === 0 && state === 'chunk') this.#state = 'chunk-end';
        else if (this.#remaining === 0 && this.#head) finish(this.#head);
      } else {
        // Line states: a chunk size, the CRLF after chunk data, trailer lines.
        const nl = chunk.indexOf(0x0a, pos);
        const stop = nl === -1 ? chunk.length : nl + 1;
        this.#line += chunk.toString('latin1', pos, stop);
        pos = stop;
        if (this.#line.length > MAX_LINE) return giveUp();
        if (nl === -1) break;
        const line = this.#line.replace(/\r?\n$/, '');
        this.#line = '';
        if (state === 'size') {
          const [, size] = CHUNK_SIZE.exec(line) ?? [];
          if (size === undefined) return giveUp();
          this.#remaining = parseInt(size, 16);
          this.#state = this.#remaining === 0 ? 'trailer' : 'chunk';
        } else if (state === 'chunk-end') {
          if (line !== '') return giveUp();
          this.#state = 'size';
        } else if (line === '' && this.#head) {
          finish(this.#head); // the empty line closes the trailer section
        }
      }
    }
    emit();
    return out;
  }

  #parseHead(bytes: Buffer): MessageHead | undefined {
    const [first = '', ...lines] = bytes.toString('latin1', 0, bytes.length - 4).split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const [, field, value] = HEADER_LINE.exec(line) ?? [];
      if (field === undefined || value === undefined) return undefined; // also rejects obsolete line folding
      const name = field.toLowerCase();
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    }
    const te = headers.get('transfer-encoding');
    const cl = headers.get('content-length');
    const [length, ...otherLengths] = new Set((cl ?? '0').split(',').map((v) => v.trim()));
    if (length === undefined || otherLengths.length !== 0 || !/^\d{1,15}$/.test(length)) return undefined;
    const bodyBytes = Number(length);

    if (this.#role === 'request') {
      const [, method, target] = REQUEST_LINE.exec(first) ?? [];
      if (method === undefined || target === undefined) return undefined;
      // Chunked request bodies and CONNECT tunnels are not followed.
      const framing = te !== undefined || method === 'CONNECT' ? 'raw' : bodyBytes > 0 ? 'length' : 'none';
      return { method, target, status: 0, framing, bodyBytes };
    }
    const [, code] = STATUS_LINE.exec(first) ?? [];
    if (code === undefined) return undefined;
    const status = Number(code);
    let framing: Framing;
    if (status === 101) framing = 'raw'; // protocol switch
    else if (status < 200 || status === 204 || status === 304 || this.#pendingMethod() === 'HEAD') framing = 'none';
    else if (te !== undefined) framing = /(?:^|,)\s*chunked\s*$/i.test(te) ? 'chunked' : 'raw';
    else if (cl !== undefined) framing = bodyBytes > 0 ? 'length' : 'none';
    else framing = 'raw'; // delimited by connection close
    return { method: '', target: '', status, framing, bodyBytes };
  }
}

// ---------------------------------------------------------------------------
// Lanes and links: one link per proxied connection, one lane per direction.

type LaneItem = { at: number; bytes: Buffer } | { at: number; kill: FaultKind } | { at: number; end: true };

interface Exchange {
  readonly method: string;
  readonly fault: FaultKind | null;
  readonly frac: number; // where to cut, for the partial kinds
  started: boolean; // a response head was seen
}

/** What a link needs from its proxy. */
interface LinkContext {
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
class Link {
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
    const upstream = net.connect({ ...target, allowHalfOpen: true, noDelay: true });
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

// ---------------------------------------------------------------------------
// The proxy, and option validation (once, at construction).

function invalid(option: string, expected: string, value: unknown, range = false): never {
  const shown = typeof value === 'string' || Array.isArray(value) ? JSON.stringify(value) : String(value);
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new (range ? RangeError : TypeError)(`FaultProxy: option "${option}" must be ${expected}; got ${shown} (${type})`);
}

function checkNumber(option: string, value: unknown, min: number, max: number, expected: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) return invalid(option, expected, value);
  return value >= min && value <= max ? value : invalid(option, expected, value, true);
}

export class FaultProxy {
  readonly seed: number;
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  readonly #stats: FaultProxyStats = {
    ...{ connections: 0, requests: 0, responses: 0, stalls: 0, passThroughConnections: 0 },
    faults: { request: 0, midResponse: 0, afterResponse: 0, beforeResponse: 0, total: 0 },
  };
  #killRate: number;
  #enabled = true;
  #closing: Promise<void> | undefined;

  constructor(options: FaultProxyOptions) {
    const { target, killRate = 0, faults = FAULT_KINDS, latencyMs = 0, bandwidthBytesPerSec, stall, seed, onDecision } = options;
    if (typeof target !== 'object' || target === null) invalid('target', '{ host, port }', target);
    const { host, port } = target;
    const loopback = host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
    if (!loopback) invalid('target.host', 'a loopback address (127.x.x.x, ::1 or localhost)', host, true);
    checkNumber('target.port', port, 1, 65535, 'a port number in 1..65535');
    this.#killRate = checkNumber('killRate', killRate, 0, 1, 'a number in 0..1');
    if (!Array.isArray(faults) || faults.length === 0 || !faults.every((f) => FAULT_KINDS.includes(f))) {
      invalid('faults', `a non-empty array of ${FAULT_KINDS.map((k) => `'${k}'`).join(', ')}`, faults);
    }
    checkNumber('latencyMs', latencyMs, 0, 60_000, 'a number of ms in 0..60000');
    if (bandwidthBytesPerSec !== undefined) checkNumber('bandwidthBytesPerSec', bandwidthBytesPerSec, 1, 2 ** 40, 'a positive number');
    if (stall !== undefined) {
      if (typeof stall !== 'object' || stall === null) invalid('stall', '{ probability, durationMs }', stall);
      checkNumber('stall.probability', stall.probability, 0, 1, 'a number in 0..1');
      checkNumber('stall.durationMs', stall.durationMs, 0, 600_000, 'a number of ms in 0..600000');
    }
    if (seed !== undefined && !Number.isInteger(seed)) invalid('seed', 'an integer', seed);
    if (onDecision !== undefined && typeof onDecision !== 'function') invalid('onDecision', 'a function', onDecision);

    this.seed = seed === undefined ? Math.floor(Math.random() * 2 ** 32) : seed >>> 0;
    // Two streams, so stalls (drawn per chunk, timing-dependent) never shift fault decisions.
    const faultRng = mulberry32(this.seed);
    const stallRng = mulberry32(this.seed ^ 0x9e3779b9);
    const kinds = [...faults];
    const stats = this.#stats;
    const ctx: LinkContext = {
      stats,
      latencyMs,
      bandwidth: bandwidthBytesPerSec ?? 0,
      decide: (head) => {
        // Always three draws per request, so decision N depends only on the seed and N.
        const [roll, pick, frac] = [faultRng(), faultRng(), faultRng()];
        const faulted = this.#enabled && head.framing !== 'raw' && roll < this.#killRate;
        const fault = faulted ? kinds[Math.floor(pick * kinds.length)] : null;
        const request = stats.requests++;
        onDecision?.({ request, method: head.method, target: head.target, fault });
        return { method: head.method, fault, frac, started: false };
      },
      drawStall: () => {
        if (stall === undefined || stall.durationMs === 0 || stallRng() >= stall.probability) return 0;
        stats.stalls++;
        return stall.durationMs;
      },
    };
    this.#server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      if (this.#closing !== undefined) return void client.destroy();
      stats.connections++;
      const link = new Link(ctx, client, { host, port });
      this.#links.add(link);
      void link.closed.then(() => this.#links.delete(link));
    });
  }

  /** Starts listening on 127.0.0.1, on a free port. */
  listen(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve(this);
      });
    });
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A snapshot of the counters. */
  get stats(): FaultProxyStats {
    return { ...this.#stats, faults: { ...this.#stats.faults } };
  }

  setKillRate(rate: number): void {
    this.#killRate = checkNumber('killRate', rate, 0, 1, 'a number in 0..1');
  }

  /** Turns fault injection on or off; the PRNG keeps advancing, so a seed's sequence stays aligned. */
  setFaults(enabled: boolean): void {
    this.#enabled = enabled;
  }

  /** Stalls every open connection now, both directions, for durationMs. */
  stallNow(durationMs: number): void {
    const until = performance.now() + checkNumber('durationMs', durationMs, 0, 600_000, 'a number of ms in 0..600000');
    for (const link of this.#links) {
      link.stallUntil = Math.max(link.stallUntil, until);
      this.#stats.stalls++;
    }
  }

  /** Destroys every connection and stops listening; resolves once every socket has closed. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const links = [...this.#links];
      for (const link of links) link.destroy();
      this.#server.close(() => void Promise.all(links.map((link) => link.closed)).then(() => resolve()));
    });
    return this.#closing;
  }
}

/** Creates a FaultProxy and waits until it listens. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return new FaultProxy(options).listen();
}
