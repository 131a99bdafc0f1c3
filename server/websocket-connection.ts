/**
 * One WebSocket connection of the WebSocket transport (websocket.ts): first
 * the client's hello, then batches both ways (PROTOCOL.md, "WebSocket").
 *
 * - Inbound frames are handled at once and in order; a frame that waits for
 *   the store (the hello, an ack applied on another node's session, a batch
 *   being accepted) holds the ones after it until it is done.
 * - Outbound: what the store holds past what this connection has sent, as a
 *   header frame and a frame per message (one text message as one compact
 *   frame, to a client that reads them), no further ahead of the client's
 *   acks than a batch (websocket-window.ts). A connection waiting for the
 *   next message has it read with the commit (readAsk()), not by itself.
 * - A batch from a store in this process (MemoryStore) is accepted, and
 *   delivered, while its frame is read, and a message committed is read and
 *   written at once (the optional acceptInboundNow, readOutboundWiresNow).
 * - The turn's first frames go at once, the rest of the turn's together
 *   at its end (websocket-turn.ts, the base class).
 * - The hello, and a session owned elsewhere looked up again: websocket-hello.ts.
 */
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import {
  HoldlineError,
  batchFrames,
  COMPACT_FRAMES,
  decodeCompact,
  isCompact,
  wireError,
  rpcIndexes,
  type CloseReason,
  type Payload,
  type StreamItem,
  type WirePayload,
} from '../shared/index.js';
import type { Served } from './session-registry.js';
import type { AcceptInboundResult, BatchAsk, SessionStore, WiresRead } from './store.js';
import { byteLength, isCount, parseJsonText, rawText, readWires, toBytes, wiresOf, WS_CLOSE, type Header, type Inbound, type ReadAlong } from './websocket-frames.js';
import { lookAgain, takeHello } from './websocket-hello.js';
import type { WebSocketTransport } from './websocket.js';
import { TurnWrites } from './websocket-turn.js';
import { SentWindow } from './websocket-window.js';

export { WS_CLOSE };

/** Past this many bytes written and not yet sent, the connection stops reading from the store until it drains. */
const HIGH_WATER = 1024 * 1024;

/**
 * One WebSocket connection: first the hello, then batches both ways. An idle
 * server holds one per session, so it keeps no closures or timers of its
 * own beyond its two `ws` listeners: inbound ordering and the turn's writes
 * are its base classes, and its heartbeat is the transport's shared ticker
 * (`tick()`).
 */
export class Connection extends TurnWrites {
  readonly #ws: WebSocket;
  readonly #t: WebSocketTransport;
  #served: Served | undefined;
  /** The hello's WebSocket count ("ws"): polls counted below it were sent before it. Undefined: the client counts none. */
  hello: number | undefined;
  /** Just past the last message sent on this connection (server to client). */
  #next = 1;
  /** Batches sent and not yet acknowledged. */
  readonly #sent = new SentWindow();
  /** The inbound batch being read: its header, and the messages so far. */
  #inbound: Inbound | undefined;
  #pumping = false;
  #again = false;
  /** The transport's tick at which the next heartbeat is due; -1: none (the hello is not done). */
  #beatAt = -1;
  #closed = false;
  /** The client's hello said it reads compact frames (`"f":1`): one-text-message batches go as one. */
  #compact = false;
  /** While the session is owned elsewhere: the hello's credential, and Date.now() before which it is not looked up again (#lookAgain). */
  #token: string | undefined;
  #lookAt = 0;

  constructor(ws: WebSocket, socket: Duplex, t: WebSocketTransport) {
    super(ws, socket);
    this.#ws = ws;
    this.#t = t;
    const gone = (): void => this.#gone();
    ws.on('message', (data, isBinary) => this.push(data, isBinary));
    ws.on('close', gone);
    ws.on('error', gone);
  }

  get sid(): string | undefined {
    return this.#served?.sid;
  }

