/**
 * This node's lease on the sessions it owns (clustered): its heartbeat in the
 * store, beaten often enough that the lease (`ownerLeaseMs`) never lapses
 * while the node lives, and what the node does when the store turns out to
 * have lost its last beat. A node whose lease lapses loses its sessions to
 * the next node that serves one of their requests (server/session-lookup.ts).
 *
 * A node that cannot reach the store for a whole lease fences itself: it
 * drops its WebSockets, answers its held polls and owns its sessions no
 * more, so that their clients come back through the balancer to a node that
 * takes their sessions over, instead of staying on a node that answers
 * their heartbeats and serves nothing; and so that, reconnected, it does not
 * deliver what the new owner delivers.
 */
import PQueue from 'p-queue';
import type { CloseReason } from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';

/**
 * Store reads in flight at once while the node checks which of its sessions
 * the store still holds: a background check, kept below a broadcast's
 * (server/broadcast.ts) so that it never crowds the application's traffic.
 */
const CHECK_CONCURRENCY = 512;

/** Why a session the store no longer holds ends on the node that owned it. */
const LOST: CloseReason = { code: 'session_unknown', message: 'the store lost the session (Redis restarted or failed over without its data)' };

/** What the lease needs from its node (server/session-registry.ts). */
export interface LeaseHost {
  readonly options: ResolvedOptions;
  /** This node's id in the store. */
  readonly node: string;
  readonly reportError: (err: unknown) => void;
  /** Its held polls, answered at once when it fences itself. */
  readonly polling: { release(): void };
  /** Its WebSockets, dropped when it fences itself. */
  readonly websocket: { release(why: string): void } | undefined;
  /** Own these sessions (default: all) no more here, with no `close`: fenced, or another node took one over. */
  disown(sessions?: readonly Session[]): void;
  /** The session as this node owns it, or undefined. */
  owned(sid: string): Session | undefined;
  /** The sessions this node owns. */
  sessions(): IterableIterator<Session>;
}

export class OwnerLease {
  readonly #host: LeaseHost;
  /** Date.now() when the heartbeat is next due. */
  #nextBeat = 0;
  /** A heartbeat has been stored before (a later one that finds none means the store lost it). */
  #beaten = false;
  /** Date.now() until which the last heartbeat stored keeps the lease. */
  #keptUntil = 0;
  /** Date.now() when the first heartbeat not stored since the last stored one was started, or 0. */
  #unstoredSince = 0;
  /** The lease lapsed unstored and this node dropped its transports; cleared by the next heartbeat stored. */
  #fenced = false;
  /** A check for a lapsed lease waits for the loop's I/O (#fenceIfLapsed). */
  #checking = false;
  /** The sessions it owned when it fenced itself: once a beat is stored, those the store lost get their `close`. */
  #orphans: Session[] = [];

  constructor(host: LeaseHost) {
    this.#host = host;
  }

  /** Keep this node's heartbeat (clustered): beat unless a beat is recent enough to keep the lease for 2/3 of it. */
  async beat(): Promise<void> {
    const t = Date.now();
    this.#fenceIfLapsed(t);
    if (t < this.#nextBeat) return;
    const { options, node } = this.#host;
    this.#nextBeat = t + Math.floor(options.ownerLeaseMs / 3);
    if (this.#unstoredSince === 0) this.#unstoredSince = t;
    const kept = await options.store.heartbeat(node, options.ownerLeaseMs);
    this.#keptUntil = Math.max(this.#keptUntil, t + options.ownerLeaseMs);
    this.#unstoredSince = 0;
    this.#fenced = false;
    if (!kept && this.#beaten) this.#checkHeld();
    this.#beaten = true;
    if (this.#orphans.length > 0) this.#checkOrphans(this.#orphans.splice(0));
  }

  /** Sessions it gave up when it fenced itself are still to be checked: the tick keeps beating. */
  get fencing(): boolean {
    return this.#orphans.length > 0;
  }

  /**
   * The last heartbeat stored has lapsed, and one started a third of a lease
   * ago or more has not been stored (the store's calls fail or hang): other
   * nodes may take this node's sessions over now, but only when a request of
   * the session reaches one of them. A client on a WebSocket here that sends
   * nothing, or a poll held here, would stay, its heartbeats answered, with
   * no node serving its session. Drop them once: the clients go on on
   * polling, through the balancer, where a node that reaches the store takes
   * the session over. A node only paused (a long GC) is not fenced: the
   * check waits for the I/O of the loop's turn (a timer runs before it), so
   * that a stored beat's answer already in is counted first.
   */
  #fenceIfLapsed(t: number): void {
    if (!this.#lapsed(t) || this.#checking) return;
    this.#checking = true;
    setImmediate(() => {
      this.#checking = false;
      if (!this.#lapsed(Date.now())) return;
      this.#fenced = true;
      const host = this.#host;
      host.websocket?.release('the node cannot reach its store');
      host.polling.release();
      this.#orphans.push(...host.sessions());
      host.disown();
    });
  }

  #lapsed(t: number): boolean {
    if (this.#fenced || this.#keptUntil === 0 || t <= this.#keptUntil || this.#unstoredSince === 0) return false;
    return t - this.#unstoredSince >= this.#host.options.ownerLeaseMs / 3;
  }

  /**
   * The sessions it gave up when it fenced itself, now that it reaches the
   * store again: one the store no longer holds (Redis restarted without its
   * data), with no tombstone, ends here with `close` (session_unknown), as an
   * owned one would (#checkHeld). The others go on wherever their next
   * request takes them over; they end here with no `close`.
   */
  #checkOrphans(orphans: Session[]): void {
    this.#checkEach(orphans, async (session) => {
      const { store } = this.#host.options;
      if ((await store.get(session.id)) === undefined && (await store.tombstone(session.id)) === undefined) session.ended(LOST, []);
    });
  }

  /** Run `check` on each of `sessions`, CHECK_CONCURRENCY at a time, reporting what fails. */
  #checkEach(sessions: readonly Session[], check: (session: Session) => Promise<void>): void {
    const queue = new PQueue({ concurrency: CHECK_CONCURRENCY });
    for (const session of sessions) queue.add(() => check(session)).catch(this.#host.reportError);
  }

  /**
   * The store had lost this node's last heartbeat: it lost its data (Redis
   * restarted without it, or failed over to a replica that had not got it),
   * or this node stalled past its lease. Close at once the sessions the store
   * no longer holds, rather than keep them until their idle timeout: their
   * application hears `close` (session_unknown), their clients reset and
   * learn what was lost. Give up, with no `close`, those another node took
   * over meanwhile: this node must not deliver what their new owner does.
   */
  #checkHeld(): void {
    const host = this.#host;
    this.#checkEach([...host.sessions()], async (session) => {
      // Twice, a lease apart: a session the store misses once (a read
      // racing its open or a takeover on a node that stalled past its
      // lease) must not be closed under its client.
      const { store, ownerLeaseMs } = host.options;
      const rec = await store.get(session.id);
      // Taken over while this node was paused past its lease: it is the other node's now.
      if (rec !== undefined && (rec.owner !== host.node || rec.fence !== session.fence)) return host.disown([session]);
      if (rec !== undefined) return;
      await new Promise((r) => setTimeout(r, ownerLeaseMs).unref());
      if (session.state === 'closed' || host.owned(session.id) !== session) return;
      if ((await store.get(session.id)) === undefined && (await store.tombstone(session.id)) === undefined) session.close(LOST);
    });
  }
}
