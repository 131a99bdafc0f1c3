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
 * - Outgoing, across a change of leader (the leader tab closed, crashed or
 *   called close()): nothing is lost. The new leader opens a new session and
 *   every tab re-sends everything not yet confirmed, in order. A message the
 *   old session had received but whose confirmation never reached its tab is
 *   sent again: AT-LEAST-ONCE across a leader change, so give messages an id
 *   and let the server drop repeats (the demo does). The same holds when the
 *   leader's own session is reset (server restart, idle timeout): what the old
 *   session had not acknowledged is re-sent on the new one, so `reset` events
 *   from this class always carry `lost: []`.
 * - Incoming: exactly-once and in order per session. A new session (leader
 *   change or reset) starts a new stream: what the server had queued for the
 *   old session is gone, as with HoldlineClient's `reset`. Every tab gets a
 *   `reset` event (previousSessionId -> sessionId) and should resynchronise
 *   from the application's own state (the demo asks for the chat history).
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
 * does), follower.ts (what followers do), tab-client.ts (the class and the
 * election).
 */
export { HoldlineTabClient } from './tabs/tab-client.js';
export type {
  HoldlineTabClientOptions,
  TabBus,
  TabClientEvents,
  TabClientStats,
  TabCoreClient,
  TabCoreEvents,
  TabLockManager,
  TabRole,
} from './tabs/types.js';