  /** One inbound frame, in order (OrderedFrames); a promise when it waits for the store (a throw or a rejection fails the connection). */
  protected handleFrame(data: RawData, isBinary: boolean): Promise<void> | undefined {
    if (this.#closed) return undefined;
    const served = this.#served;
    if (served === undefined) return this.#hello(data, isBinary);
    const inbound = this.#inbound;
    if (inbound === undefined) return this.#header(served, data, isBinary);
    return this.#message(served, inbound, isBinary ? toBytes(data) : rawText(data), byteLength(data));
  }

  /** A message of the inbound batch (`bytes`: its size, as the frame had it); the batch is accepted once whole. */
  #message(served: Served, inbound: Inbound, m: Payload, bytes: number): Promise<void> | undefined {
    this.#fits(bytes);
    if (inbound.r.size > 0 && inbound.r.has(inbound.m.length)) {
      if (typeof m !== 'string') throw wireError('malformed_request', 'a request/reply frame must be a text frame');
      inbound.m.push({ r: m });
    } else {
      inbound.m.push(m);
    }
    if (inbound.m.length < inbound.n) return undefined;
    this.#inbound = undefined;
    return this.#accept(served, inbound);
  }

  #header(served: Served, data: RawData, isBinary: boolean): Promise<void> | undefined {
    const core = this.#t.core;
    if (isBinary) throw wireError('malformed_request', 'a binary frame where a batch header was expected');
    const text = rawText(data);
    if (isCompact(text)) return this.#compactBatch(served, text, byteLength(data));
    const h = parseJsonText(text) as Header | undefined;
    if (h === undefined || typeof h !== 'object' || h === null || !isCount(h.ack)) throw wireError('malformed_request', 'a batch header needs a numeric "ack"');
    const n = h.n === undefined ? 0 : h.n;
    if (!isCount(n) || n > core.options.maxBatchMessages) throw wireError('batch_too_large', `"n" must be 0-${core.options.maxBatchMessages}`);
    if (n > 0 && (!isCount(h.seq) || h.seq < 1)) throw wireError('malformed_request', 'a batch with messages needs a positive "seq"');
    const acked = core.applyAck(served, h.ack);
    if (acked instanceof Promise) return acked.then((ok) => void this.#headerAcked(served, h, n, ok));
    this.#headerAcked(served, h, n, acked);
    return undefined;
  }

