/**
 * One connection of the WebSocket transport (websocket-transport.ts) and what
 * it has done: its phase, where its writes are, the inbound batch being read,
 * its timers, and the batches it times for round-trip samples. Its socket's
 * events go to the transport, which acts on them only while it is the
 * transport's current connection.
 *
 * Its phase: connecting ──open──▶ hello ──{"ok":true}──▶ up, and from any of
 * them to gone (end()), for good.
 */
import { isRpc, payloadBytes, utf8Length, type HoldlineError, type StreamItem } from '../shared/index.js';
import type { WebSocketConnection, WebSocketHandlers } from './platform.js';
import type { LiveSession } from './transport.js';
import type { WebSocketTransport } from './websocket-transport.js';

export type Phase = 'connecting' | 'hello' | 'up' | 'gone';

/** An inbound batch being read: its header, and the frames read so far (`m`); `r` lists the request/reply frames. */
export interface InboundBatch {
  ack: number;
  seq: number;
  n: number;
  m: StreamItem[];
  /** The frames' payload bytes, at most: text counted 3 bytes a UTF-16 unit until that passes the cap, then exactly (frameBytes). */
  bytes: number;
  r: ReadonlySet<number>;
}

/** The payload bytes of a batch's frames, exactly (text in UTF-8). */
export function frameBytes(m: readonly StreamItem[]): number {
  let n = 0;
  for (const item of m) n += isRpc(item) ? utf8Length(item.r) : payloadBytes(item);
  return n;
}

/** Batches a connection times at once for stats.rttMs (more in flight are not sampled). */
const RTT_MARKS = 64;

/** One connection and what it has done; its handlers act only while it is the transport's current one. */
export class Connection implements WebSocketHandlers {
  phase: Phase = 'connecting';
  socket: WebSocketConnection | undefined;
  /** Next client-to-server message to write here (0: the first unacknowledged one). */
  next = 0;
  /** The inbound batch being read. */
  inbound: InboundBatch | undefined;
  /** The inbound ack last written on this connection. */
  ackWritten = -1;
  /** The server's answer to the hello said it reads compact frames (`"f":1`). */
  compact = false;
  lastFrameAt = Date.now();
  readonly startedAt = Date.now();
  /** When the hello went out (performance.now()): its answer is the first round-trip sample. */
  helloAt = 0;
  /** Batches written and not yet acknowledged, for round-trip samples: [last seq, written at (performance.now())], oldest first, at most RTT_MARKS. */
  readonly #rttMarks: Array<[number, number]> = [];
  timer: ReturnType<typeof setTimeout> | undefined;
  drainTimer: ReturnType<typeof setTimeout> | undefined;
  writeQueued = false;
  readonly onAbort = (): void => this.t.drop(this, 1000, 'session over');

  constructor(
    readonly t: WebSocketTransport,
    readonly session: LiveSession,
  ) {}

  onOpen(): void {
    this.t.opened(this);
  }

  onMessage(data: string | Uint8Array): void {
    this.t.frame(this, data);
  }

  onClose(code: number, reason: string, error: HoldlineError | undefined): void {
    this.t.closed(this, code, reason, error);
  }

  /** A batch ending at `lastSeq` was just written: timed, unless RTT_MARKS are already in flight. */
  markWritten(lastSeq: number): void {
    if (this.#rttMarks.length < RTT_MARKS) this.#rttMarks.push([lastSeq, performance.now()]);
  }

  /** The server acknowledged up to `ack`: when the latest timed batch it covers was written (performance.now()), if any. */
  takeAcked(ack: number): number | undefined {
    const marks = this.#rttMarks;
    let at: number | undefined;
    while (marks.length > 0 && (marks[0]?.[0] ?? Infinity) <= ack) at = marks.shift()?.[1];
    return at;
  }

  /** Gone: no batch being read, no timers, no listening for the session's end. */
  end(): void {
    this.phase = 'gone';
    this.inbound = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.timer = this.drainTimer = undefined;
    this.session.abort.signal.removeEventListener('abort', this.onAbort);
  }
}
