/**
 * The leader's bookkeeping of every tab's message numbers, for one
 * leadership: the next number it expects from each tab (an older one is a
 * repeat, a later one after a gap asks the tab to send again), and, per tab,
 * the highest number the current session's stream took (posted as 'out', or
 * resumed), which every mirror keeps (mirror.ts, MirrorSync.taken).
 *
 * After a handover, a tab may not have heard the confirmation of a message
 * the server acknowledged (it came after the old leader's 'leaving', or
 * behind the new leader's first posts): from the mirror's `taken` the new
 * leader takes what the tab sends again up to there as a repeat (never under
 * a new number: the server would take it twice) and confirms what was
 * acknowledged (resume()).
 */
import type { Resumable } from './mirror.js';

/** What the leader does with a tab's message (see TabNumbers.admit). */
export type Admission = 'take' | 'repeat' | 'resync' | 'wait';

export class TabNumbers {
  /** Per tab: the next message number expected, and whether a resync was asked. */
  readonly #tabs = new Map<string, { next: number; resyncAsked: boolean }>();
  /** Per tab, the highest of its message numbers the current session's stream took (posted as 'out', or resumed). */
  readonly #taken = new Map<string, number>();

  /**
   * Message `num` of tab `from`, everything up to `base` being done on that
   * tab: 'take' it (the next expected, or the next after ones refused or
   * confirmed meanwhile), drop it as a 'repeat', or, after a gap, ask the tab
   * to send again ('resync', once until it does) or 'wait' for that.
   */
  admit(from: string, num: number, base: number): Admission {
    let t = this.#tabs.get(from);
    if (!t) {
      t = { next: base + 1, resyncAsked: false };
      this.#tabs.set(from, t);
    }
    if (num < t.next) return 'repeat';
    if (num > t.next) {
      if (base + 1 === num) {
        // The tab had earlier ones refused or confirmed meanwhile: move on.
        t.next = num;
      } else {
        if (t.resyncAsked) return 'wait';
        t.resyncAsked = true;
        return 'resync';
      }
    }
    t.next = num + 1;
    t.resyncAsked = false;
    return 'take';
  }

  /** The session's stream took message `num` of `tab`. */
  took(tab: string, num: number): void {
    if (num > (this.#taken.get(tab) ?? 0)) this.#taken.set(tab, num);
  }

  /** Per tab, the highest number the stream took, as the mirrors keep it. */
  takenByTab(): Record<string, number> {
    return Object.fromEntries(this.#taken);
  }

  /** The session was replaced: the new one's stream took nothing yet. */
  newStream(): void {
    this.#taken.clear();
  }

  /** A tab closed its handle. */
  forget(tab: string): void {
    this.#tabs.delete(tab);
  }

  /**
   * A new session replaces one that could not be resumed: what the old one's
   * stream took of each tab (`taken`) is never taken again (the server may
   * have acknowledged it: it would reach the application twice), and each
   * tab is told (`lose`) that what it still holds up to there is lost with
   * the old session, for its 'reset' to list, as a single client's does.
   */
  abandon(taken: ReadonlyMap<string, number>, lose: (tab: string, upTo: number) => void): void {
    for (const [tab, num] of taken) {
      const t = this.#tabs.get(tab);
      if (!t || t.next <= num) this.#tabs.set(tab, { next: num + 1, resyncAsked: false });
      lose(tab, num);
    }
  }

  /**
   * What the resumed session's stream took of each tab is not taken again:
   * a tab sends again every message not confirmed to it, and one the server
   * acknowledged under its number would reach it twice under a new one. So
   * each tab's next number is the one after the highest the stream took, and
   * what the server acknowledged (everything up to there but the resumed
   * messages, which come later in each tab's order) is confirmed to its tab
   * (`confirm`), which may never have heard it from the last leader.
   */
  resume(resumable: Resumable, confirm: (tab: string, upTo: number) => void): void {
    const took = new Map(resumable.taken);
    const firstResumed = new Map<string, number>();
    for (const o of resumable.owners) {
      if (o.num > (took.get(o.tab) ?? 0)) took.set(o.tab, o.num);
      if (!firstResumed.has(o.tab)) firstResumed.set(o.tab, o.num);
    }
    for (const [tab, num] of took) {
      this.#taken.set(tab, num);
      const t = this.#tabs.get(tab);
      if (!t || t.next <= num) this.#tabs.set(tab, { next: num + 1, resyncAsked: false });
      const upTo = (firstResumed.get(tab) ?? num + 1) - 1;
      if (upTo > 0) confirm(tab, upTo);
    }
  }
}
