/**
 * The WebSocket transport: one connection carries a session both ways
 * (PROTOCOL.md, "WebSocket"). It moves batches for the session machine (see
 * transport.ts) as the polling transport does, and tells the switcher
 * (transport-switcher.ts) when its connection is open, up, or down.
 *
 *   connecting ──open──▶ hello ──{"ok":true}──▶ up
 *        │                 │                    │
 *        └────── failed, closed, silent ────────┴──▶ gone (down(): the session goes on elsewhere)
 *                          close frame / error frame ──▶ gone (the machine acts on it)
 *
 * Each connection, its phase and what it has written and read, is a
 * Connection (websocket-connection.ts).
 *
 * - Hello: the first frame proves the session, `{"sid","token","ack"}`; the
 *   switcher stops polling just before it goes out (opened()).
 * - Batches both ways: a header `{"ack","seq","n"}`, then n frames, text as
 *   text frames and binary as binary frames (no JSON, no base64); a batch of
 *   one text message as one compact frame `[ack,seq]text` when the other end
 *   said it reads them (`"f":1`, shared/websocket-framing.ts). Every header
 *   carries the inbound ack; after a batch comes in, an ack-only header goes
 *   out unless a batch does.
 * - Pipelining: batches go out one after another without waiting for acks,
 *   from just past the last one written on this connection; the outbox keeps
 *   every message until acked, so a connection that dies costs nothing (the
 *   next transport starts at the first unacknowledged message).
 * - Backpressure: no new batch while the socket's bufferedAmount is over
 *   HIGH_WATER; it is looked at again every DRAIN_CHECK_MS until it drains.
 * - Liveness: the server sends something at least every heartbeat (its
 *   pollTimeoutMs, at most 25 s); nothing for that plus the grace period and
 *   the connection is dead. Opening (connect and hello) has requestTimeoutMs.
 *   That one deadline is websocket-deadline.ts.
 * - Ending: a close frame goes to the machine as a poll's would; an error
 *   frame gets the reaction of the same error over HTTP (shared/reaction.ts):
 *   `retry` and `smaller_batches` only take the connection down, the others
 *   (new session, stop, fatal) are the machine's.
 */
import {
  batchFrames,
  COMPACT_FRAMES,
  decodeCompact,
  decodeErrorBody,
  ENVELOPE_OVERHEAD,
  isCompact,
  HoldlineError,
  isWireErrorCode,
  type CloseReason,
  rpcIndexes,
  utf8Length,
} from '../shared/index.js';
import { reactionOf } from '../shared/reaction.js';
import type { WebSocketConnection, WebSocketHandlers, WebSocketOptions } from './platform.js';
import type { ProxySetting } from './options.js';
import type { LiveSession, Transport, TransportHost } from './transport.js';
import { Connection, frameBytes, type InboundBatch } from './websocket-connection.js';
import { armDeadline } from './websocket-deadline.js';

/** The request/reply frames of a compact batch: none. */
const NO_RPC: ReadonlySet<number> = new Set();

export type OpenWebSocket = (url: string, handlers: WebSocketHandlers, options: WebSocketOptions) => WebSocketConnection;

export interface WebSocketTransportOptions {
  /** The endpoint, ws(s)://…/ws. */
  readonly url: string;
  /** As the requests' `proxy` option (Node). */
  readonly proxy: ProxySetting | undefined;
  /** Connecting plus the hello's answer must take no longer than this. */
  readonly openTimeoutMs: number;
  /** Added to the server's heartbeat period: silence past both is a dead connection. */
  readonly graceMs: number;
}

/** What the transport tells the switcher. Each is called for the session the connection was started for. */
export interface WebSocketEvents {
  /** The socket is open; the hello goes out as soon as this returns (stop polling here). */
  opened(session: LiveSession): void;
  /** The server said ok: this connection carries the session now. */
  up(session: LiveSession): void;
  /**
   * The connection failed, closed without a close frame, went silent, or
   * brought an error whose reaction is a retry: the session goes on, on
   * another transport. `wasUp`: it had carried the session. `opened`: the
   * handshake had succeeded (false: refused, failed or timed out before it,
   * which is all a browser learns of a 404 to the upgrade).
   */
  down(session: LiveSession, error: HoldlineError, wasUp: boolean, opened: boolean): void;
}

