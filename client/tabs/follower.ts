/**
 * What a following tab does with what leaders post: it follows one
 * leadership (epoch) at a time and ignores retired ones, re-sends its
 * unconfirmed messages to each new leader, and passes on the status, the
 * incoming messages, and the confirmations and refusals meant for it.
 */
import type { Payload } from '../../shared/index.js';
import type { LeaderMessage, RelayedEvent, SharedStatus, WireError } from './messages.js';

/** What a follower needs from its tab. */
export interface FollowerHost {
  readonly tabId: string;
  applyStatus(status: SharedStatus, event: RelayedEvent | undefined): void;
  /** The server acknowledged this tab's messages up to `upTo`. */
  confirmed(upTo: number): void;
  /** The leader's client refused this tab's message `num`. */
  refused(num: number, error: WireError): void;
  /** Hand every unconfirmed message of this tab to the leader (again). */
  resendPending(): void;
  /** A message from the server, for this tab's listeners. */
  deliver(data: Payload): void;
  /** The leader said it is going away; another will take over. */
  leaderGone(): void;
}

export class Follower {
  readonly #host: FollowerHost;
  /** The leadership followed. */
  #epoch: string | undefined;
  /** Leaderships over: what they still post is ignored. */
  readonly #retired = new Set<string>();

  constructor(host: FollowerHost) {
    this.#host = host;
  }

  /** This tab leads from now on, as `epoch`: the leadership it followed is over. */
  lead(epoch: string): void {
    if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
    this.#epoch = epoch;
  }

  /** A leader's message (only while this tab does not lead). */
  receive(m: LeaderMessage): void {
    if (this.#retired.has(m.epoch)) return;
    if (m.epoch !== this.#epoch) {
      if (m.k === 'leaving') return;
      // A new leader: whatever it did not see yet goes to it.
      if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
      this.#epoch = m.epoch;
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
      case 'resync':
        if (m.to === host.tabId) host.resendPending();
        return;
      case 'msg':
        host.deliver(m.data);
        return;
      case 'leaving':
        this.#retired.add(m.epoch);
        this.#epoch = undefined;
        host.leaderGone();
        return;
    }
  }
}
