/**
 * Adaptive hold: how long to ask the server to hold each poll.
 *
 * Some middleboxes cut a response that has been pending for T seconds (a proxy
 * read timeout, a PaaS router, a NAT idle timer). When polls keep dying at
 * about the same age, shorter than the hold asked, the client asks for holds
 * under that age, as BOSH's `wait` does. When holds run their full course
 * again, it probes back up towards the configured hold, a step at a time.
 */
import { MIN_HOLD_MS } from '../shared/index.js';

/** Cut ages this close together (relative) count as "the same age". */
const SAME_AGE = 0.25;
/** The hold goes under the observed cut age by this factor. */
const MARGIN = 0.8;
/** Full holds in a row before probing a longer hold. */
const PROBE_AFTER = 5;
const PROBE_STEP = 1.25;

export class HoldAdvisor {
  #configured: number;
  #current: number;
  #lastCutAge: number | undefined;
  #fullHolds = 0;

  constructor(configuredMs: number) {
    this.#configured = configuredMs;
    this.#current = configuredMs;
  }

  get holdMs(): number {
    return this.#current;
  }

  get configuredMs(): number {
    return this.#configured;
  }

  /** A new session's limits: the configured hold may change; learned cuts still apply. */
  reconfigure(configuredMs: number): void {
    this.#configured = configuredMs;
    this.#current = Math.min(this.#current, configuredMs);
  }

  /** A poll asked to hold `heldMs` died after `ageMs` without an answer from the server. */
  cut(ageMs: number, heldMs: number): void {
    this.#fullHolds = 0;
    if (ageMs >= heldMs) return; // died past its hold: a black hole, not an age limit
    const previous = this.#lastCutAge;
    this.#lastCutAge = ageMs;
    if (previous !== undefined && Math.abs(ageMs - previous) <= SAME_AGE * Math.max(ageMs, previous)) {
      const target = Math.max(MIN_HOLD_MS, Math.floor(Math.min(ageMs, previous) * MARGIN));
      this.#current = Math.min(this.#current, target);
    }
  }

  /** A poll ran its whole hold and came back empty: the path held that long. */
  fullHold(): void {
    if (this.#current >= this.#configured) return;
    if (++this.#fullHolds < PROBE_AFTER) return;
    this.#fullHolds = 0;
    this.#current = Math.min(this.#configured, Math.ceil(this.#current * PROBE_STEP));
  }
}
