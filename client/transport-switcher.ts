/**
 * The transport the session machine sees: it carries each session on polling
 * or on a WebSocket and moves it between the two, losing and duplicating
 * nothing (the stream's numbering does not depend on the transport; see
 * PROTOCOL.md, "WebSocket", "Switching").
 *
 * The `transports` option says which may be used, in order of preference:
 *   ['polling', 'websocket']  (default) start on polling, probe a WebSocket
 *                             in the background and move to it once it
 *                             answers ok; back to polling when it dies.
 *   ['websocket', 'polling']  the WebSocket at once after the open (no
 *                             polls meanwhile); polling when it fails, then
 *                             as above.
 *   ['polling']               never a WebSocket.
 *   ['websocket']             after the open, only a WebSocket: a failed one
 *                             is a failed request (`reconnecting`, the
 *                             retry back-off), then a new one.
 *
 * Up: the WebSocket opens; polling stops (no poll may go out after the hello:
 * the server would close the WebSocket, 4000), the hello goes, and on ok the
 * WebSocket writes whatever is unacknowledged. If it fails before ok,
 * polling resumes at once.
 * Down: a WebSocket that closes without a close frame, goes silent or brings
 * a retryable error hands the session back to polling at once; it is tried
 * again after a back-off delay (reconnect.minDelayMs doubling to
 * maxDelayMs). After MAX_FAILURES in a row (WebSockets that never reached ok
 * or died within maxDelayMs of it), or an upgrade answered 404 (the server
 * offers none), the session stays on polling. So it does when the first
 * WebSocket of the session fails before its handshake completes: a browser
 * sees a 404 (no such path, or a proxy in the way) only as that, and a path
 * that never opened one is not tried again (a path that has carried the
 * session is: a node restarting refuses connections for a while).
 */
import type { HoldlineError } from '../shared/index.js';
import { Backoff } from './backoff.js';
import { noteSwitch } from './client-metrics.js';
import type { TransportEvent, TransportName } from './events.js';
import type { PollingTransport } from './polling-transport.js';
import type { LiveSession, Transport, TransportHost } from './transport.js';
import type { WebSocketEvents, WebSocketTransport } from './websocket-transport.js';

/** Failed WebSockets in a row after which a session stays on polling. */
export const MAX_FAILURES = 3;

export interface SwitcherParts {
  readonly transports: readonly TransportName[];
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly polling: PollingTransport;
  /** Undefined: the platform has no WebSocket. */
  createWebSocket: ((events: WebSocketEvents) => WebSocketTransport) | undefined;
  /** Told of every switch (the client's 'transport' event). */
  readonly onSwitch: (e: TransportEvent) => void;
}

export class TransportSwitcher implements Transport, WebSocketEvents {
  readonly name = 'switcher';
  readonly #host: TransportHost;
  readonly #transports: readonly TransportName[];
  readonly #polling: PollingTransport;
  readonly #ws: WebSocketTransport | undefined;
  readonly #onSwitch: (e: TransportEvent) => void;
  readonly #maxDelayMs: number;
  readonly #retries: Backoff;
  /** What carries the session (or did last, or is being tried first). */
  #current: TransportName;
  #pollingOn = false;
  #session: LiveSession | undefined;
  /** Failed WebSockets in a row, this session. */
  #failures = 0;
  /** This session stays on polling. */
  #gaveUp = false;
  /** A WebSocket has completed its handshake this session: the path exists. */
  #everOpened = false;
  #upAt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: TransportHost, parts: SwitcherParts) {
    this.#host = host;
    this.#transports = parts.transports;
    this.#polling = parts.polling;
    this.#onSwitch = parts.onSwitch;
    this.#maxDelayMs = parts.maxDelayMs;
    this.#retries = new Backoff(parts.minDelayMs, parts.maxDelayMs);
    this.#ws = parts.transports.includes('websocket') ? parts.createWebSocket?.(this) : undefined;
    this.#current = this.#ws === undefined ? 'polling' : (parts.transports[0] ?? 'polling');
  }

  /** The transport carrying the session now (or last, between sessions). */
  get current(): TransportName {
    return this.#current;
  }

  get #wsOnly(): boolean {
    return this.#ws !== undefined && !this.#transports.includes('polling');
  }

  start(session: LiveSession): void {
    this.#session = session;
    // A new session (after a reset): the last one's polling ended with it.
    this.#pollingOn = false;
    this.#failures = 0;
    this.#gaveUp = false;
    this.#everOpened = false;
    this.#retries.reset();
    this.#clearRetry();
    const ws = this.#ws;
    if (ws === undefined || this.#transports[0] === 'polling') {
      this.#startPolling(session);
      this.#set('polling');
    }
    ws?.start(session);
  }

  revalidate(): void {
    if (this.#current === 'polling') this.#polling.revalidate();
  }

  flush(): void {
    if (this.#ws?.up === true) this.#ws.flush();
    else if (this.#pollingOn) this.#polling.flush();
  }

  idle(): Promise<void> {
    return this.#ws?.up === true ? this.#ws.idle() : this.#polling.idle();
  }

  dispose(): void {
    this.#clearRetry();
    this.#session = undefined;
    this.#pollingOn = false;
    this.#polling.dispose();
    this.#ws?.dispose();
  }

  // ---- the WebSocket's events ----

  opened(session: LiveSession): void {
    if (session !== this.#session) return;
    this.#everOpened = true;
    // Before the hello: no poll may reach the server after it.
    this.#polling.stop();
    this.#pollingOn = false;
  }

  up(session: LiveSession): void {
    if (session !== this.#session) return;
    this.#upAt = Date.now();
    this.#set('websocket');
  }

  down(session: LiveSession, error: HoldlineError, wasUp: boolean, opened: boolean): void {
    const host = this.#host;
    if (session !== this.#session || host.current !== session) return;
    if (wasUp && Date.now() - this.#upAt >= this.#maxDelayMs) {
      // It carried the session a good while: not a failure, and the back-off starts over.
      this.#failures = 0;
      this.#retries.reset();
    } else {
      this.#failures++;
    }
    if (this.#wsOnly) {
      // No polling to fall back on: a failed request, retried after the machine's back-off.
      host.failed(session, error, error.code === 'proxy_auth_required' ? 'fatal' : 'retry').then(
        (goOn) => {
          if (goOn && this.#session === session && host.current === session) this.#ws?.start(session);
        },
        (e: unknown) => host.crashed(e),
      );
      return;
    }
    // At once, with nothing lost: polling starts from the first unacknowledged message both ways.
    this.#startPolling(session);
    this.#set('polling', error);
    if (this.#failures >= MAX_FAILURES || error.status === 404 || (!opened && !this.#everOpened)) {
      this.#gaveUp = true;
      return;
    }
    this.#clearRetry();
    const timer = (this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#session === session && host.current === session && !this.#gaveUp && this.#ws?.busy === false) this.#ws.start(session);
    }, this.#retries.next()));
    (timer as { unref?: () => void }).unref?.();
  }

  // ---- inside ----

  #startPolling(session: LiveSession): void {
    if (this.#pollingOn) return;
    this.#pollingOn = true;
    this.#polling.start(session);
  }

  /** The session is on `name` now; `reason`: why it left the WebSocket. */
  #set(name: TransportName, reason?: HoldlineError): void {
    const previous = this.#current;
    if (name === previous) return;
    this.#current = name;
    const stats = this.#host.stats;
    stats.transportSwitches = (stats.transportSwitches ?? 0) + 1;
    noteSwitch(previous, name);
    this.#onSwitch(reason === undefined ? { transport: name, previous } : { transport: name, previous, reason });
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}
