/**
 * Request and reply frames (PROTOCOL.md, "Calls with replies"). A frame
 * rides the reliable stream among plain messages as `{"r":"<frame JSON>"}`
 * (a text frame flagged by the batch header on a WebSocket), so it is
 * numbered, acknowledged, deduplicated and replayed like any message, and a
 * plain message is what it always was. The frame itself:
 *
 *   request      {"v":1,"q":ID,"d":DATA}
 *   reply        {"v":1,"a":ID,"d":DATA}
 *   error reply  {"v":1,"a":ID,"e":{"code":"…","message":"…"}}
 *
 * ID is a positive integer the requester chose (unique among its pending
 * requests); DATA is a message in wire form (a JSON string, or `{"b": base64}`).
 * Decoding never throws: a frame that is not one of these is undefined.
 */
import { fromWire, toWire, utf8Length, type Payload, type RpcWire } from './payload.js';
import type { OutboxEntry } from './outbox.js';

/** The frame format's version: a receiver answers a request of another version with an error reply. */
export const RPC_VERSION = 1;

/** Most characters of an error reply's code, and of its message: a reply's error is a short text. */
const MAX_CODE = 64;
const MAX_MESSAGE = 1024;

export type RpcFrame =
  | { kind: 'request'; id: number; data: Payload }
  | { kind: 'reply'; id: number; data: Payload }
  | { kind: 'error'; id: number; code: string; message: string }
  /** A frame of another version: only its id is known (a request of it is answered with an error). */
  | { kind: 'unsupported'; id: number | undefined; request: boolean };

function entry(text: string): OutboxEntry {
  const wire: RpcWire = { r: text };
  return { wire, bytes: utf8Length(text) };
}

export function encodeRequest(id: number, data: Payload): OutboxEntry {
  return entry(`{"v":${RPC_VERSION},"q":${id},"d":${JSON.stringify(toWire(data))}}`);
}

export function encodeReply(id: number, data: Payload): OutboxEntry {
  return entry(`{"v":${RPC_VERSION},"a":${id},"d":${JSON.stringify(toWire(data))}}`);
}

export function encodeErrorReply(id: number, code: string, message: string): OutboxEntry {
  const e = { code: code.slice(0, MAX_CODE), message: message.slice(0, MAX_MESSAGE) };
  return entry(`{"v":${RPC_VERSION},"a":${id},"e":${JSON.stringify(e)}}`);
}

/** A WebSocket batch header with no `r`: no frame of it is a request/reply frame. */
const NO_INDEXES: ReadonlySet<number> = new Set();

/**
 * On a WebSocket a request/reply frame is a text frame; the batch header's
 * `r` lists which of its `n` frames are such (0-based indexes).
 */
/** A header's `r`: the set of frame indexes below `n` that carry request/reply frames; undefined when malformed. */
export function rpcIndexes(r: unknown, n: number): ReadonlySet<number> | undefined {
  if (r === undefined) return NO_INDEXES;
  if (!Array.isArray(r) || r.length > n) return undefined;
  const set = new Set<number>();
  for (const i of r) {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= n) return undefined;
    set.add(i);
  }
  return set;
}


const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** The frame a `{"r": text}` item carries, or undefined when it is not a frame at all. */
export function decodeFrame(w: RpcWire): RpcFrame | undefined {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(w.r);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    o = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const request = o.q !== undefined;
  const id = request ? o.q : o.a;
  if (o.v !== RPC_VERSION) return { kind: 'unsupported', id: isId(id) ? id : undefined, request };
  if (!isId(id)) return undefined;
  if (o.e !== undefined) {
    const e = o.e as { code?: unknown; message?: unknown } | null;
    if (request || typeof e !== 'object' || e === null || typeof e.code !== 'string' || typeof e.message !== 'string') return undefined;
    return { kind: 'error', id, code: e.code, message: e.message };
  }
  const data = fromWire(o.d);
  if (data === undefined) return undefined;
  return request ? { kind: 'request', id, data } : { kind: 'reply', id, data };
}
