/**
 * HoldlineTabClient: several tabs of one origin share one Holdline session
 * (browser only).
 *
 * Why: a browser allows about six connections per host, and every Holdline
 * client keeps a poll outstanding and sometimes a send. Ten tabs with a client
 * each would starve the page of connections. Here the tabs elect one leader
 * with the Web Locks API — the leader holds the lock `holdline-leader:<name>`
 * for as long as it leads, so the lock is released when its tab closes or
 * crashes — and talk over a BroadcastChannel of the same name. Only the leader
 * runs a HoldlineClient; the others (followers) forward their sends to it and
 * receive what it relays.
 *
 *   tab A (leader) ── HoldlineClient ── HTTP ── server
 *      ▲  │ relays 'msg', 'status', 'confirm'
 *      │  ▼
 *   BroadcastChannel ◀── 'send' ── tabs B, C (followers)
 *
 * SEMANTICS (read this before relying on it)
 * - Outgoing, while one leader lives: exactly-once and in order per tab, like
 *   HoldlineClient. Every tab keeps each message it sent until the leader
 *   confirms that the SERVER acknowledged it (the leader counts its client's
 *   'ack' events: acks come in send order, so the number of messages
 *   acknowledged tells which ones). Messages of different tabs interleave in
 *   the order the leader received them.
 * - Across a change of leader (the leader tab closed, crashed or called
 *   close()): the SAME session goes on, with nothing lost or repeated either
 *   way. Every tab mirrors the session (tabs/mirror.ts): its credential, its
 *   position in the server's stream, and every message the leader handed to
 *   its client and the server has not acknowledged, with its number. The new
 *   leader waits for the old one's last posts (up to 500 ms), resumes the
 *   session from its mirror (HoldlineClient.resume(): the unacknowledged
 *   messages go out again with their numbers, and the server drops what it
 *   already had), and every tab gets a 'leader' event, not a 'reset'. A
 *   leader that closes while other tabs remain leaves the session open for
 *   them (no /close); the last tab closes it. A leader whose page goes away
 *   (pagehide) with other tabs on its session hands over there and then: its
 *   client stops (it acknowledges and sends nothing more) before its last
 *   post, 'leaving', so that the next leader, which waits for that post,
 *   resumes from exactly where it stopped. A page restored from the
 *   back/forward cache follows, and is in line to lead again.
 * - When the session itself is gone (server restart, idle timeout, or gone
 *   before the new leader resumed it), the leader's client opens a new one
 *   and every tab gets `reset`, as from HoldlineClient: its `lost` lists
 *   exactly this tab's messages that went to the old session and were never
 *   acknowledged (they are not sent again); this tab's messages not handed
 *   over yet go on in the new session. Incoming, the new session starts a
 *   new stream: tabs resynchronise from the application's own state.
 * - A tab that joins while the session is open sees the messages relayed from
 *   then on.
 * - `close()` on one tab closes that tab's handle only. When the leader
 *   closes, its client drains (up to 2 s) and closes its session; another tab
 *   takes over. When the shared session ends for good (a fatal error, the
 *   server closing it) every tab gets `close`. `unacked` in `close` lists this
 *   tab's messages not confirmed; a leader may still deliver some of them.
 * - Without Web Locks or BroadcastChannel (insecure context, old browser) each
 *   tab simply runs its own session (role 'leader', no sharing).
 * - A leader in a background tab runs on throttled timers: the status it
 *   broadcasts every second (the stats followers see) can lag. Confirmations
 *   and delivery do not: they follow the server's answers.
 *
 * The code, one file per role under tabs/: types.ts (the public types and
 * the host APIs used), messages.ts (what travels on the BroadcastChannel),
 * outgoing.ts (a tab's messages until confirmed), leader.ts (what the leader
 * does), follower.ts (what followers do), mirror.ts (every tab's copy of
 * the session), tab-client.ts (the class and the election), tab-state.ts
 * (this tab's state and events from the leader's), tab-options.ts (options
 * and their defaults), tab-numbers.ts (the leader's record of each tab's
 * message numbers).
 */
export { HoldlineTabClient } from './tabs/tab-client.js';
export type {
  HoldlineTabClientOptions,
  LeaderEvent,
  TabBus,
  TabClientEvents,
  TabClientStats,
  TabCoreClient,
  TabCoreEvents,
  TabLockManager,
  TabRole,
} from './tabs/types.js';
