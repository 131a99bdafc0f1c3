/**
 * What a following tab does with what leaders post: it follows one
 * leadership (epoch) at a time and ignores retired ones, re-sends its
 * unconfirmed messages to each new leader, and passes on the status, the
 * incoming messages, and the confirmations and refusals meant for it.
 */
import type { Payload } from '../../shared/index.js';
import type { LeaderMessage, RelayedEvent, SharedStatus, WireError } from './messages.js';
import { checkMirrorSync, type MirrorEntry, type MirrorSync } from './mirror.js';

/** What a follower needs from its tab. */
export interface FollowerHost {
  readonly tabId: string;
  applyStatus(status: SharedStatus, event: RelayedEvent | undefined): void;
  /** The server acknowledged this tab's messages up to `upTo`. */
  confirmed(upTo: number): void;
  /** The leader's client refused this tab's message `num`. */
  refused(num: number, error: WireError): void;
  /** This tab's messages `nums`, and any it holds numbered up to `upTo`, are lost with a session that is gone (for its 'reset'). */
  lost(nums: readonly number[], upTo?: number): void;
  /** Hand every unconfirmed message of this tab to the leader (again). */
  resendPending(): void;
  /** Message `seq` of the session's stream from the server, for this tab's listeners (a repeat is dropped). */
  deliver(data: Payload, seq: number): void;
  /** The leader said it is going away; another will take over. */
  leaderGone(): void;
  /** A new leadership (another tab's) is followed from now on. */
  newLeader(): void;
  /** This tab's mirror of the session (mirror.ts). */
  mirrorSync(sync: MirrorSync): void;
  mirrorOut(seq: number, e: MirrorEntry): void;
  mirrorAcked(upTo: number): void;
}

export class Follower {
  readonly #host: FollowerHost;
  /** The leadership followed. */
  #epoch: string | undefined;
  /** Leaderships over: what they still post is ignored. */
  readonly #retired = new Set<string>();

  /** Waiting for the leader followed to say it left (see untilLeft()). */
  #left: (() => void) | undefined;

  constructor(host: FollowerHost) {
    this.#host = host;
  }

  /**
   * Resolves once the leadership followed has said 'leaving' (its last
   * post: everything it relayed has arrived here), or after `ms` (it
   * crashed). A new leader waits for it before resuming, so that it goes on
   * from the last message the old leader relayed.
   */
  untilLeft(ms: number): Promise<void> {
    if (this.#epoch === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      const before = this.#left;
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#left = () => {
        before?.();
        done();
      };
    });
  }

  /** This tab leads from now on, as `epoch`: the leadership it followed is over. */
  lead(epoch: string): void {
    if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
    this.#epoch = epoch;
  }

  /** A leader's message (only while this tab does not lead). */
  receive(m: LeaderMessage): void {
    if (this.#retired.has(m.epoch)) {
      // The last words of a leader that handed over: the same session's
      // stream, which the mirror puts in order (and drops where repeated),
      // and what the server acknowledged of this tab's messages (still so).
      if (m.k === 'msg') this.#host.deliver(m.data, m.seq);
      else if (m.k === 'confirm' && m.to === this.#host.tabId) this.#host.confirmed(m.upTo);
      else if (m.k === 'out') this.#host.mirrorOut(m.seq, { tab: m.tab, num: m.num, data: m.data });
      else if (m.k === 'acked') this.#host.mirrorAcked(m.upTo);
      return;
    }
    if (m.epoch !== this.#epoch) {
      if (m.k === 'leaving') return;
      // A new leader: whatever it did not see yet goes to it.
      if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
      this.#epoch = m.epoch;
      this.#host.newLeader();
      this.#host.resendPending();
    }
    const host = this.#host;
    switch (m.k) {
      case 'status':
        host.applyStatus(m.status, m.event);
        return;
      case 'confirm':
        if (m.to === host.tabId) host.confirmed(m.upTo);
        return;
      case 'refuse':
        if (m.to === host.tabId) host.refused(m.num, m.error);
        return;
      case 'lost':
        if (m.to === host.tabId && Array.isArray(m.nums)) host.lost(m.nums.filter((n): n is number => typeof n === 'number'), typeof m.upTo === 'number' ? m.upTo : undefined);
        return;
      case 'resync':
        if (m.to === host.tabId) host.resendPending();
        return;
      case 'msg':
        host.deliver(m.data, m.seq);
        return;
      case 'sync': {
        const sync = checkMirrorSync(m.sync);
        if (sync) host.mirrorSync(sync);
        return;
      }
      case 'out':
        host.mirrorOut(m.seq, { tab: m.tab, num: m.num, data: m.data });
        return;
      case 'acked':
        host.mirrorAcked(m.upTo);
        return;
      case 'leaving': {
        this.#retired.add(m.epoch);
        this.#epoch = undefined;
        const left = this.#left;
        this.#left = undefined;
        left?.();
        host.leaderGone();
        return;
      }
    }
  }
}
