/**
 * Payloads: what applications send. Text is a JS string, binary a Uint8Array
 * (a Node Buffer is one). On the wire text is a JSON string and binary is
 * `{"b":"<base64>"}`; this module converts between the two and measures sizes.
 * It runs unchanged in browsers and Node (Buffer is used only when present).
 */
export type Payload = string | Uint8Array;

/**
 * A request or a reply (see shared/rpc-codec.ts) as it rides the reliable
 * stream between plain messages: `r` is its frame's JSON text. On the wire,
 * `{"r":"<frame>"}` in a message array (a text frame flagged by the batch
 * header on a WebSocket); never delivered as a message.
 */
export interface RpcWire {
  readonly r: string;
}

/** A plain message's wire form: a JSON string, or `{"b": base64}`. */
export type MessageWire = string | { b: string };

/** What travels inside a JSON envelope's message array: a plain message, or a request/reply frame. */
export type WirePayload = MessageWire | RpcWire;

/** What a stream carries, decoded: a plain message, or a request/reply frame. */
export type StreamItem = Payload | RpcWire;

/** True for a request/reply frame's wire form read from parsed JSON. */
export function isRpcWire(w: unknown): w is RpcWire {
  return typeof w === 'object' && w !== null && typeof (w as { r?: unknown }).r === 'string';
}

/** True for a request/reply frame (anything else a stream carries is a plain message). */
export function isRpc(v: StreamItem | WirePayload): v is RpcWire {
  return typeof v === 'object' && 'r' in v;
}

interface BufferLike {
  byteLength(s: string, enc: 'utf8'): number;
  from(s: string, enc: 'base64'): Uint8Array;
  from(a: ArrayBufferLike, off: number, len: number): { toString(enc: 'base64'): string };
}
const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer;

/** UTF-8 length of a string, in bytes. */
export function utf8Length(s: string): number {
  if (NodeBuffer) return NodeBuffer.byteLength(s, 'utf8');
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Size of a payload as the limits count it: UTF-8 bytes for text, raw bytes for binary. */
export function payloadBytes(p: Payload): number {
  return typeof p === 'string' ? utf8Length(p) : p.byteLength;
}

export function isPayload(value: unknown): value is Payload {
  return typeof value === 'string' || value instanceof Uint8Array;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let s = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    s += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + CHUNK)));
  }
  return btoa(s);
}

/** Strict base64 decode: returns undefined for anything that is not canonical padded base64. */
export function fromBase64(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !BASE64_RE.test(s)) return undefined;
  // Canonical only: the bits of the last character that fall past the last byte must be zero.
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  if (pad > 0 && (BASE64_ALPHABET.indexOf(s.charAt(s.length - pad - 1)) & (pad === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  if (NodeBuffer) {
    // A copy: small Buffers share Node's pool, and `data.buffer` must hold only this message.
    return new Uint8Array(NodeBuffer.from(s, 'base64'));
  }
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

export function toWire(p: Payload): MessageWire {
  return typeof p === 'string' ? p : { b: toBase64(p) };
}

/** Decode one plain message, or undefined if it is not a string or a well-formed `{"b": base64}`. */
export function fromWire(w: unknown): Payload | undefined {
  if (typeof w === 'string') return w;
  if (typeof w !== 'object' || w === null || Array.isArray(w)) return undefined;
  const keys = Object.keys(w);
  if (keys.length !== 1 || keys[0] !== 'b') return undefined;
  const b = (w as { b: unknown }).b;
  return typeof b === 'string' ? fromBase64(b) : undefined;
}

/** Decode one item of a message array: a plain message, or a request/reply frame `{"r": text}`; undefined if neither. */
export function fromStreamWire(w: unknown): StreamItem | undefined {
  if (typeof w === 'object' && w !== null && !Array.isArray(w) && typeof (w as { r?: unknown }).r === 'string') {
    return Object.keys(w).length === 1 ? { r: (w as { r: string }).r } : undefined;
  }
  return fromWire(w);
}
