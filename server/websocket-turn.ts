/**
 * A WebSocket connection's writes within one turn of the event loop
 * (websocket-connection.ts is the connection; this is its base class).
 *
 * - The turn's first frames go at once, in one write: the application's
 *   answer to a message is on the wire before the rest of the turn's work
 *   (ws reading on, the turn's microtasks), which would otherwise all lie
 *   on the echo's path.
 * - Frames written later in the same turn are corked, and go in one write
 *   when the turn's microtasks are done (process.nextTick from within them
 *   runs then): a burst of sends is one write, not one per message.
 * - A batch accepted with nothing written after it owes the client an ack:
 *   the connection is corked for it (holdForAck()), and a turn that owes
 *   only that ack waits for the end of the loop's phase (setImmediate), so
 *   that the acks of a stream of inbound batches go as one. Frames written
 *   meanwhile carry the ack and pay it.
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
  /** The socket is corked until the end of the turn (or of the phase, for an ack alone). */
  #corked = false;
  /** Frames were written since the cork (else only an ack may be owed). */
  #wrote = false;
  /** Frames went at once this turn: what follows is corked. */
  #early = false;
  /** The end of the turn is scheduled. */
  #tick = false;

  constructor(ws: WebSocket, socket: Duplex) {
    super();
    this.#ws = ws;
    this.#socket = socket;
  }

  /** The connection is closed: nothing more is written. */
  protected abstract get ended(): boolean;

  /** Write the ack owed, if one is (an ack-only header): before the turn's corked frames go. */
  protected abstract payAck(): void;

  /** Write `frames` (text frames as strings): at once if they are the turn's first, else with the rest of the turn. */
  protected write(frames: readonly (string | Uint8Array)[]): void {
    const ws = this.#ws;
    if (this.#early || (this.#corked && this.#wrote)) {
      this.#cork();
      this.#wrote = true;
      for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
      return;
    }
    this.#early = true;
    this.#endTurnSoon();
    // Corked so far only for an owed ack, which these frames carry: they go now.
    if (!this.#corked) this.#socket.cork();
    this.#corked = false;
    for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
    this.#socket.uncork();
  }

  /** A batch was accepted: an ack is owed, written with the turn's frames, or alone at the end of the phase. */
  protected holdForAck(): void {
    this.#cork();
  }

  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#wrote = false;
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
    if (!c.#corked) {
      // Frames went at once and did not carry every ack owed (rare): the ack goes now.
      if (!c.ended) c.payAck();
      return;
    }
    if (c.#wrote || c.ended) TurnWrites.#uncork(c);
    else setImmediate(TurnWrites.#uncork, c);
  }

  static #uncork(c: TurnWrites): void {
    c.payAck();
    c.#corked = false;
    c.#socket.uncork();
  }
}
