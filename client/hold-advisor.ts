/**
 * Adaptive hold: how long to ask the server to hold each poll.
 *
 * Some middleboxes cut a response that has been pending for T seconds (a proxy
 * read timeout, a PaaS router, a NAT idle timer). When polls keep dying at
 * about the same age, shorter than the hold asked, the client asks for holds
 * under that age, as BOSH's `wait` does. When holds run their full course
 * again, it probes back up towards the configured hold, a step at a time.
 *
 * Some die without a sound (a NAT forgets an idle mapping: the answer never
 * arrives). Such a poll is found at its deadline, or earlier when a send's
 * answer shows that the server wrote messages the poll never brought
 * (WRITTEN_HEADER). One silent death is enough to act on: the age it died
 * at is known only to be below some bound (its hold, or its age when found),
 * so later holds go well under that bound at once (a quarter of it) and do
 * not probe up while the bound is remembered: a probe past a NAT's limit
 * would die silently too, and hold back whatever the server sends meanwhile
 * until its deadline. The bound is forgotten after CEILING_TTL_MS; then
 * probing goes back up as after cuts (the path may have changed).
 */
import { MIN_HOLD_MS } from '../shared/index.js';

/** Cut ages this close together (relative) count as "the same age". */
const SAME_AGE = 0.25;
/** The hold goes under the observed cut age by this factor. */
const MARGIN = 0.8;
/** Full holds in a row before probing a longer hold. */
const PROBE_AFTER = 5;
const PROBE_STEP = 1.25;
/** After a silent death, the next holds are this fraction of the age it died below. */
const SILENT_DROP = 0.25;
/** How long a silent death's bound caps the probing. */
export const CEILING_TTL_MS = 10 * 60_000;

export class HoldAdvisor {
  #configured: number;
  #current: number;
  #lastCutAge: number | undefined;
  #fullHolds = 0;
  /** A silent death happened below this age (ms; undefined: none known), and when that was learned. */
  #ceiling: number | undefined;
  #ceilingAt = 0;
  readonly #now: () => number;

  constructor(configuredMs: number, now: () => number = Date.now) {
    this.#configured = configuredMs;
    this.#current = configuredMs;
    this.#now = now;
  }

  get holdMs(): number {
    return this.#current;
  }

  /** The age below which a poll died silently (0: none known, or forgotten). */
  get ceilingMs(): number {
    return this.#liveCeiling() ?? 0;
  }

  #liveCeiling(): number | undefined {
    if (this.#ceiling !== undefined && this.#now() - this.#ceilingAt > CEILING_TTL_MS) this.#ceiling = undefined;
    return this.#ceiling;
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

  /**
   * A poll died without a sound, at an age below `boundMs` (its hold, when
   * found at its deadline; its age, when a send's answer showed it dead).
   */
  silentDeath(boundMs: number): void {
    this.#fullHolds = 0;
    const ceiling = this.#liveCeiling();
    this.#ceiling = ceiling === undefined ? boundMs : Math.min(ceiling, boundMs);
    this.#ceilingAt = this.#now();
    this.#current = Math.max(MIN_HOLD_MS, Math.min(this.#current, Math.floor(boundMs * SILENT_DROP)));
  }

  /** A poll ran its whole hold and came back empty: the path held that long. */
  fullHold(): void {
    if (this.#current >= this.#configured || this.#liveCeiling() !== undefined) return;
    if (++this.#fullHolds < PROBE_AFTER) return;
    this.#fullHolds = 0;
    this.#current = Math.min(this.#configured, Math.ceil(this.#current * PROBE_STEP));
  }
}
