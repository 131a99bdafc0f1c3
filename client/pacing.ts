/**
 * When the session machine tries again: back-off between retries of failed
 * requests, back-off between new sessions, and the waiting itself, which
 * ends early when the client closes or the network comes back.
 */
import { Backoff } from './backoff.js';

/** Resolves after `ms`, or at once when `signal` aborts. */
export const delay = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class Pacing {
  /** Delays between retries of failed requests; starts over when one succeeds or a session opens. */
  readonly retries: Backoff;
  /** Delays between new sessions: grows while sessions keep being lost soon after they open. */
  readonly resets: Backoff;
  readonly #lifetime: AbortSignal;
  /** Aborted to end the current wait early (the network came back, or the client closed). */
  #wake = new AbortController();
  readonly #unsubscribe: () => void;

  constructor(minDelayMs: number, maxDelayMs: number, lifetime: AbortSignal, onNetworkBack: ((fn: () => void) => () => void) | undefined) {
    this.retries = new Backoff(minDelayMs, maxDelayMs);
    this.resets = new Backoff(minDelayMs, maxDelayMs);
    this.#lifetime = lifetime;
    this.#unsubscribe = onNetworkBack?.(() => this.#wake.abort()) ?? (() => {});
  }

  /**
   * The wait before opening a new session in place of one opened at
   * `openedAt`. The first loss opens one at once; sessions lost again soon
   * after they opened (a server that keeps forgetting them, two nodes that
   * share nothing) wait longer each time, as retries do. A session that
   * lived maxDelayMs or more starts this over.
   */
  resetDelay(openedAt: number): number {
    const b = this.resets;
    if (Date.now() - openedAt >= b.maxDelayMs) b.reset();
    const first = b.attempt === 0;
    const wait = b.next();
    return first ? 0 : wait;
  }

  /** Wait out a back-off delay; ends early on close or when the network comes back (retries then start over). */
  async wait(ms: number): Promise<void> {
    if (this.#wake.signal.aborted) this.#wake = new AbortController();
    const wake = this.#wake.signal;
    const onClose = () => this.#wake.abort();
    this.#lifetime.addEventListener('abort', onClose, { once: true });
    await delay(ms, wake);
    this.#lifetime.removeEventListener('abort', onClose);
    if (wake.aborted) this.retries.reset();
  }

  dispose(): void {
    this.#unsubscribe();
  }
}
