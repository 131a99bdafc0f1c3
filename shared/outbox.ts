/**
 * The sending half of the reliable stream, used by both ends.
 *
 * Messages are numbered 1, 2, 3, ... in the order they are pushed and kept
 * until the receiver's cumulative ack covers them. `batch()` always starts at
 * the first unacknowledged message, so anything lost in flight goes out again
 * on the next request; the receiver drops what it already has.
 *
 * Each entry keeps its payload in wire form (text as it is, binary already in
 * base64), so a resend or a broadcast never converts it again; a batch's JSON
 * is made in one call for all its messages (encodeMessages).
 */
import { encodeMessages } from './codec.js';
import { at, defined } from './invariant.js';
import { fromWire, isRpc, toWire, utf8Length, type MessageWire, type Payload, type WirePayload } from './payload.js';

export interface OutboxEntry {
  /** The payload as it goes into an envelope's `m` array. */
  readonly wire: WirePayload;
  /** Size of the payload as limits and bufferedAmount count it. */
  readonly bytes: number;
}

/** An entry that is a plain message (not a request or reply frame). */
export interface MessageEntry extends OutboxEntry {
  readonly wire: MessageWire;
}

/** Prepare a payload once for sending: its wire form and its size. */
export function encodeEntry(p: Payload): MessageEntry {
  return typeof p === 'string' ? { wire: p, bytes: utf8Length(p) } : { wire: toWire(p), bytes: p.byteLength };
}

/**
 * Bytes an entry takes in a JSON array, separator included, assuming no JSON
 * escapes: exact for binary and for text without `"`, `\`, control
 * characters or lone surrogates, and never more than the real size.
 */
function leastWireBytes(e: OutboxEntry): number {
  // "text",  or  {"b":"base64"},  or  {"r":"frame"},  (a frame's quotes are escaped: more)
  const w = e.wire;
  return typeof w === 'string' ? e.bytes + 3 : 'b' in w ? w.b.length + 9 : e.bytes + 9;
}

/**
 * The payloads back from entries (messages reported as unacknowledged or
 * lost). Request and reply frames are left out: their outcome is the
 * request's promise (a reply that never arrived is the requester's timeout).
 */
export function decodeEntries(entries: readonly OutboxEntry[]): Payload[] {
  const out: Payload[] = [];
  // encodeEntry() made each message's wire form from a payload, so it decodes.
  for (const e of entries) if (!isRpc(e.wire)) out.push(defined(fromWire(e.wire), 'decodeEntries: the payload of an entry'));
  return out;
}

export interface OutboxBatch {
  /** Sequence number of the first message (meaningless when count is 0). */
  seq: number;
  /** Number of messages. */
  count: number;
  /** JSON text of the messages' `m` array. */
  m: string;
  /** UTF-8 size of `m`. */
  wireBytes: number;
}

/** A batch as its messages' wire forms (wires()): for a transport that frames each message itself. */
export interface OutboxWires {
  /** Sequence number of the first message (meaningless when count is 0). */
  seq: number;
  count: number;
  wires: WirePayload[];
  /** What the batch's `m` would take at least (OutboxBatch.wireBytes when nothing needs escaping). */
  wireBytes: number;
}

export type AckResult = 'ok' | 'stale' | 'future';

export class Outbox {
  #entries: OutboxEntry[] = [];
  #head = 0;
  /** Highest sequence number acknowledged by the receiver. */
  #acked = 0;

  /** `acked`: where the stream stands (a resumed session's outbox goes on from there; 0: a new stream). */
  constructor(acked = 0) {
    this.#acked = acked;
    this.#written = acked;
  }
  #bytes = 0;
  /** Highest sequence number written to the network at least once (see written()). */
  #written = 0;
  /** Payload bytes of the messages numbered past #written. */
  #unwrittenBytes = 0;

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

