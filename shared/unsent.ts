import { at } from './invariant.js';

/**
 * What a sender has queued but not yet written to the network, used by both
 * ends for `queuedAmount` and the 'flush' event. Messages are numbered as in
 * the outbox (1, 2, 3, ... in push order); `sent(last)` records that every
 * message up to `last` has gone out at least once. A subset of what is
 * unacknowledged: a message stays in the outbox until acked, but leaves this
 * tally the first time it is written.
 */
export class Unsent {
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  #sentUpTo = 0;

  /** Payload bytes pushed and not yet written. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Every message up to this number has been written at least once (0: none yet). */
  get sentUpTo(): number {
    return this.#sentUpTo;
  }

  push(bytes: number): void {
    this.#sizes.push(bytes);
    this.#bytes += bytes;
  }

  /** Messages up to `last` were written. Returns true when that emptied the tally. */
  sent(last: number): boolean {
    if (last <= this.#sentUpTo) return false;
    for (let n = last - this.#sentUpTo; n > 0 && this.#head < this.#sizes.length; n--) {
      this.#bytes -= at(this.#sizes, this.#head++, 'Unsent.sent: the size of a pushed message');
    }
    this.#sentUpTo = last;
    if (this.#head === this.#sizes.length) {
      const hadAny = this.#head > 0;
      this.#sizes = [];
      this.#head = 0;
      return hadAny;
    }
    if (this.#head > 1024) {
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
    return false;
  }

  /** Forget everything: the stream starts again at number 1. */
  reset(): void {
    this.#sizes = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#sentUpTo = 0;
  }
}
