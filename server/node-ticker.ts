/**
 * The node's one periodic tick (one timer for all sessions, not one per
 * session): it ends poll holds, expires idle sessions (clustered: after
 * asking the store whether another node has seen the client since), keeps
 * the heartbeat (server/owner-lease.ts) and forgets refilled open buckets.
 * It runs while the node has sessions, held polls or WebSockets.
 */
import { clockMs } from './clock.js';
import type { OpenLimiter } from './open-admission.js';
import type { ResolvedOptions } from './options.js';
import type { OwnerLease } from './owner-lease.js';
import type { PollingTransport } from './polling.js';
import type { Session } from './session.js';
import type { WebSocketTransport } from './websocket.js';

/** What the tick reaches on its node (server/session-registry.ts). */
export interface TickerHost {
  readonly options: ResolvedOptions;
  /** Shares its store with other nodes (idle sessions are asked about, the heartbeat is kept). */
  readonly clustered: boolean;
  readonly polling: PollingTransport;
  readonly websocket: WebSocketTransport | undefined;
  readonly reportError: (err: unknown) => void;
  /** Sessions this node owns. */
  readonly size: number;
  /** The session as this node owns it, or undefined. */
  owned(sid: string): Session | undefined;
  /** The sessions this node owns. */
  sessions(): IterableIterator<Session>;
  /** A transport on this node holds a request of the session open. */
  holding(sid: string): boolean;
}

export class NodeTicker {
  readonly #host: TickerHost;
  readonly #lease: OwnerLease;
  /** Opens per client key lately (maxOpensPerMinute), pruned now and then. */
  readonly #opens: OpenLimiter;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Idle sessions whose liveness is being asked of the store. */
  readonly #asking = new Set<string>();

  constructor(host: TickerHost, lease: OwnerLease, opens: OpenLimiter) {
    this.#host = host;
    this.#lease = lease;
    this.#opens = opens;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(clockMs()), this.#host.options.tickMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #touchGone = (sid: string): void => {
    this.#host.owned(sid)?.touch(clockMs());
  };

  /** End expired holds, expire idle sessions, keep the heartbeat. */
  tick(now: number): void {
    const host = this.#host;
    host.polling.tick(now, this.#touchGone);
    const idle = host.options.sessionIdleTimeoutMs;
    for (const session of host.sessions()) {
      if (now - session.seen <= idle || host.holding(session.id)) continue;
      if (host.clustered) this.#askIdle(session, now);
      else session.close({ code: 'idle_timeout', message: `not polled for ${idle} ms` });
    }
    if (host.clustered) this.#lease.beat().catch(host.reportError);
    if (this.#opens.size > 0 && now % 5_000 < host.options.tickMs) this.#opens.prune();
    if (host.size === 0 && host.polling.held === 0 && (host.websocket?.size ?? 0) === 0 && !this.#lease.fencing) this.stop();
  }

  /** Idle here: has another node seen the client since? Else it expires. */
  #askIdle(session: Session, now: number): void {
    if (this.#asking.has(session.id)) return;
    this.#asking.add(session.id);
    const { options, reportError } = this.#host;
    const idle = options.sessionIdleTimeoutMs;
    options.store
      .seenUntil(session.id)
      .then((until) => {
        const ago = until === undefined ? Infinity : Date.now() - until;
        if (ago <= idle) session.touch(now - Math.max(0, ago));
        else session.close({ code: 'idle_timeout', message: `not polled for ${idle} ms` });
      })
      .catch(reportError)
      .finally(() => this.#asking.delete(session.id));
  }
}
