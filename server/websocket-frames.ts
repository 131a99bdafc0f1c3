/**
 * What a WebSocket connection (websocket-connection.ts) reads: frames in
 * order, as text, bytes and JSON, and the store's outbound messages as wire
 * forms; and the framing's shapes (close codes, a batch header, a batch
 * being read, a batch read along with a commit).
 */
import type { RawData } from 'ws';
import type { StreamItem, WirePayload } from '../shared/index.js';
import type { ReadOutboundResult, SessionStore, WiresRead } from './store.js';

/** Close codes of our own (4000-4999 are the application's). */
export const WS_CLOSE = {
  /** A poll came for the session: the client went back to polling. */
  superseded: 4000,
  /** The session ended (the close frame said why) or the node is leaving. */
  ended: 4001,
  /** The client broke the framing or a limit. */
  protocol: 4002,
} as const;

/** A batch header's fields, as parsed (checked where used). */
export interface Header {
  ack?: unknown;
  seq?: unknown;
  n?: unknown;
  /** Indexes (0-based, ascending) of the batch's frames that are request/reply frames, not messages. */
  r?: unknown;
}

/** A commit's batch, read with it for a connection (its readAsk(), Store.enqueueAndRead), and the session's count of commits then. */
export interface ReadAlong {
  readonly commits: number;
  readonly batch: ReadOutboundResult;
}

/** An inbound batch being read: its header, and the messages so far. */
export interface Inbound {
  seq: number;
  n: number;
  m: StreamItem[];
  /** Indexes of its request/reply frames. */
  r: ReadonlySet<number>;
}

export const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** What the store holds past `from`, as wire payloads: from the store's entries where it can, else its batch JSON parsed. */
export async function readWires(store: SessionStore, sid: string, maxWireBytes: number, from: number, maxCount: number): Promise<WiresRead> {
  if (store.readOutboundWires) return store.readOutboundWires(sid, maxWireBytes, from, maxCount);
  return wiresOf(await store.readOutbound(sid, maxWireBytes, from, maxCount));
}

/** A batch as readOutbound() gives it (its `m` JSON), as its messages' wire forms. */
export function wiresOf(b: ReadOutboundResult): WiresRead {
  return { seq: b.seq, count: b.count, wires: b.count === 0 ? [] : (JSON.parse(b.m) as WirePayload[]), wireBytes: b.wireBytes, inboundAck: b.inboundAck, lastSeq: b.lastSeq };
}

export function parseJson(data: RawData): unknown {
  return parseJsonText(rawText(data));
}

export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A text frame's text (`ws` gives a Buffer: decoded in place, not copied first). */
export function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.byteLength, 0);
  return data.byteLength;
}

/**
 * Inbound frames handled one at a time, in order, and at once while none
 * waits: a frame whose handling returns a promise (it waits for the store)
 * holds the frames after it, and those that come meanwhile, until it
 * settles. No promise per frame otherwise. A throw or a rejection goes to
 * `framesFailed`, and the frames held are dropped (the connection is
 * closing).
 *
 * A base class of the connection, not an object of its own with two
 * closures: an idle server holds one connection per session, and these were
 * 168 B of it (heap snapshots, 2,000 idle sessions).
 */
export abstract class OrderedFrames {
  /** Frames waiting for one before them; undefined: none waits. */
  #held: Array<[RawData, boolean]> | undefined;

  /** Handle one frame; a promise when it waits for the store. */
  protected abstract handleFrame(data: RawData, isBinary: boolean): Promise<void> | undefined;

  /** A frame's handling threw or rejected. */
  protected abstract framesFailed(e: unknown): void;

  push(data: RawData, isBinary: boolean): void {
    if (this.#held !== undefined) this.#held.push([data, isBinary]);
    else this.#run(data, isBinary, undefined, 0);
  }

  /** Handle a frame, then those in `held` from `at` on, until one waits. */
  #run(data: RawData, isBinary: boolean, held: Array<[RawData, boolean]> | undefined, at: number): void {
    let i = at;
    for (;;) {
      let waits: Promise<void> | undefined;
      try {
        waits = this.handleFrame(data, isBinary);
      } catch (e) {
        this.#held = undefined;
        return this.framesFailed(e);
      }
      if (waits !== undefined) {
        const rest = (this.#held = held === undefined || i >= held.length ? [] : held.slice(i));
        waits.then(
          () => this.#resume(rest),
          (e: unknown) => {
            this.#held = undefined;
            this.framesFailed(e);
          },
        );
        return;
      }
      const f = held?.[i++];
      if (f === undefined) break;
      data = f[0];
      isBinary = f[1];
    }
    this.#held = undefined;
  }

  #resume(held: Array<[RawData, boolean]>): void {
    const f = held[0];
    if (f === undefined) {
      this.#held = undefined;
      return;
    }
    this.#run(f[0], f[1], held, 1);
  }
}
