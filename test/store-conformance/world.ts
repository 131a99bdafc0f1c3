/**
 * What every area of the store conformance suite shares: the node ids and
 * timings the tests use, the `World` a test gets (a fresh store, node A's and
 * node B's handles on it), the `Suite` an area registers its tests with, and
 * the small helpers several areas call (seeded numbers, payload and wire
 * forms, the session_unknown checks). Nothing here registers a test.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineError, isRpc, type CloseReason, type StreamItem } from '../../shared/index.js';
import type { AcceptInboundResult, SessionStore } from '../../server/store.js';

export { sleep };

export const NODE_A = 'node-A';
export const NODE_B = 'node-B';
export const NODE_C = 'node-C';
/** A heartbeat TTL no test outlives: the node stays alive for the whole test. */
export const ALIVE_MS = 60_000;
/** A short TTL, and a wait well past it (never a race: only "after" is asserted). */
export const SHORT_MS = 50;
export const PAST_SHORT_MS = 120;
export const REASON: CloseReason = { code: 'server_closed', message: 'closed by the test' };

export interface World {
  /** Node A's handle. */
  a: SessionStore;
  /** Node B's handle on the same store (the same object for an in-process store). */
  b: SessionStore;
  /** Create a session owned by `owner` (default node A); returns its id. */
  open(opts?: { owner?: string; attempt?: string; token?: string }): Promise<string>;
}

/** What `storeConformance` hands each area: the store's name, how to register a test, how to get a World. */
export interface Suite {
  /** The store's name, as `storeConformance` was given it (for diagnostics). */
  name: string;
  /** node:test's `test`, run as a todo when the store has a known disagreement with this test. */
  check: (title: string, fn: (t: TestContext) => Promise<void>) => void;
  /** A fresh, empty store for this test, with node A's and node B's handles; cleaned up after it. */
  world: (t: TestContext) => Promise<World>;
}


/** Deterministic pseudo-random numbers (mulberry32), so a failing round can be replayed. */
export function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

/** A payload as something deepEqual can compare: text as it is, binary as hex (and it must be a Uint8Array). */
export function norm(p: StreamItem): string | { bin: string } {
  if (typeof p === 'string') return p;
  assert.ok(!isRpc(p), 'a plain message comes back as one');
  assert.ok(p instanceof Uint8Array, 'a binary payload comes back as a Uint8Array');
  return { bin: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex') };
}

/** An accept's verdict without its optional `fence` (owner.ts checks that): what every store gives alike. */
export function verdict(r: AcceptInboundResult): Omit<AcceptInboundResult, 'fence'> {
  const { fence: _fence, ...rest } = r;
  return rest;
}

export function isUnknown(e: unknown): boolean {
  return e instanceof HoldlineError && e.code === 'session_unknown';
}

export async function rejectsUnknown(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isUnknown(e), `${what}: want a HoldlineError with code session_unknown, got ${String(e)}`);
    return true;
  });
}

/** The messages of a readOutbound/delete batch, in wire form. */
export function wiresOf(m: string): unknown {
  return JSON.parse(m);
}
