/**
 * What the leading tab tells a tab about its messages (tabs/leader.ts):
 * confirmed by the server, refused by the client, or lost with a session
 * that is gone. To its own tab through the host, to any other over the
 * channel, named by the leadership's epoch.
 */
import type { LeaderHost } from './leader.js';
import { toWireError } from './messages.js';

export class TabReplies {
  readonly #host: LeaderHost;
  readonly #epoch: string;

  constructor(host: LeaderHost, epoch: string) {
    this.#host = host;
    this.#epoch = epoch;
  }

  /** The server acknowledged `tab`'s messages up to `upTo`. */
  confirm(tab: string, upTo: number): void {
    if (tab === this.#host.tabId) this.#host.confirmed(upTo);
    else this.#host.post({ k: 'confirm', epoch: this.#epoch, to: tab, upTo });
  }

  /** The server acknowledged these messages: each tab hears of its highest. */
  confirmAll(entries: ReadonlyArray<{ tab: string; num: number }>): void {
    const upTo = new Map<string, number>();
    for (const e of entries) upTo.set(e.tab, Math.max(upTo.get(e.tab) ?? 0, e.num));
    for (const [tab, n] of upTo) this.confirm(tab, n);
  }

  /** The client refused `tab`'s message `num` (`err`). */
  refuse(tab: string, num: number, err: unknown): void {
    const error = toWireError(err);
    if (tab === this.#host.tabId) this.#host.refused(num, error);
    else this.#host.post({ k: 'refuse', epoch: this.#epoch, to: tab, num, error });
  }

  /** `tab`'s messages `nums` (and any it holds up to `upTo`) are lost with a session that is gone. */
  lose(tab: string, nums: number[], upTo?: number): void {
    if (tab === this.#host.tabId) this.#host.lost(nums, upTo);
    else this.#host.post(upTo === undefined ? { k: 'lost', epoch: this.#epoch, to: tab, nums } : { k: 'lost', epoch: this.#epoch, to: tab, nums, upTo });
  }
}