  /** The batch a header starts (kept in #inbound until its `n` frames are in), once its ack is applied. */
  #headerAcked(served: Served, h: Header, n: number, acked: boolean): Inbound | undefined {
    if (!acked) throw wireError('bad_ack', `ack ${String(h.ack)} is past the last message sent`);
    this.#t.core.seen(served);
    this.#ackedUpTo(h.ack as number);
    const r = rpcIndexes(h.r, n);
    if (r === undefined) throw wireError('malformed_request', 'a header\'s "r" must list frame indexes below "n"');
    if (n > 0) this.#inbound = { seq: h.seq as number, n, m: [], r };
    return this.#inbound;
  }

  /** A compact frame (`frameBytes` long): a header of one message and the message (a text), as if they came as two frames. */
  #compactBatch(served: Served, text: string, frameBytes: number): Promise<void> | undefined {
    const c = decodeCompact(text);
    if (c === undefined) throw wireError('malformed_request', 'a compact frame must be [ack,seq] (decimal digits, seq at least 1) and then the text');
    if (served.session?.ackApplied(c.ack) === true) {
      // The ack is known already (the client's ack of our last batch came on its own): straight to the message.
      this.#t.core.seen(served);
      this.#ackedUpTo(c.ack);
      this.#fits(frameBytes - c.at);
      return this.#accept(served, { seq: c.seq, m: [c.text] });
    }
    const h: Header = { ack: c.ack, seq: c.seq, n: 1 };
    const then = (acked: boolean): Promise<void> | undefined => {
      const inbound = this.#headerAcked(served, h, 1, acked);
      if (inbound === undefined) return undefined;
      // The header is ASCII: the text's bytes are the frame's past it.
      return this.#message(served, inbound, c.text, frameBytes - c.at);
    };
    const acked = this.#t.core.applyAck(served, c.ack);
    return acked instanceof Promise ? acked.then(then) : then(acked);
  }

  /** A message of `bytes` (as its frame had it) is within maxMessageBytes, else message_too_large. */
  #fits(bytes: number): void {
    const max = this.#t.core.options.maxMessageBytes;
    if (bytes > max) throw wireError('message_too_large', `a message of ${bytes} bytes; maxMessageBytes is ${max}`);
  }

  #accept(served: Served, inbound: { seq: number; m: StreamItem[] }): Promise<void> | undefined {
    const v = this.#t.core.accept(served, inbound.seq, inbound.m);
    if (v instanceof Promise) return v.then((r) => this.#accepted(served, inbound, r));
    this.#accepted(served, inbound, v);
    return undefined;
  }

  #accepted(served: Served, inbound: { seq: number; m: StreamItem[] }, v: AcceptInboundResult): void {
    if (!v.ok) throw wireError('bad_sequence', `batch starts at ${inbound.seq}; the next expected message is ${v.expected}`);
    // Acknowledged in this turn's write, so the client's window opens while
    // the application works: by the header of a batch written in the turn
    // (the application's answer) or else an ack-only header.
    this.owe(v.ack);
    this.#t.core.deliver(served, inbound.m, v.skip, inbound.seq, v.fence);
    if (served.session === undefined) this.#lookAgain();
  }

  /** A session owned elsewhere is looked up again on its batches and heartbeats, at most every half lease (websocket-hello.ts). */
  #lookAgain(): void {
    const served = this.#served;
    const token = this.#token;
    const now = Date.now();
    if (served === undefined || token === undefined || now < this.#lookAt || this.#closed) return;
    this.#lookAt = now + this.#t.core.options.ownerLeaseMs / 2;
    lookAgain(this.#t.core, served.sid, token).then((r) => {
      if (this.#closed || this.#served !== served) return;
      if (r instanceof HoldlineError) return this.#fail(r);
      if (!('sid' in r)) return this.end(r);
      if (r.session === undefined) return;
      this.#served = r;
      this.#token = undefined;
    }, this.#t.core.reportError);
  }

  async #hello(data: RawData, isBinary: boolean): Promise<void> {
    const taken = await takeHello(this.#t.core, data, isBinary);
    if (!('served' in taken)) return this.end(taken);
    if (this.#closed) return;
    const { served, hello, inboundAck } = taken;
    this.hello = hello.ws;
    this.#compact = hello.compact;
    this.#served = served;
    if (served.session === undefined) this.#token = hello.token;
    this.#next = hello.ack + 1;
    this.inboundAck = inboundAck;
    // "f":1: this server reads compact frames (the client may send them).
    this.write([`{"ok":true,"ack":${inboundAck},"${COMPACT_FRAMES}":1}`]);
    this.#t.attached(this);
    this.#beatAt = this.#t.nextBeat;
    this.pump();
  }

  /**
   * Send what the store holds past what this connection has sent: `along`,
   * if it still is that, else a read now (at once from a store in this
   * process). A pump asked for meanwhile (a 'flush' listener sending) goes after.
   */
  pump(along?: ReadAlong): void {
    if (this.#served === undefined || this.#closed) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    if (along !== undefined && this.#sendAlong(along)) return;
    const { store } = this.#t.core.options;
    this.#pumping = true;
    if (store.readOutboundWiresNow === undefined) {
      this.#pumpNow()
        .catch((e: unknown) => this.#fail(e))
        .finally(() => this.#pumped());
      return;
    }
    try {
      this.#readAtOnce(store);
    } catch (e) {
      this.#fail(e);
    }
    this.#pumped();
  }

  #pumped(): void {
    this.#pumping = false;
    if (!this.#again) return;
    this.#again = false;
    this.pump();
  }

  /** What a commit should read for this connection, if the connection would read it next and send it at once (else undefined). */
  readAsk(): BatchAsk | undefined {
    if (this.#served?.session === undefined || this.#closed || this.#pumping || this.#held()) return undefined;
    const { maxBatchBytes, maxBatchMessages } = this.#t.core.options;
    return { maxWireBytes: maxBatchBytes, from: this.#next, maxCount: maxBatchMessages };
  }

  /** Send `along` if it is what a read now would give; true if it held every message committed (its lastSeq says so). */
  #sendAlong({ commits, batch }: ReadAlong): boolean {
    if (this.#served?.session?.commits !== commits || batch.count === 0 || batch.seq !== this.#next || this.#held()) return false;
    return this.#sendRead(wiresOf(batch));
  }

  /** No batch now: the socket has more than it can take (backpressure), or the window is full. A drain or an ack pumps again. */
  #held(): boolean {
    return this.#ws.bufferedAmount > HIGH_WATER || this.#sent.full(this.#t.windowBytes);
  }

  #readAtOnce(store: SessionStore): void {
    const served = this.#served;
    const { maxBatchBytes, maxBatchMessages } = this.#t.core.options;
    while (served !== undefined && store.readOutboundWiresNow !== undefined && !this.#closed && !this.#heldBack()) {
      const b = store.readOutboundWiresNow(served.sid, maxBatchBytes, this.#next, maxBatchMessages);
      if (b.count === 0 || this.#sendRead(b)) return;
    }
  }

  /** #held(), and a socket over its high water mark pumps again in a moment (a full window waits for an ack). */
  #heldBack(): boolean {
    if (!this.#held()) return false;
    if (this.#ws.bufferedAmount > HIGH_WATER) setTimeout(() => this.pump(), 5).unref();
    return true;
  }

  async #pumpNow(): Promise<void> {
    const served = this.#served;
    if (served === undefined) return;
    const { store, maxBatchBytes, maxBatchMessages } = this.#t.core.options;
    for (;;) {
      if (this.#closed || this.#heldBack()) return;
      const b = await readWires(store, served.sid, maxBatchBytes, this.#next, maxBatchMessages);
      if (b.count === 0 || this.#closed) return;
      // Everything the store held is sent: what is queued later pumps again.
      if (this.#sendRead(b)) return;
    }
  }

  /**
   * A batch read from the store at or past this connection's next message:
   * sent, and in flight. True if it ended at the stream's last message then
   * (nothing left to read).
   */
  #sendRead(b: WiresRead): boolean {
    if (b.seq > this.#next) this.#next = b.seq; // acknowledged meanwhile
    if (b.inboundAck > this.inboundAck) this.inboundAck = b.inboundAck;
    this.#sendBatch(b.inboundAck, b.seq, b.wires);
    this.#next = b.seq + b.count;
    this.#sent.sent(this.#next - 1, b.wireBytes);
    this.#served?.session?.written(this.#next - 1);
    return b.lastSeq !== undefined && this.#next > b.lastSeq;
  }

  /** A batch: one compact frame to a client that reads them, else its header and a frame per message (shared/websocket-framing.ts). */
  #sendBatch(ack: number, seq: number, wires: readonly WirePayload[]): void {
    if (this.#closed) return;
    this.paid(ack);
    this.write(batchFrames(ack, seq, wires, this.#compact));
  }

  /** The client has everything up to `ack`. Only a connection the window held back has anything to pump for: every commit pumps by itself. */
  #ackedUpTo(ack: number): void {
    if (this.#sent.acked(ack, this.#t.windowBytes)) this.pump();
  }

  protected get ended(): boolean {
    return this.#closed;
  }


  /** The transport's heartbeat ticker counted `now`: beat if due, every heartbeatMs from the hello. */
  tick(now: number): void {
    if (this.#beatAt < 0 || now < this.#beatAt) return;
    this.#beatAt = this.#t.nextBeat;
    this.#beat();
  }

  /**
   * An empty batch now and then (proxies see traffic, the client knows the connection lives), with the inbound
   * ack this connection knows, not one read from the store: an idle beat costs the store nothing. An ack the
   * store has from elsewhere (a send over HTTP during a switch) reached the client on that send's answer; a
   * beat's lower ack is then stale, and the client ignores it (PROTOCOL.md, "The reliable stream").
   */
  #beat(): void {
    const served = this.#served;
    if (!served || this.#closed) return;
    this.#t.core.seen(served);
    this.sendAck(this.inboundAck);
    if (served.session === undefined) this.#lookAgain();
  }

  /** The session ended: the close frame, then the connection closes. */
  end(reason: CloseReason): void {
    if (this.#closed) return;
    this.payAck();
    this.write([JSON.stringify({ close: reason })]);
    this.#close(WS_CLOSE.ended, reason.code);
  }

  /** Close without a close frame (superseded by a poll, or the node leaving: the session goes on elsewhere). */
  drop(code: number, why: string): void {
    this.payAck();
    this.#close(code, why);
  }

  protected framesFailed(e: unknown): void {
    this.#fail(e);
  }

  #fail(e: unknown): void {
    if (this.#closed) return;
    const err = e instanceof HoldlineError && e.status !== undefined ? e : undefined;
    if (err === undefined) this.#t.core.reportError(e);
    const wire = err ?? wireError('internal_error');
    this.payAck();
    this.write([JSON.stringify(wire.toWire())]);
    this.#close(WS_CLOSE.protocol, wire.code);
  }

  #close(code: number, why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close(code, why);
    this.#gone();
  }

  #gone(): void {
    this.#closed = true;
    this.#beatAt = -1;
    this.#t.detached(this);
  }
}
