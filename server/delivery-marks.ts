/**
 * The node's marks of inbound delivery (Store.markDelivered), written a
 * moment after the deliveries they record rather than with them.
 *
 * A session that delivers inbound messages marks them delivered in the
 * store with its fence, so that a node taking it over goes on from there
 * (server/session.ts). The mark need not reach the store before anything
 * else does: until it does, a takeover only redelivers those messages,
 * flagged, as it would for a mark in flight when the owner died. Written at
 * once, it went out with the store call the application's reply made in the
 * same turn (an echo's commit): that call's answer, and so the poll waiting
 * for it, came only after Redis had also run the mark, and the two commands
 * made a pipeline where the reply alone is one command (measured in
 * bench/README.md, Redis section).
 *
 * So a mark waits for the node's one timer (the next event-loop turn past
 * 0 ms, a millisecond or so), and the marks of a session meanwhile become
 * one: the highest. A graceful leave writes them before it releases its
 * sessions (settle), so the next owner redelivers nothing.
 *
 * A store in this process (markDeliveredNow, MemoryStore) has no round
 * trip to keep off the reply's path: its marks are written at once, and
 * no timer is made per delivery (one on the path of every echo).
 */
import type { Session } from './session.js';
import type { SessionStore } from './store.js';

/** What a mark needs of its session. */
export type Marked = Pick<Session, 'id' | 'fence' | 'state'>;

export class DeliveryMarks {
  readonly #store: SessionStore;
  readonly #report: (err: unknown) => void;
  /** Per session, the highest inbound number delivered and not yet marked. */
  #due = new Map<Marked, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(store: SessionStore, report: (err: unknown) => void) {
    this.#store = store;
    this.#report = report;
  }

  /** `session` delivered inbound messages up to `seq`: mark it in the store now (a store in this process) or soon. */
  mark(session: Marked, seq: number): void {
    const store = this.#store;
    if (store.markDeliveredNow !== undefined) {
      try {
        store.markDeliveredNow(session.id, seq, session.fence);
      } catch (e) {
        // Closed meanwhile (by a listener, say): the store has forgotten the session, as it should.
        if (session.state !== 'closed') this.#report(e);
      }
      return;
    }
    const due = this.#due.get(session);
    if (due === undefined || seq > due) this.#due.set(session, seq);
    this.#timer ??= setTimeout(this.#flush, 0);
  }

  /** Write every mark now; resolves once the store has them (a graceful leave, before its sessions are released). */
  async settle(): Promise<void> {
    clearTimeout(this.#timer);
    await Promise.all(this.#writeAll());
  }

  readonly #flush = (): void => {
    void this.#writeAll();
  };

  #writeAll(): Promise<void>[] {
    this.#timer = undefined;
    const due = this.#due;
    if (due.size === 0) return [];
    this.#due = new Map();
    const writes: Promise<void>[] = [];
    for (const [session, seq] of due) {
      // Closed meanwhile: the store forgets the session (or the next owner has it).
      if (session.state === 'closed') continue;
      writes.push(
        this.#store.markDelivered(session.id, seq, session.fence).then(
          () => undefined,
          (e: unknown) => {
            // Closed meanwhile (by a listener, say): the store has forgotten the session, as it should.
            if (session.state !== 'closed') this.#report(e);
          },
        ),
      );
    }
    return writes;
  }
}
