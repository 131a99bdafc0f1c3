/**
 * Reconnect delays: exponential from minDelayMs, capped at maxDelayMs, with
 * "equal jitter" (half fixed, half random) so that many clients cut off at
 * once do not come back at once.
 */
export class Backoff {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  #attempt = 0;

  constructor(minDelayMs: number, maxDelayMs: number) {
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt; each call doubles the base. */
  next(random: () => number = Math.random): number {
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base / 2 + random() * (base / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
