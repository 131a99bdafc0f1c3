/**
 * A WebSocket connection's writes within one turn of the event loop, and
 * the ack it owes the client (websocket-connection.ts is the connection;
 * this is its base class).
 *
 * - The turn's first frames go at once, in one write: the application's
 *   answer to a message is on the wire before the rest of the turn's work
 *   (ws reading on, the turn's microtasks), which would otherwise all lie
 *   on the echo's path.
 * - Frames written later in the same turn are corked, and go in one write
 *   when the turn's microtasks are done (process.nextTick from within them
 *   runs then): a burst of sends is one write, not one per message.
 * - A batch accepted owes the client an ack (holdForAck()). Frames written
 *   in the turn carry it and pay it; a turn that ends still owing it has it
 *   written alone at the end of the loop's phase (setImmediate), so that
 *   the acks of a stream of inbound batches go as one.
 *
 * A base class, not an object of its own, and its end-of-turn callbacks
 * static: an idle server holds one connection per session.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { OrderedFrames } from './websocket-frames.js';

export abstract class TurnWrites extends OrderedFrames {
  readonly #ws: WebSocket;
  /** The connection under `ws`. */
  readonly #socket: Duplex;
  /** Frames after the turn's first wait, corked, for the end of the turn. */
  #corked = false;
  /** Frames went at once this turn: what follows is corked. */
  #early = false;
  /** The end of the turn is scheduled. */
  #tick = false;
  /** An ack alone is to be written at the end of the phase. */
  #ackLater = false;
  /** The highest inbound ack this connection has learnt (the hello's read, batches accepted, batches read): what a heartbeat carries, without asking the store. */
  protected inboundAck = 0;
  /** A batch was accepted and no frame written since carries its ack. */
  #ackDue = false;

  constructor(ws: WebSocket, socket: Duplex) {
    super();
    this.#ws = ws;
    this.#socket = socket;
  }

  /** The connection is closed: nothing more is written. */
  protected abstract get ended(): boolean;

  /** Write `frames` (text frames as strings): at once if they are the turn's first, else with the rest of the turn. */
  protected write(frames: readonly (string | Uint8Array)[]): void {
    if (this.ended) return;
    const ws = this.#ws;
    if (this.#early || this.#corked) {
      this.#cork();
      for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
      return;
    }
    this.#early = true;
    this.#endTurnSoon();
    this.#socket.cork();
    for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
    this.#socket.uncork();
  }

  /** A batch was accepted, up to `ack`: its ack goes with the turn's frames, or alone at the end of the phase. */
  protected owe(ack: number): void {
    if (ack > this.inboundAck) this.inboundAck = ack;
    this.#ackDue = true;
    this.#endTurnSoon();
  }

  /** A frame carrying `ack` is being written: it pays the ack owed if it covers every batch accepted. */
  protected paid(ack: number): void {
    if (ack >= this.inboundAck) this.#ackDue = false;
  }

  /** An ack-only header (also the heartbeat). */
  protected sendAck(ack: number): void {
    this.paid(ack);
    this.write([`{"ack":${ack}}`]);
  }

  /** The ack owed, if any, alone: before the turn's corked frames go, or before the connection closes. */
  protected payAck(): void {
    if (this.#ackDue && !this.ended) this.sendAck(this.inboundAck);
  }

  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    this.#endTurnSoon();
  }

  #endTurnSoon(): void {
    if (this.#tick) return;
    this.#tick = true;
    process.nextTick(TurnWrites.#endOfTurn, this);
  }

  static #endOfTurn(c: TurnWrites): void {
    c.#tick = false;
    c.#early = false;
    if (c.#corked) {
      c.payAck();
      c.#corked = false;
      c.#socket.uncork();
    } else if (c.#ackDue && !c.ended && !c.#ackLater) {
      c.#ackLater = true;
      setImmediate(TurnWrites.#ackAlone, c);
    }
  }

  static #ackAlone(c: TurnWrites): void {
    c.#ackLater = false;
    c.payAck();
  }
}
