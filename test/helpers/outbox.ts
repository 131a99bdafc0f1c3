/**
 * What the Outbox tests (shared/outbox-*.test.ts) share: pushing messages,
 * numbered texts, a batch's messages parsed back, and the invariants every
 * batch must satisfy. Kept here, not beside shared/outbox.ts: a file there
 * that is not a test is part of the build and must not import Node-only code
 * (test/isomorphic.test.ts).
 */
import assert from 'node:assert/strict';
import type { Outbox, OutboxBatch } from '../../shared/outbox.js';
import type { Payload, WirePayload } from '../../shared/payload.js';

/** Push text messages; returns their sequence numbers. */
export function pushAll(o: Outbox, messages: Payload[]): number[] {
  return messages.map((m) => o.push(m));
}

/** "m<from>" .. "m<to>". */
export const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

/** The messages of a batch, parsed from its `m` JSON (wire form: text, or {b: base64}). */
export const decode = (b: OutboxBatch) => JSON.parse(b.m) as WirePayload[];

/** Every invariant a batch must satisfy, whatever it holds. */
export function checkBatch(b: OutboxBatch): void {
  const m = JSON.parse(b.m) as unknown;
  assert.ok(Array.isArray(m), `m is a JSON array: ${b.m.slice(0, 80)}`);
  assert.equal(m.length, b.count, 'count is the number of messages in m');
  assert.equal(b.wireBytes, Buffer.byteLength(b.m, 'utf8'), 'wireBytes is the UTF-8 size of m, brackets included');
}

export const bytes = (...b: number[]) => new Uint8Array(b);
