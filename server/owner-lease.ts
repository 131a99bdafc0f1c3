/**
 * This node's lease on the sessions it owns (clustered): its heartbeat in the
 * store, beaten often enough that the lease (`ownerLeaseMs`) never lapses
 * while the node lives, and what the node does when the store turns out to
 * have lost its last beat. A node whose lease lapses loses its sessions to
 * the next node that serves one of their requests (server/session-lookup.ts).
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

/** What the lease needs from its node (server/session-registry.ts). */
export interface LeaseHost {
  readonly options: ResolvedOptions;
  /** This node's id in the store. */
  readonly node: string;
  readonly reportError: (err: unknown) => void;
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

  constructor(host: LeaseHost) {
    this.#host = host;
  }

  /** Keep this node's heartbeat (clustered): beat unless a beat is recent enough to keep the lease for 2/3 of it. */
  async beat(): Promise<void> {
    const t = Date.now();
    if (t < this.#nextBeat) return;
    const { options, node } = this.#host;
    this.#nextBeat = t + Math.floor(options.ownerLeaseMs / 3);
    const kept = await options.store.heartbeat(node, options.ownerLeaseMs);
    if (!kept && this.#beaten) this.#checkHeld();
    this.#beaten = true;
  }

  /**
   * The store had lost this node's last heartbeat: it lost its data (Redis
   * restarted without it, or failed over to a replica that had not got it),
   * or this node stalled past its lease. Close at once the sessions the store
   * no longer holds, rather than keep them until their idle timeout: their
   * application hears `close` (session_unknown), their clients reset and
   * learn what was lost.
   */
  #checkHeld(): void {
    const host = this.#host;
    const queue = new PQueue({ concurrency: CHECK_CONCURRENCY });
    const reason: CloseReason = { code: 'session_unknown', message: 'the store lost the session (Redis restarted or failed over without its data)' };
    for (const session of [...host.sessions()]) {
      queue
        .add(async () => {
          // Twice, a lease apart: a session the store misses once (a read
          // racing its open or a takeover on a node that stalled past its
          // lease) must not be closed under its client.
          const { store, ownerLeaseMs } = host.options;
          if ((await store.get(session.id)) !== undefined) return;
          await new Promise((r) => setTimeout(r, ownerLeaseMs).unref());
          if (session.state === 'closed' || host.owned(session.id) !== session) return;
          if ((await store.get(session.id)) === undefined && (await store.tombstone(session.id)) === undefined) session.close(reason);
        })
        .catch(host.reportError);
    }
  }
}
