/**
 * What the WebSocket endpoint (websocket.ts) reads: frames as text, bytes
 * and JSON, and the store's outbound messages as wire forms.
 */
import type { RawData } from 'ws';
import type { WirePayload } from '../shared/index.js';
import type { SessionStore, WiresRead } from './store.js';

/** What the store holds past `from`, as wire payloads: from the store's entries where it can, else its batch JSON parsed. */
export async function readWires(store: SessionStore, sid: string, maxWireBytes: number, from: number, maxCount: number): Promise<WiresRead> {
  if (store.readOutboundWires) return store.readOutboundWires(sid, maxWireBytes, from, maxCount);
  const b = await store.readOutbound(sid, maxWireBytes, from, maxCount);
  return { seq: b.seq, count: b.count, wires: b.count === 0 ? [] : (JSON.parse(b.m) as WirePayload[]), wireBytes: b.wireBytes, inboundAck: b.inboundAck };
}

export function parseJson(data: RawData): unknown {
  try {
    return JSON.parse(rawText(data)) as unknown;
  } catch {
    return undefined;
  }
}

export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
}

export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.byteLength, 0);
  return data.byteLength;
}
