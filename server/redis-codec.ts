/**
 * What the Redis store (server/redis-store.ts) reads from and writes to
 * Redis: checks of Redis replies (a reply of the wrong shape is an
 * `internal_error`, never a crash), the stored forms of inbound payloads and
 * outbound entries, and the check of a published StoreEvent.
 */
import { HoldlineError, isRpc, isRpcWire, wireError, type CloseReason, type OutboxEntry, type StreamItem } from '../shared/index.js';
import type { ReadOutboundResult, StoreEvent } from './store.js';

export type Arg = string | Buffer | number;

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${v.constructor.name})`;
  return `${typeof v} ${String(v)}`;
}

// ---- replies ----

export function unknownSession(): HoldlineError {
  return wireError('session_unknown');
}

export function badReply(what: string, reply: unknown): HoldlineError {
  return new HoldlineError('internal_error', `RedisStore: unexpected reply to ${what}: ${describe(reply)}`);
}

/** A script's array reply; nil (the session is not held) becomes session_unknown. */
export function arrayReply(what: string, reply: unknown): unknown[] {
  if (reply === null) throw unknownSession();
  if (!Array.isArray(reply)) throw badReply(what, reply);
  return reply;
}

export function int(what: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw badReply(what, v);
}

export function str(what: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw badReply(what, v);
}

export function isCloseReason(v: unknown): v is CloseReason {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { code?: unknown; message?: unknown };
  return typeof r.code === 'string' && typeof r.message === 'string';
}

/** The event types a StoreEvent may have, and the fields each carries besides `node`. */
export function isStoreEvent(v: unknown): v is StoreEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { type?: unknown; node?: unknown; ack?: unknown; bufferedBytes?: unknown; at?: unknown; ws?: unknown; hello?: unknown; reason?: unknown; data?: unknown };
  if (typeof e.node !== 'string') return false;
  switch (e.type) {
    case 'out':
    case 'in':
      return true;
    case 'ack':
      return typeof e.ack === 'number' && typeof e.bufferedBytes === 'number';
    case 'poll':
      return typeof e.at === 'number' && (e.ws === undefined || typeof e.ws === 'number') && (e.hello === undefined || typeof e.hello === 'number');
    case 'close':
      return isCloseReason(e.reason);
    case 'broadcast':
      return typeof e.data === 'string' || (typeof e.data === 'object' && e.data !== null && typeof (e.data as { b?: unknown }).b === 'string');
    default:
      return false;
  }
}

// ---- payloads ----

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const TAG_TEXT = 0x74; // t
const TAG_JSON = 0x6a; // j
const TAG_BINARY = 0x62; // b
const TAG_RPC = 0x72; // r
const BINARY_TAG = Buffer.from('b');

/** An inbound payload as kept in the `in` list: a tag byte, then the payload (a request/reply frame: `r`, then its text). */
export function encodeInbound(p: StreamItem): Arg {
  if (typeof p === 'string') return LONE_SURROGATE.test(p) ? `j${JSON.stringify(p)}` : `t${p}`;
  if (isRpc(p)) return `r${p.r}`;
  return Buffer.concat([BINARY_TAG, p]);
}

export function decodeInbound(v: unknown): StreamItem {
  if (!Buffer.isBuffer(v) || v.length === 0) throw badReply('readInbound', v);
  switch (v[0]) {
    case TAG_TEXT:
      return v.toString('utf8', 1);
    case TAG_RPC:
      return { r: v.toString('utf8', 1) };
    case TAG_BINARY:
      return new Uint8Array(v.subarray(1));
    case TAG_JSON: {
      const s: unknown = JSON.parse(v.toString('utf8', 1));
      if (typeof s !== 'string') throw badReply('readInbound', v);
      return s;
    }
    default:
      throw badReply('readInbound', v);
  }
}

/** An outbound entry back from its stored form `<bytes> <wire JSON>`. */
export function decodeEntry(v: unknown): OutboxEntry {
  const s = str('delete', v);
  const sp = s.indexOf(' ');
  const wire: unknown = JSON.parse(s.slice(sp + 1));
  const bytes = Number(s.slice(0, sp));
  if (typeof wire === 'string') return { wire, bytes };
  if (typeof wire === 'object' && wire !== null && typeof (wire as { b?: unknown }).b === 'string') {
    return { wire: { b: (wire as { b: string }).b }, bytes };
  }
  if (isRpcWire(wire)) return { wire: { r: wire.r }, bytes };
  throw badReply('delete', v);
}

/** A TTL Redis takes: a positive whole number of ms. */
export function pxOf(ms: number): number {
  return Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : 2 ** 31;
}

// ---- read arguments and replies ----

/** readOutbound's ARGV after the TTL: maxWireBytes, from, maxCount (-1: no limit). */
export function readArgs(maxWireBytes: number, from: number | undefined, maxCount: number): Arg[] {
  const maxW = Number.isFinite(maxWireBytes) ? maxWireBytes : Number.MAX_SAFE_INTEGER;
  const maxC = Number.isFinite(maxCount) ? Math.max(0, Math.floor(maxCount)) : -1;
  return [maxW, from ?? 0, maxC];
}

/** The batch a read script returns, from `r[at]` on: seq, count, m, wireBytes, inboundAck. */
export function batchReply(what: string, r: unknown[], at: number): ReadOutboundResult {
  return {
    seq: int(what, r[at]),
    count: int(what, r[at + 1]),
    m: str(what, r[at + 2]),
    wireBytes: int(what, r[at + 3]),
    inboundAck: int(what, r[at + 4]),
    lastSeq: int(what, r[at + 5]),
  };
}

/** An array reply of strings and nils (HMGET, ZRANGEBYSCORE). */
export function strings(what: string, reply: unknown): (string | null)[] {
  if (!Array.isArray(reply)) throw badReply(what, reply);
  return reply.map((v: unknown) => (v === null ? null : str(what, v)));
}
