/**
 * The sending half of the reliable stream, used by both ends.
 *
 * Messages are numbered 1, 2, 3, ... in the order they are pushed and kept
 * until the receiver's cumulative ack covers them. `batch()` always starts at
 * the first unacknowledged message, so anything lost in flight goes out again
 * on the next request; the receiver drops what it already has.
 *
 * Each entry is stored pre-encoded (its JSON fragment), so a resend or a
 * broadcast costs no re-encoding.
 */
import { decodePayloads, encodeFragment } from './codec.js';
import { utf8Length, type Payload } from './payload.js';

export interface OutboxEntry {
  /** JSON text of the payload as it sits in an envelope. */
  readonly fragment: string;
  /** UTF-8 size of the fragment on the wire. */
  readonly wireBytes: number;
  /** Size of the payload as limits and bufferedAmount count it. */
  readonly bytes: number;
}

/** Encode a payload once for sending: its JSON fragment and both sizes. */
export function encodeEntry(p: Payload): OutboxEntry {
  const fragment = encodeFragment(p);
  if (typeof p !== 'string') return { fragment, bytes: p.byteLength, wireBytes: fragment.length };
  const bytes = utf8Length(p);
  // ASCII text encodes to ASCII JSON, whose UTF-8 size is its length.
  return { fragment, bytes, wireBytes: bytes === p.length ? fragment.length : utf8Length(fragment) };
}

/** The payloads back from entries (messages reported as unacknowledged or lost). */
export function decodeEntries(entries: readonly OutboxEntry[]): Payload[] {
  if (entries.length === 0) return [];
  const d = decodePayloads(JSON.parse(`[${entries.map((e) => e.fragment).join(',')}]`));
  return d.ok ? d.value : [];
}

export interface OutboxBatch {
  seq: number;
  fragments: string[];
  wireBytes: number;
}

export type AckResult = 'ok' | 'stale' | 'future';

export class Outbox {
  #entries: OutboxEntry[] = [];
  #head = 0;
  /** Highest sequence number acknowledged by the receiver. */
  #acked = 0;
  #bytes = 0;

  /** Number assigned to the most recently pushed message (0 when none yet). */
  get lastSeq(): number {
    return this.#acked + this.#entries.length - this.#head;
  }

  get acked(): number {
    return this.#acked;
  }

  /** Messages pushed but not yet acknowledged. */
  get pending(): number {
    return this.#entries.length - this.#head;
  }

  /** Payload bytes pushed but not yet acknowledged. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /** Queue one pre-encoded message; returns its sequence number. */
  push(fragment: string, bytes: number, wireBytes = utf8Length(fragment)): number {
    return this.pushEntry({ fragment, bytes, wireBytes });
  }

  /** push() for an entry made by encodeEntry(), kept as it is (no copy). */
  pushEntry(entry: OutboxEntry): number {
    this.#entries.push(entry);
    this.#bytes += entry.bytes;
    return this.lastSeq;
  }

  /**
   * Apply a cumulative ack. An ack below what is already acknowledged is
   * stale (an old request arriving late) and changes nothing; one above
   * lastSeq acknowledges messages never sent and is refused.
   */
  ack(n: number): AckResult {
    if (n > this.lastSeq) return 'future';
    if (n <= this.#acked) return 'stale';
    let drop = n - this.#acked;
    this.#acked = n;
    while (drop-- > 0) {
      const e = this.#entries[this.#head];
      this.#bytes -= e.bytes;
      this.#head++;
    }
    // Compact once the dead prefix dominates, keeping shift() cost amortised O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    } else if (this.#head === this.#entries.length) {
      this.#entries = [];
      this.#head = 0;
    }
    return 'ok';
  }

  /**
   * The unacknowledged messages from the first one on, up to `maxWireBytes`
   * of fragments (always at least one message when any is pending).
   */
  batch(maxWireBytes: number, maxCount = Infinity): OutboxBatch {
    const fragments: string[] = [];
    let wireBytes = 0;
    for (let i = this.#head; i < this.#entries.length && fragments.length < maxCount; i++) {
      const e = this.#entries[i];
      if (fragments.length > 0 && wireBytes + e.wireBytes + 1 > maxWireBytes) break;
      fragments.push(e.fragment);
      wireBytes += e.wireBytes + 1;
    }
    return { seq: this.#acked + 1, fragments, wireBytes };
  }

  /** Remove and return every unacknowledged entry (the session is gone). */
  takeAll(): OutboxEntry[] {
    const rest = this.#entries.slice(this.#head);
    this.#entries = [];
    this.#head = 0;
    this.#acked += rest.length;
    this.#bytes = 0;
    return rest;
  }
}
