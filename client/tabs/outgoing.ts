/**
 * This tab's outgoing messages, from send() until the leader confirms that
 * the server acknowledged them (or refuses them): their numbers, the
 * backpressure (send() waits while unconfirmed bytes exceed maxBufferedBytes)
 * and, on close, the wait for confirmations and the list of what never came.
 */
import { SendWindow, type Payload } from '../../shared/index.js';

/** A message of this tab, not yet confirmed or refused. */
export interface Pending {
  num: number;
  data: Payload;
  bytes: number;
}

export class Outgoing {
  readonly #window: SendWindow;
  #nextNum = 1;
  #pending: Pending[] = [];
  #queued = 0;
  /** Set while close() waits for the last confirmations. */
  #drained: (() => void) | undefined;

  constructor(maxBytes: number, timeoutMs: number) {
    this.#window = new SendWindow(maxBytes, timeoutMs);
  }

  get maxBytes(): number {
    return this.#window.maxBytes;
  }

  /** Bytes queued and not confirmed. */
  get buffered(): number {
    return this.#window.buffered;
  }

  /** Messages send() queued, ever. */
  get queued(): number {
    return this.#queued;
  }

  /** The unconfirmed messages, oldest first (a live view). */
  get pending(): readonly Pending[] {
    return this.#pending;
  }

  /** Every message number up to this one is done (confirmed or refused). */
  get base(): number {
    const first = this.#pending[0];
    return first !== undefined ? first.num - 1 : this.#nextNum - 1;
  }

  /** Number `data` and keep it (waiting while over maxBytes); `forward` hands it to the leader. */
  add(data: Payload, bytes: number, forward: (p: Pending) => void): Promise<void> {
    return this.#window.acquire(bytes, () => {
      const p: Pending = { num: this.#nextNum++, data, bytes };
      this.#pending.push(p);
      this.#queued++;
      forward(p);
      return Promise.resolve();
    });
  }

  /** The server acknowledged every message up to `upTo`. */
  confirmed(upTo: number): void {
    let freed = 0;
    for (let p = this.#pending[0]; p !== undefined && p.num <= upTo; p = this.#pending[0]) {
      this.#pending.shift();
      freed += p.bytes;
    }
    if (freed > 0 || this.#pending.length === 0) this.#window.release(freed);
    if (this.#pending.length === 0) this.#drained?.();
  }

  /** Message `num` will not be sent; false when it is not (or no longer) kept. */
  refused(num: number): boolean {
    const i = this.#pending.findIndex((p) => p.num === num);
    const p = this.#pending[i];
    if (p === undefined) return false; // i is -1
    this.#pending.splice(i, 1);
    this.#window.release(p.bytes);
    if (this.#pending.length === 0) this.#drained?.();
    return true;
  }

  /** Message `num` is lost with a session that is gone: returns it, no longer kept (undefined: not kept). */
  lost(num: number): Payload | undefined {
    const i = this.#pending.findIndex((p) => p.num === num);
    const p = this.#pending[i];
    if (p === undefined) return undefined;
    this.#pending.splice(i, 1);
    this.#window.release(p.bytes);
    if (this.#pending.length === 0) this.#drained?.();
    return p.data;
  }

  /** Resolves once every message is confirmed or refused, or after `ms`. */
  waitConfirmed(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#drained = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#drained = done;
    });
  }

  /** The handle closes: returns the unconfirmed messages and rejects waiting sends with `error`. */
  abandon(error: unknown): Payload[] {
    const unconfirmed = this.#pending.splice(0).map((p) => p.data);
    this.#window.fail(error);
    return unconfirmed;
  }
}
