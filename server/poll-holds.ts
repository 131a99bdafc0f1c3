/**
 * The polling transport's Holds (server/poll-hold.ts) by session id, with
 * the semantics of a Map: at most one per session. Where one is kept: a
 * session this node owns keeps its Hold in itself (Session.transportSlot),
 * so that an idle server has no map entry per session (46 B each at 10,000
 * sessions, the idle-heap figure); the Hold of a session owned elsewhere
 * (clustered), or of one that has just ended, is in a Map. The node says
 * when a session starts and stops being its own (own, disown), and its Hold
 * moves.
 */
import { Hold } from './poll-hold.js';

/** What Holds needs of a session this node owns (a Session). */
export interface HoldOwner {
  readonly id: string;
  transportSlot: object | undefined;
}

/** The sessions this node owns. */
export interface HoldOwners {
  owned(sid: string): HoldOwner | undefined;
  sessions(): Iterable<HoldOwner>;
}

export class Holds {
  readonly #owners: HoldOwners;
  /** Holds of sessions this node does not own. */
  readonly #others = new Map<string, Hold>();

  constructor(owners: HoldOwners) {
    this.#owners = owners;
  }

  get(sid: string): Hold | undefined {
    const slot = this.#owners.owned(sid)?.transportSlot;
    return slot instanceof Hold ? slot : this.#others.get(sid);
  }

  set(sid: string, h: Hold): void {
    const session = this.#owners.owned(sid);
    if (session === undefined) {
      this.#others.set(sid, h);
      return;
    }
    session.transportSlot = h;
    this.#others.delete(sid);
  }

  delete(sid: string): void {
    const session = this.#owners.owned(sid);
    if (session?.transportSlot instanceof Hold) session.transportSlot = undefined;
    this.#others.delete(sid);
  }

  /** Every Hold, with its session id. */
  forEach(fn: (h: Hold, sid: string) => void): void {
    this.#others.forEach(fn);
    for (const session of this.#owners.sessions()) {
      const slot = session.transportSlot;
      if (slot instanceof Hold) fn(slot, session.id);
    }
  }

  /** `session` is now this node's: a Hold it had moves into it. */
  own(session: HoldOwner): void {
    const h = this.#others.get(session.id);
    if (h === undefined) return;
    this.#others.delete(session.id);
    session.transportSlot = h;
  }

  /** `session` stops being this node's (it ended, or is handed over): its Hold stays, by its id. */
  disown(session: HoldOwner): void {
    const slot = session.transportSlot;
    if (!(slot instanceof Hold)) return;
    session.transportSlot = undefined;
    this.#others.set(session.id, slot);
  }
}