/** Past this many bytes handed to the socket and not yet sent, no new batch is written. */
export const HIGH_WATER = 1024 * 1024;
const DRAIN_CHECK_MS = 10;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A text frame as a JSON object, or undefined. */
function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const o: unknown = JSON.parse(text);
    return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isCloseReason(v: unknown): v is CloseReason {
  return typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'string' && typeof (v as { message?: unknown }).message === 'string';
}

export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly #host: TransportHost;
  readonly #open: OpenWebSocket;
  readonly #options: WebSocketTransportOptions;
  readonly #events: WebSocketEvents;
  #conn: Connection | undefined;
  /** idle() callers, told when nothing is unacknowledged or the connection is gone. */
  #idleWaiters: Array<() => void> = [];

  constructor(host: TransportHost, open: OpenWebSocket, options: WebSocketTransportOptions, events: WebSocketEvents) {
    this.#host = host;
    this.#open = open;
    this.#options = options;
    this.#events = events;
  }

  /** The connection carries the session (the server said ok). */
  get up(): boolean {
    return this.#conn?.phase === 'up';
  }

  /** A connection is being opened or carries the session. */
  get busy(): boolean {
    return this.#conn !== undefined;
  }

  /** Open a connection for `session` (dropping any other). */
  start(session: LiveSession): void {
    const old = this.#conn;
    if (old) this.drop(old, 1000, 'replaced');
    if (session.abort.signal.aborted) return;
    const c = (this.#conn = new Connection(this, session));
    session.abort.signal.addEventListener('abort', c.onAbort, { once: true });
    armDeadline(c, this.#options.openTimeoutMs, this.#options);
    c.socket = this.#open(this.#options.url, c, { proxy: this.#options.proxy, maxPayload: session.maxAnswerBytes });
  }

  /** Drop the connection without telling anyone (the switcher decided). */
  stop(): void {
    const c = this.#conn;
    if (c) this.drop(c, 1000, 'switching');
  }

  flush(): void {
    const c = this.#conn;
    // Once the current turn's sends are all queued: one batch for them, not a batch per send().
    if (c?.phase === 'up') this.#queueWrite(c);
  }

  idle(): Promise<void> {
    if (!this.up || this.#host.outboundPending === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  dispose(): void {
    this.stop();
    this.#wakeIdle();
  }

  // ---- the connection's events ----

  opened(c: Connection): void {
    if (c !== this.#conn || c.phase !== 'connecting') return;
    const host = this.#host;
    if (host.current !== c.session) return this.drop(c, 1000, 'session over');
    c.lastFrameAt = Date.now();
    // The switcher stops polling first: a poll after the hello would close this connection (4000).
    this.#events.opened(c.session);
    if (c !== this.#conn) return;
    c.phase = 'hello';
    c.ackWritten = host.inboundAck;
    // Counted: a poll sent before this hello and arriving after it leaves this WebSocket be.
    const count = ++c.session.webSockets;
    c.helloAt = performance.now();
    // "f":1: this client reads compact frames.
    c.socket?.send(`{${c.session.auth}"ack":${c.ackWritten},"ws":${count},"${COMPACT_FRAMES}":1}`);
  }

  frame(c: Connection, data: string | Uint8Array): void {
    if (c !== this.#conn || c.phase === 'gone') return;
    const host = this.#host;
    const session = c.session;
    if (host.current !== session) return this.drop(c, 1000, 'session over');
    c.lastFrameAt = Date.now();
    const inbound = c.inbound;
    if (inbound !== undefined) {
      if (inbound.r.size > 0 && inbound.r.has(inbound.m.length)) {
        if (typeof data !== 'string') return this.#broken(c, 'a request/reply frame that is not a text frame');
        inbound.m.push({ r: data });
      } else {
        inbound.m.push(data);
      }
      // At most 3 bytes a UTF-16 unit: counted exactly only once that bound passes the cap.
      inbound.bytes += typeof data === 'string' ? 3 * data.length : data.byteLength;
      if (inbound.bytes > session.maxAnswerBytes && (inbound.bytes = frameBytes(inbound.m)) > session.maxAnswerBytes) {
        return this.#broken(c, `an inbound batch over ${session.maxAnswerBytes} bytes`);
      }
      if (inbound.m.length === inbound.n) this.#batch(c, inbound);
      return;
    }
    if (typeof data === 'string' && isCompact(data)) return this.#compact(c, data);
    const o = typeof data === 'string' ? parseObject(data) : undefined;
    if (o === undefined) return this.#broken(c, typeof data === 'string' ? 'a text frame that is not a JSON object where a header was expected' : 'a binary frame where a header was expected');
    if (o.close !== undefined || o.error !== undefined) return this.#ending(c, o, data as string);
    if (c.phase === 'hello') {
      if (o.ok !== true || !isCount(o.ack)) return this.#broken(c, 'the answer to the hello is not {"ok":true,"ack":N}');
      c.phase = 'up';
      c.compact = o[COMPACT_FRAMES] === 1;
      armDeadline(c, 0, this.#options);
      this.#rtt(performance.now() - c.helloAt);
      host.acked(o.ack);
      host.succeeded(session);
      this.#events.up(session);
      if (c !== this.#conn) return;
      this.#write(c);
      return;
    }
    const n = o.n === undefined ? 0 : o.n;
    const maxN = session.limits.maxBatchMessages ?? session.maxAnswerBytes;
    if (!isCount(o.ack) || !isCount(n) || n > maxN) return this.#broken(c, `a header that is not {"ack","seq","n"} with n at most ${maxN}`);
    this.#acked(c, o.ack);
    if (n === 0) return;
    if (!isCount(o.seq) || o.seq < 1) return this.#broken(c, 'a header with messages and no positive "seq"');
    const r = rpcIndexes(o.r, n);
    if (r === undefined) return this.#broken(c, 'a header whose "r" does not list frame indexes below "n"');
    c.inbound = { ack: o.ack, seq: o.seq, n, m: [], bytes: 0, r };
  }

  closed(c: Connection, code: number, reason: string, error: HoldlineError | undefined): void {
    if (c !== this.#conn || c.phase === 'gone') return;
    const wasUp = c.phase === 'up';
    const opened = c.phase !== 'connecting';
    this.#end(c);
    const why = error ?? new HoldlineError('network_error', `the WebSocket closed (code ${code}${reason === '' ? '' : `: ${reason}`}) without a close frame`);
    this.#events.down(c.session, why, wasUp, opened);
  }

  /** `c` is this transport's connection (for its deadline, websocket-deadline.ts). */
  isCurrent(c: Connection): boolean {
    return c === this.#conn;
  }

  /** `c`'s deadline passed (websocket-deadline.ts): it is dropped and the session goes on elsewhere. */
  timedOut(c: Connection, error: HoldlineError, wasUp: boolean, opened: boolean): void {
    this.drop(c, 1000, 'timeout');
    this.#events.down(c.session, error, wasUp, opened);
  }

  // ---- inside ----

  /** A compact frame: a batch of one text message, read as its header and its frame would be. */
  #compact(c: Connection, data: string): void {
    if (c.phase !== 'up') return this.#broken(c, 'a compact frame before the answer to the hello');
    const b = decodeCompact(data);
    if (b === undefined) return this.#broken(c, 'a compact frame that is not [ack,seq] and a text');
    // At most 3 bytes a UTF-16 unit: counted exactly only if that bound passes the cap.
    const max = c.session.maxAnswerBytes;
    const bytes = 3 * b.text.length <= max ? 3 * b.text.length : utf8Length(b.text);
    if (bytes > max) return this.#broken(c, `an inbound batch over ${max} bytes`);
    // The message first, then the ack it carries: its bookkeeping (the window, 'ack', a round-trip sample) is not on the message's way.
    this.#batch(c, { ack: b.ack, seq: b.seq, n: 1, m: [b.text], bytes, r: NO_RPC });
    if (c === this.#conn && c.phase === 'up') this.#acked(c, b.ack);
  }

  /** The server's ack of our stream, from a header or a compact frame. */
  #acked(c: Connection, ack: number): void {
    this.#host.acked(ack);
    // The latest timed batch the ack covers gives a round-trip sample (as a send request's answer does on polling).
    const writtenAt = c.takeAcked(ack);
    if (writtenAt !== undefined) this.#rtt(performance.now() - writtenAt);
    this.#checkIdle();
  }

  /** A whole inbound batch: accepted as a poll's answer would be, then an ack goes back. */
  #batch(c: Connection, b: InboundBatch): void {
    c.inbound = undefined;
    const host = this.#host;
    const session = c.session;
    const expected = host.inboundAck + 1;
    // Its ack is #acked()'s (at the header, or after a compact frame's message): 0 applies none here.
    const from = host.accept(session, { ack: 0, seq: b.seq, m: b.m });
    if (from < 0) return;
    // A hole (not a resumed session's first batch, which the stream takes) never comes from a correct server; this connection would not fill it.
    if (b.seq > expected && host.inboundAck < b.seq) return this.#broken(c, `a batch from ${b.seq}; the next expected message is ${expected}`);
    this.#checkIdle();
    if (!host.deliver(session, b.m, from)) return;
    this.#queueWrite(c);
  }

  /** A close frame or an error frame: the session's end, or (a retry) this connection's. */
  #ending(c: Connection, o: Record<string, unknown>, text: string): void {
    const host = this.#host;
    const session = c.session;
    const wasUp = c.phase === 'up';
    this.#end(c);
    c.socket?.close(1000, 'done');
    if (o.close !== undefined) {
      const reason: CloseReason = isCloseReason(o.close) ? o.close : { code: 'server_closed', message: 'the server closed the session' };
      host.accept(session, { ack: 0, seq: 0, m: [], close: reason });
      return;
    }
    const wire = decodeErrorBody(text);
    const error = wire === undefined
      ? new HoldlineError('bad_response', `a WebSocket error frame that is not {"error":{"code","message"}}`)
      : isWireErrorCode(wire.code)
        ? new HoldlineError(wire.code, wire.message)
        : new HoldlineError('bad_response', `unknown error code ${JSON.stringify(wire.code)}: ${wire.message}`, { wireCode: wire.code });
    const reaction = reactionOf(error.code);
    if (reaction === 'retry' || reaction === 'smaller_batches') this.#events.down(session, error, wasUp, true);
    else host.failed(session, error, reaction).catch((e: unknown) => host.crashed(e));
  }

  /** The server broke the framing: the connection is dropped and the session goes on elsewhere. */
  #broken(c: Connection, what: string): void {
    const wasUp = c.phase === 'up';
    this.drop(c, 1002, 'protocol error');
    this.#events.down(c.session, new HoldlineError('bad_response', `WebSocket: ${what}`), wasUp, true);
  }

  /** Write batches from just past what this connection wrote, while the socket takes them; else an ack alone if one is owed. */
  #write(c: Connection): void {
    const host = this.#host;
    const session = c.session;
    const socket = c.socket;
    if (c.phase !== 'up' || socket === undefined || host.current !== session) return;
    const maxWireBytes = session.limits.maxBatchBytes - ENVELOPE_OVERHEAD;
    while (socket.bufferedAmount < HIGH_WATER && host.outboundLastSeq >= Math.max(c.next, 1) && host.outboundPending > 0) {
      const b = host.nextWires(maxWireBytes, c.next);
      if (b.count === 0) break;
      const ack = host.inboundAck;
      socket.sendAll(batchFrames(ack, b.seq, b.wires, c.compact));
      c.ackWritten = ack;
      c.next = b.seq + b.count;
      c.markWritten(c.next - 1);
      host.written(c.next - 1);
      if (c !== this.#conn || c.phase !== 'up') return;
    }
    if (socket.bufferedAmount >= HIGH_WATER) {
      c.drainTimer ??= setTimeout(() => {
        c.drainTimer = undefined;
        if (c === this.#conn) this.#write(c);
      }, DRAIN_CHECK_MS);
    } else if (c.ackWritten < host.inboundAck) {
      c.ackWritten = host.inboundAck;
      socket.send(`{"ack":${c.ackWritten}}`);
    }
  }

  /** Write at the end of this turn: the frames at hand all read (several batches, one ack), the sends made all queued. */
  #queueWrite(c: Connection): void {
    if (c.writeQueued) return;
    c.writeQueued = true;
    queueMicrotask(() => {
      c.writeQueued = false;
      if (c === this.#conn) this.#write(c);
    });
  }

  /** Close `c` (terminate it when it is not up: nothing to say goodbye to) and forget it. */
  drop(c: Connection, code: number, reason: string): void {
    if (c.phase === 'gone') return;
    const wasUp = c.phase === 'up';
    this.#end(c);
    if (wasUp) c.socket?.close(code, reason);
    else c.socket?.terminate();
  }

  #end(c: Connection): void {
    c.end();
    if (this.#conn === c) this.#conn = undefined;
    this.#wakeIdle();
  }

  /** One round-trip sample into stats.rttMs, smoothed as polling's are. */
  #rtt(ms: number): void {
    const stats = this.#host.stats;
    stats.rttMs = stats.rttMs === 0 ? ms : stats.rttMs * 0.8 + ms * 0.2;
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length > 0 && this.#host.outboundPending === 0) this.#wakeIdle();
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters.length === 0) return;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
