/**
 * The WebSocket transport: an adapter over the same node and session core
 * as polling (see PROTOCOL.md, "WebSocket"). One connection carries a
 * session both ways: the client's first frame proves the session, then
 * batches go each way as a header frame `{"ack","seq","n"}` followed by n
 * message frames (a text frame for text, a binary frame for binary: no
 * base64). What the server sends is read from the store, from just past what
 * this connection has sent; acks and inbound batches go through the node as
 * a poll's and a send's do. While a WebSocket carries a session, its held
 * poll is answered; a poll that comes later (the client fell back) closes
 * the WebSocket.
 *
 * It attaches through the HTTP server's 'upgrade' event for its own path
 * only, with `ws` in noServer mode: other upgrade listeners keep working.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  HoldlineError,
  fromWire,
  wireError,
  isRpcWire,
  rpcIndexes,
  type CloseReason,
  type Payload,
  type StreamItem,
} from '../shared/index.js';
import type { Served, SessionRegistry } from './session-registry.js';
import { byteLength, parseJson, rawText, readWires, toBytes } from './websocket-frames.js';

/** Close codes of our own (4000-4999 are the application's). */
export const WS_CLOSE = {
  /** A poll came for the session: the client went back to polling. */
  superseded: 4000,
  /** The session ended (the close frame said why) or the node is leaving. */
  ended: 4001,
  /** The client broke the framing or a limit. */
  protocol: 4002,
} as const;

/** Past this many bytes written and not yet sent, the connection stops reading from the store until it drains. */
const HIGH_WATER = 1024 * 1024;

interface Header {
  ack?: unknown;
  seq?: unknown;
  n?: unknown;
  /** Indexes (0-based, ascending) of the batch's frames that are request/reply frames, not messages. */
  r?: unknown;
}


const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** One WebSocket connection: first the hello, then batches both ways. */
class Connection {
  readonly #ws: WebSocket;
  /** The connection under `ws`: corked from the first frame written in a turn to the end of the turn. */
  readonly #socket: Duplex;
  #corked = false;
  readonly #t: WebSocketTransport;
  #served: Served | undefined;
  /** The hello's WebSocket count ("ws"): polls counted below it were sent before it. Undefined: the client counts none. */
  hello: number | undefined;
  /** Just past the last message sent on this connection (server to client). */
  #next = 1;
  /** Batches sent and not yet acknowledged: [last seq, wire bytes] each, oldest first. */
  #inFlight: Array<[number, number]> = [];
  #inFlightBytes = 0;
  /** The inbound batch being read: its header, and the messages so far. */
  #inbound: { ack: number; seq: number; n: number; m: StreamItem[]; r: ReadonlySet<number> } | undefined;
  #pumping = false;
  #again = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Inbound frames are handled one at a time, in order (each may wait for the store). */
  #queue: Promise<void> = Promise.resolve();

