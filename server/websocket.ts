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
import { WebSocketServer } from 'ws';
import { wireError, type CloseReason } from '../shared/index.js';
import type { SessionRegistry } from './session-registry.js';
import type { BatchAsk } from './store.js';
import { Connection, WS_CLOSE } from './websocket-connection.js';
import type { ReadAlong } from './websocket-frames.js';

export { WS_CLOSE } from './websocket-connection.js';

/**
 * Ticks of the heartbeat ticker per heartbeat period. Every connection beats
 * every BEAT_TICKS ticks from its hello, so a heartbeat is never later than
 * heartbeatMs; the first comes up to a tick (a tenth of the period) early.
 */
const BEAT_TICKS = 10;

export class WebSocketTransport {
  readonly core: SessionRegistry;
  readonly #wss: WebSocketServer;
  /** The connection carrying each session on this node. */
  readonly #bySid = new Map<string, Connection>();
  readonly #all = new Set<Connection>();
  readonly #originAllowed: (req: IncomingMessage) => boolean;
  /**
   * One heartbeat timer for every connection (not one per connection: an
   * idle server holds a connection per session), running while any is open.
   */
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Ticks so far. */
  #ticks = 0;

  constructor(core: SessionRegistry, originAllowed: (req: IncomingMessage) => boolean) {
    this.core = core;
    this.#originAllowed = originAllowed;
    // One frame is at most a message (or a header): maxMessageBytes, and a little for a header's JSON.
    // No clientTracking: `#all` is the set of connections (ws's own would be a second Set entry and a 'close' listener each).
    this.#wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: core.options.maxMessageBytes + 1024, perMessageDeflate: false });
  }

  /** How far ahead of the client's acks a connection sends, bytes (websocket-window.ts): a batch, or half the session's queue. */
  get windowBytes(): number {
    const o = this.core.options;
    return Math.max(64 * 1024, Math.min(o.maxBatchBytes, o.maxQueuedBytes / 2));
  }

  /** How often an idle connection gets an empty batch: below common proxy idle cut-offs. */
  get heartbeatMs(): number {
    return Math.max(1_000, Math.min(this.core.options.pollTimeoutMs || 25_000, 25_000));
  }

  /** The tick at which a connection that beats now (or says hello now) beats next: heartbeatMs from now at the latest. */
  get nextBeat(): number {
    return this.#ticks + BEAT_TICKS;
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
    this.core.carriedByWebSocket(sid, c.hello);
    if (this.#ticker === undefined) {
      // Whole milliseconds, rounded down: BEAT_TICKS ticks are never longer than heartbeatMs.
      this.#ticker = setInterval(() => this.#tick(), Math.floor(this.heartbeatMs / BEAT_TICKS));
      this.#ticker.unref();
    }
  }

  #tick(): void {
    const now = ++this.#ticks;
    for (const c of this.#all) c.tick(now);
  }

  /** Connections open on this node. */
  get size(): number {
    return this.#all.size;
  }

  detached(c: Connection): void {
    this.#all.delete(c);
    const sid = c.sid;
    if (sid !== undefined && this.#bySid.get(sid) === c) this.#bySid.delete(sid);
    if (this.#all.size === 0 && this.#ticker !== undefined) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  carrying(sid: string): boolean {
    return this.#bySid.has(sid);
  }

  /**
   * What a commit of the session should read for the connection carrying it
   * here (Store.enqueueAndRead), if that connection waits for it: its next
   * batch then costs no read of its own.
   */
  heldRead(sid: string): BatchAsk | undefined {
    return this.#bySid.get(sid)?.readAsk();
  }

  /** Outbound messages were committed (`along`: their batch, read with them): the connection carrying the session sends them. */
  outboundReady(sid: string, along?: ReadAlong): void {
    this.#bySid.get(sid)?.pump(along);
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

  /** This node owns `sid` no more (another node took it over): its connection closes, no close frame, and the client goes on elsewhere. */
  disowned(sid: string): void {
    this.#bySid.get(sid)?.drop(WS_CLOSE.ended, 'the session moved to another node');
  }

  /** The node leaves, or cannot reach its store: every connection closes (its clients go on elsewhere). */
  release(why = 'the node is leaving'): void {
    for (const c of [...this.#all]) c.drop(WS_CLOSE.ended, why);
  }

  close(): void {
    this.release();
    this.#wss.close();
  }
}
