/**
 * The receiving half of the reliable stream, used by both ends.
 *
 * Tracks the highest sequence number delivered in order (the cumulative ack).
 * A batch that starts at or before the next expected number is accepted, and
 * its leading messages that were already delivered are dropped (a retry never
 * duplicates). A batch that starts after it would leave a hole, and is refused:
 * delivery is never out of order.
 */
export type InboxVerdict =
  /** Deliver `batch.slice(skip)`; `skip` may equal the batch length (a full replay). */
  | { ok: true; skip: number }
  /** The batch starts past the next expected number. */
  | { ok: false; expected: number };

export class Inbox {
  #received: number;

  /** `ack`: every message up to it was delivered already (a resumed session; 0: a new stream). */
  constructor(ack = 0) {
    this.#received = ack;
  }

  /** Cumulative ack: every message up to this number has been delivered. */
  get ack(): number {
    return this.#received;
  }

  /** Judge a batch of `count` messages numbered from `seq`, and record the ones accepted. */
  accept(seq: number, count: number): InboxVerdict {
    const expected = this.#received + 1;
    if (count === 0) return { ok: true, skip: 0 };
    if (seq > expected) return { ok: false, expected };
    const skip = Math.min(expected - seq, count);
    this.#received = Math.max(this.#received, seq + count - 1);
    return { ok: true, skip };
  }
}