  constructor(ws: WebSocket, socket: Duplex, t: WebSocketTransport) {
    this.#ws = ws;
    this.#socket = socket;
    this.#t = t;
    ws.on('message', (data, isBinary) => {
      this.#queue = this.#queue.then(() => this.#frame(data, isBinary)).catch((e: unknown) => this.#fail(e));
    });
    ws.on('close', () => this.#gone());
    ws.on('error', () => this.#gone());
  }

  get sid(): string | undefined {
    return this.#served?.sid;
  }

  async #frame(data: RawData, isBinary: boolean): Promise<void> {
    if (this.#closed) return;
    const core = this.#t.core;
    if (this.#served === undefined) return this.#hello(data, isBinary);
    const inbound = this.#inbound;
    if (inbound === undefined) {
      if (isBinary) throw wireError('malformed_request', 'a binary frame where a batch header was expected');
      const h = parseJson(data) as Header | undefined;
      if (h === undefined || typeof h !== 'object' || !isCount(h.ack)) throw wireError('malformed_request', 'a batch header needs a numeric "ack"');
      const n = h.n === undefined ? 0 : h.n;
      if (!isCount(n) || n > core.options.maxBatchMessages) throw wireError('batch_too_large', `"n" must be 0-${core.options.maxBatchMessages}`);
      if (n > 0 && (!isCount(h.seq) || h.seq < 1)) throw wireError('malformed_request', 'a batch with messages needs a positive "seq"');
      let acked = core.applyAck(this.#served, h.ack);
      if (acked instanceof Promise) acked = await acked;
      if (!acked) throw wireError('bad_ack', `ack ${h.ack} is past the last message sent`);
      core.seen(this.#served);
      this.#ackedUpTo(h.ack);
      const r = rpcIndexes(h.r, n);
      if (r === undefined) throw wireError('malformed_request', 'a header\'s "r" must list frame indexes below "n"');
      if (n > 0) this.#inbound = { ack: h.ack, seq: h.seq as number, n, m: [], r };
      return;
    }
    const size = isBinary ? byteLength(data) : undefined;
    const m: Payload = isBinary ? toBytes(data) : rawText(data);
    const bytes = size ?? Buffer.byteLength(m as string);
    if (bytes > core.options.maxMessageBytes) throw wireError('message_too_large', `a message of ${bytes} bytes; maxMessageBytes is ${core.options.maxMessageBytes}`);
    if (inbound.r.size > 0 && inbound.r.has(inbound.m.length)) {
      if (typeof m !== 'string') throw wireError('malformed_request', 'a request/reply frame must be a text frame');
      inbound.m.push({ r: m });
    } else {
      inbound.m.push(m);
    }
    if (inbound.m.length < inbound.n) return;
    this.#inbound = undefined;
    const v = await core.accept(this.#served, inbound.seq, inbound.m);
    if (!v.ok) throw wireError('bad_sequence', `batch starts at ${inbound.seq}; the next expected message is ${v.expected}`);
    // The ack first, so the client's window opens while the application works.
    this.#sendHeader(v.ack, 0, 0);
    core.deliver(this.#served, inbound.m, v.skip, inbound.seq);
  }

  async #hello(data: RawData, isBinary: boolean): Promise<void> {
    const core = this.#t.core;
    const o = isBinary ? undefined : (parseJson(data) as { sid?: unknown; token?: unknown; ack?: unknown; ws?: unknown } | undefined);
    if (o === undefined || typeof o !== 'object' || typeof o.sid !== 'string' || typeof o.token !== 'string' || !isCount(o.ack) || (o.ws !== undefined && !isCount(o.ws))) {
      throw wireError('malformed_request', 'the first frame must be {"sid","token","ack"} (and "ws", a count, if any)');
    }
    if (typeof o.ws === 'number') this.hello = o.ws;
    let s = core.authenticateSession({ sid: o.sid, token: o.token });
    if (s instanceof Promise) s = await s;
    if (!s.ok) {
      if (s.closed) return this.#end(s.closed);
      throw s.error;
    }
    let acked = core.applyAck(s.value, o.ack);
    if (acked instanceof Promise) acked = await acked;
    if (!acked) throw wireError('bad_ack', `ack ${o.ack} is past the last message sent`);
    this.#served = s.value;
    this.#next = o.ack + 1;
    core.seen(s.value);
    const read = await core.options.store.readOutbound(s.value.sid, 0, Number.MAX_SAFE_INTEGER);
    this.#send(JSON.stringify({ ok: true, ack: read.inboundAck }));
    this.#t.attached(this);
    this.#heartbeat = setInterval(() => this.#beat(), this.#t.heartbeatMs);
    this.#heartbeat.unref();
    this.pump();
  }

  /** Send what the store holds past what this connection has sent. */
  pump(): void {
    if (this.#served === undefined || this.#closed) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#pumpNow()
      .catch((e: unknown) => this.#fail(e))
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.pump();
        }
      });
  }

  async #pumpNow(): Promise<void> {
    const served = this.#served;
    if (served === undefined) return;
    const { store, maxBatchBytes, maxBatchMessages } = this.#t.core.options;
    for (;;) {
      if (this.#closed) return;
      if (this.#ws.bufferedAmount > HIGH_WATER) {
        // Backpressure: resume once the socket has drained.
        setTimeout(() => this.pump(), 5).unref();
        return;
      }
      // No further ahead of the client's acks than a batch (or half the
      // session's queue): 'flush' then means what it means on polling, and
      // an application pacing itself by it is paced by the client. The next
      // ack pumps again.
      if (this.#inFlightBytes >= this.#maxInFlight) return;
      const b = await readWires(store, served.sid, maxBatchBytes, this.#next, maxBatchMessages);
      if (b.count === 0 || this.#closed) return;
      if (b.seq > this.#next) this.#next = b.seq; // acknowledged meanwhile
      const wires = b.wires;
      let rpc: number[] | undefined;
      for (let i = 0; i < wires.length; i++) if (isRpcWire(wires[i])) (rpc ??= []).push(i);
      this.#sendHeader(b.inboundAck, b.seq, b.count, rpc);
      for (const w of wires) {
        if (typeof w === 'string') this.#ws.send(w, { binary: false });
        else if (isRpcWire(w)) this.#ws.send(w.r, { binary: false });
        else this.#ws.send(fromWire(w) ?? new Uint8Array(0), { binary: true });
      }
      this.#next = b.seq + b.count;
      this.#inFlight.push([this.#next - 1, b.wireBytes]);
      this.#inFlightBytes += b.wireBytes;
      served.session?.written(this.#next - 1);
    }
  }

  get #maxInFlight(): number {
    const o = this.#t.core.options;
    return Math.max(64 * 1024, Math.min(o.maxBatchBytes, o.maxQueuedBytes / 2));
  }

  /** The client has everything up to `ack`: batches it covers are no longer in flight. */
  #ackedUpTo(ack: number): void {
    let freed = false;
    for (let b = this.#inFlight[0]; b !== undefined && b[0] <= ack; b = this.#inFlight[0]) {
      this.#inFlight.shift();
      this.#inFlightBytes -= b[1];
      freed = true;
    }
    if (freed) this.pump();
  }

  #sendHeader(ack: number, seq: number, n: number, rpc?: readonly number[]): void {
    const r = rpc === undefined ? '' : `,"r":[${rpc.join(',')}]`;
    this.#send(n === 0 ? `{"ack":${ack}}` : `{"ack":${ack},"seq":${seq},"n":${n}${r}}`);
  }

  #send(text: string): void {
    if (this.#closed) return;
    this.#cork();
    this.#ws.send(text, { binary: false });
  }

  /**
   * Hold this turn's frames and write them together when it ends: an ack,
   * the application's answer to what it acknowledges, a batch's header and
   * its messages go out in one write (one TCP segment), not one per frame.
   */
  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    setImmediate(this.#uncork);
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket.uncork();
  };

  /** An empty batch now and then: proxies see traffic, and the client knows the connection is alive. */
  #beat(): void {
    const served = this.#served;
    if (!served || this.#closed) return;
    this.#t.core.seen(served);
    this.#t.core.options.store
      .readOutbound(served.sid, 0, Number.MAX_SAFE_INTEGER)
      .then((r) => this.#sendHeader(r.inboundAck, 0, 0))
      .catch((e: unknown) => this.#fail(e));
  }

  /** The session ended: the close frame, then the connection closes. */
  end(reason: CloseReason): void {
    this.#end(reason);
  }

  #end(reason: CloseReason): void {
    if (this.#closed) return;
    this.#send(JSON.stringify({ close: reason }));
    this.#close(WS_CLOSE.ended, reason.code);
  }

  /** Close without a close frame (superseded by a poll, or the node leaving: the session goes on elsewhere). */
  drop(code: number, why: string): void {
    this.#close(code, why);
  }

  #fail(e: unknown): void {
    if (this.#closed) return;
    const err = e instanceof HoldlineError && e.status !== undefined ? e : undefined;
    if (err === undefined) this.#t.core.reportError(e);
    const wire = err ?? wireError('internal_error');
    this.#send(JSON.stringify(wire.toWire()));
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
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#t.detached(this);
  }
}

export class WebSocketTransport {
  readonly core: SessionRegistry;
  readonly #wss: WebSocketServer;
  /** The connection carrying each session on this node. */
  readonly #bySid = new Map<string, Connection>();
  readonly #all = new Set<Connection>();
  readonly #originAllowed: (req: IncomingMessage) => boolean;

  constructor(core: SessionRegistry, originAllowed: (req: IncomingMessage) => boolean) {
    this.core = core;
    this.#originAllowed = originAllowed;
    // One frame is at most a message (or a header): maxMessageBytes, and a little for a header's JSON.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: core.options.maxMessageBytes + 1024, perMessageDeflate: false });
  }

  /** How often an idle connection gets an empty batch: below common proxy idle cut-offs. */
  get heartbeatMs(): number {
    return Math.max(1_000, Math.min(this.core.options.pollTimeoutMs || 25_000, 25_000));
  }

  /** Take an upgrade request for our path (the caller checked the path). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.#originAllowed(req)) {
      const body = JSON.stringify(wireError('origin_not_allowed').toWire());
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#all.add(new Connection(ws, socket, this));
    });
  }

  /** A connection proved its session: it carries it now (a held poll is answered; an older connection goes). */
  attached(c: Connection): void {
    const sid = c.sid;
    if (sid === undefined) return;
    const old = this.#bySid.get(sid);
    this.#bySid.set(sid, c);
    if (old && old !== c) old.drop(WS_CLOSE.superseded, 'superseded');
    this.core.carriedByWebSocket(sid);
  }

  /** Connections open on this node. */
  get size(): number {
    return this.#all.size;
  }

  detached(c: Connection): void {
    this.#all.delete(c);
    const sid = c.sid;
    if (sid !== undefined && this.#bySid.get(sid) === c) this.#bySid.delete(sid);
  }

  carrying(sid: string): boolean {
    return this.#bySid.has(sid);
  }

  outboundReady(sid: string): void {
    this.#bySid.get(sid)?.pump();
  }

  /**
   * A poll came for the session (its WebSocket count `ws`; undefined: a
   * WebSocket's hello on another node): the client is back on polling, or on
   * another WebSocket. A poll sent before this connection's hello is not.
   */
  pollTaken(sid: string, ws: number | undefined): void {
    if (ws !== undefined && this.predates(sid, ws)) return;
    this.#bySid.get(sid)?.drop(WS_CLOSE.superseded, 'superseded by a poll');
  }

  /** A poll counting `ws` WebSockets was sent before the hello of the one carrying `sid` here. */
  predates(sid: string, ws: number): boolean {
    const hello = this.#bySid.get(sid)?.hello;
    return hello !== undefined && ws < hello;
  }

  closed(sid: string, reason: CloseReason): void {
    this.#bySid.get(sid)?.end(reason);
  }

  /** The node leaves: every connection closes (its clients go on elsewhere). */
  release(): void {
    for (const c of [...this.#all]) c.drop(WS_CLOSE.ended, 'the node is leaving');
  }

  close(): void {
    this.release();
    this.#wss.close();
  }
}
