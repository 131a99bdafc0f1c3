/**
 * Backpressure for a sender, used by both ends: at most `maxBytes` of
 * unacknowledged payload. A send that does not fit waits, in order behind
 * every earlier waiter, until acks release room; it rejects with `queue_full`
 * after `timeoutMs`, or with the given error when the stream is failed.
 * Admission runs the caller's callback synchronously, so order is kept.
 */
import { HoldlineError } from './errors.js';

interface Waiter {
  bytes: number;
  admit: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class SendWindow {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  #buffered = 0;
  #waiters: Waiter[] = [];

  constructor(maxBytes: number, timeoutMs: number) {
    this.maxBytes = maxBytes;
    this.timeoutMs = timeoutMs;
  }

  /** Bytes admitted and not yet released. */
  get buffered(): number {
    return this.#buffered;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Take room for `bytes` if it fits and nobody waits (the common case, with
   * nothing allocated): true means admitted, and the caller queues the message
   * now. False: use acquire().
   */
  tryAcquire(bytes: number): boolean {
    if (this.#waiters.length !== 0 || this.#buffered + bytes > this.maxBytes) return false;
    this.#buffered += bytes;
    return true;
  }

  /** Admit `bytes` now if they fit and nobody waits, else wait; `admit` queues the message. */
  acquire(bytes: number, admit: () => Promise<void>): Promise<void> {
    if (this.tryAcquire(bytes)) return admit();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { bytes, admit, resolve, reject, timer: undefined };
      const timeout = () => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new HoldlineError('queue_full', `unacknowledged data stayed over ${this.maxBytes} bytes for ${this.timeoutMs} ms`));
        // The head of the line gave up: whoever is next may fit now.
        if (i === 0) this.#admitWaiting();
      };
      if (this.timeoutMs === 0) return timeout();
      w.timer = setTimeout(timeout, this.timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Count `bytes` queued before this window existed (a resumed session's), even past maxBytes: later sends wait for their acks. */
  take(bytes: number): void {
    this.#buffered += bytes;
  }

  /** Acks freed `bytes`: admit waiters that now fit, in order. */
  release(bytes: number): void {
    this.#buffered = Math.max(0, this.#buffered - bytes);
    this.#admitWaiting();
  }

  #admitWaiting(): void {
    for (let w = this.#waiters[0]; w !== undefined && this.#buffered + w.bytes <= this.maxBytes; w = this.#waiters[0]) {
      this.#waiters.shift();
      if (w.timer) clearTimeout(w.timer);
      this.#buffered += w.bytes;
      w.admit().then(w.resolve, w.reject);
    }
  }

  /** Reject every waiter and forget all accounting (the stream is gone). */
  fail(err: unknown): void {
    for (const w of this.#waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    this.#buffered = 0;
  }
}