  /** Unacknowledged messages numbered `from` or later. */
  pendingFrom(from: number): number {
    return Math.max(0, this.lastSeq - Math.max(from, this.#acked + 1) + 1);
  }

  /** Payload bytes pushed but not yet acknowledged. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /** Messages pushed and not yet written (see written()). */
  get unwritten(): number {
    return this.lastSeq - this.#written;
  }

  /** Payload bytes pushed and not yet written (written() counts them out): the sender's queuedAmount. */
  get unwrittenBytes(): number {
    return this.#unwrittenBytes;
  }

  /** Queue one message; returns its sequence number. */
  push(p: Payload): number {
    return this.pushEntry(encodeEntry(p));
  }

  /** push() for an entry made by encodeEntry(), kept as it is (no copy). */
  pushEntry(entry: OutboxEntry): number {
    this.#entries.push(entry);
    this.#bytes += entry.bytes;
    this.#unwrittenBytes += entry.bytes;
    return this.lastSeq;
  }

  /**
   * Every message up to `last` has now been written at least once. Returns
   * true when this wrote the last unwritten message (nothing is left to write).
   */
  written(last: number): boolean {
    const upTo = Math.min(last, this.lastSeq);
    if (upTo <= this.#written) return false;
    const entries = this.#entries;
    // #written >= #acked: ack() counts out what it acknowledges first.
    for (let seq = this.#written + 1; seq <= upTo; seq++) {
      this.#unwrittenBytes -= at(entries, this.#head + seq - this.#acked - 1, 'Outbox.written: an unwritten entry').bytes;
    }
    this.#written = upTo;
    return upTo === this.lastSeq;
  }

  /**
   * Apply a cumulative ack. An ack below what is already acknowledged is
   * stale (an old request arriving late) and changes nothing; one above
   * lastSeq acknowledges messages never sent and is refused.
   */
  ack(n: number): AckResult {
    if (n > this.lastSeq) return 'future';
    if (n <= this.#acked) return 'stale';
    // A receiver has only what was written; should it say otherwise, the tally still holds.
    if (n > this.#written) this.written(n);
    let drop = n - this.#acked;
    this.#acked = n;
    while (drop-- > 0) {
      // n <= lastSeq: every message up to n is still held.
      const e = at(this.#entries, this.#head, 'Outbox.ack: an unacknowledged entry');
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
   * The receiver acknowledged `ack`, past `last`: it took the numbers after
   * `last` from another sender of this stream (the client a session was
   * resumed from, which went on after it exported its state). Everything up
   * to `last` is acknowledged, and what is queued past it, never written,
   * is numbered after `ack`.
   */
  renumberFrom(last: number, ack: number): void {
    if (ack <= last || this.#written > last) throw new Error('Outbox.renumberFrom: only past `last`, and before anything past it is written');
    if (last > this.#acked) this.ack(last);
    this.#acked = ack;
    this.#written = ack;
  }

  /**
   * The unacknowledged messages from the first one on (or from message
   * `from`, if later), as JSON, with `m` at most `maxWireBytes` (always at
   * least one message when any is pending).
   */
  batch(maxWireBytes: number, maxCount = Infinity, from = 0): OutboxBatch {
    const entries = this.#entries;
    const skip = Math.min(Math.max(0, from - this.#acked - 1), entries.length - this.#head);
    const start = this.#head + skip;
    let end = start;
    // Choose by the least size each message can take, then measure the real
    // JSON; escapes (rare) can make it larger, then take proportionally fewer.
    for (let least = 1; end < entries.length && end - start < maxCount; end++) {
      const size = leastWireBytes(at(entries, end, 'Outbox.batch: a pending entry'));
      if (end > start && least + size > maxWireBytes) break;
      least += size;
    }
    for (;;) {
      const wires: WirePayload[] = [];
      // The JSON's length if it has no escapes, and then its exact UTF-8 size.
      let chars = 1;
      let bytes = 1;
      for (let i = start; i < end; i++) {
        const e = at(entries, i, 'Outbox.batch: a pending entry');
        wires.push(e.wire);
        const w = e.wire;
        chars += typeof w === 'string' ? w.length + 3 : 'b' in w ? w.b.length + 9 : w.r.length + 9;
        bytes += leastWireBytes(e);
      }
      const m = encodeMessages(wires);
      // No escapes (the JSON is no longer than that): the size is known
      // without measuring 100 KB of text again.
      const wireBytes = m.length === chars ? bytes : utf8Length(m);
      if (wireBytes <= maxWireBytes || end - start <= 1) return { seq: this.#acked + 1 + skip, count: end - start, m, wireBytes };
      end = start + Math.max(1, Math.min(end - start - 1, Math.floor(((end - start) * maxWireBytes) / wireBytes)));
    }
  }

  /**
   * batch() without the JSON: the same messages (chosen by the least size
   * each takes, `maxWireBytes` at most, at least one when any is pending),
   * as their wire forms.
   */
  wires(maxWireBytes: number, maxCount = Infinity, from = 0): OutboxWires {
    const entries = this.#entries;
    const skip = Math.min(Math.max(0, from - this.#acked - 1), entries.length - this.#head);
    const start = this.#head + skip;
    const wires: WirePayload[] = [];
    let bytes = 1;
    for (let i = start; i < entries.length && i - start < maxCount; i++) {
      const e = at(entries, i, 'Outbox.wires: a pending entry');
      const size = leastWireBytes(e);
      if (i > start && bytes + size > maxWireBytes) break;
      bytes += size;
      wires.push(e.wire);
    }
    return { seq: this.#acked + 1 + skip, count: wires.length, wires, wireBytes: bytes };
  }

  /**
   * Remove the unacknowledged messages numbered `from` or later that `refuse`
   * picks; the messages after each one are renumbered, so the stream keeps no
   * hole. Only for messages the receiver has not accepted and never will: not
   * yet written, or refused by it whole (a batch answered with an error, which
   * accepts nothing). Returns the removed entries, in order.
   */
  remove(from: number, refuse: (entry: OutboxEntry, seq: number) => boolean): OutboxEntry[] {
    const entries = this.#entries;
    const removed: OutboxEntry[] = [];
    const start = this.#head + Math.max(0, from - this.#acked - 1);
    let kept = start;
    let writtenRemoved = 0;
    for (let i = start; i < entries.length; i++) {
      const e = at(entries, i, 'Outbox.remove: a pending entry');
      const seq = this.#acked + 1 + i - this.#head;
      if (!refuse(e, seq)) {
        entries[kept++] = e;
        continue;
      }
      removed.push(e);
      this.#bytes -= e.bytes;
      if (seq <= this.#written) writtenRemoved++;
      else this.#unwrittenBytes -= e.bytes;
    }
    entries.length = kept;
    this.#written -= writtenRemoved;
    return removed;
  }

  /** The unacknowledged entries, oldest first (a copy): what a resumed session must send again. */
  unacked(): OutboxEntry[] {
    return this.#entries.slice(this.#head);
  }

  /** Remove and return every unacknowledged entry (the session is gone). */
  takeAll(): OutboxEntry[] {
    const rest = this.#entries.slice(this.#head);
    this.#entries = [];
    this.#head = 0;
    this.#acked += rest.length;
    this.#written = this.#acked;
    this.#bytes = 0;
    this.#unwrittenBytes = 0;
    return rest;
  }
}
