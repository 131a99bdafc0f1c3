/**
 * A tab's state and the shared session as this tab knows it: the leader's
 * status (and the event relayed with it) turned into this tab's state and
 * the events HoldlineClient would emit ('open', 'reconnecting', 'reset',
 * 'transport', 'leader', 'error'). HoldlineTabClient (tab-client.ts) owns
 * one; it changes the state itself for connect() and close().
 */
import { HoldlineError, type CloseReason, type Payload } from '../../shared/index.js';
import type { ClientState } from '../holdline-client.js';
import type { Mirror } from './mirror.js';
import { fromWireError, idleStatus, type RelayedEvent, type SharedStatus } from './messages.js';
import type { TabClientEvents } from './types.js';

/** The tab client's emit. */
export type TabEmit = <K extends keyof TabClientEvents>(event: K, ...args: Parameters<TabClientEvents[K]>) => unknown;

export interface TabStateHost {
  readonly emit: TabEmit;
  /** The shared session as this tab mirrors it (tabs/mirror.ts). */
  readonly mirror: Mirror;
  /** The shared session ended for good (a close relayed): close this tab's handle. */
  close(reason: CloseReason, error: HoldlineError): void;
  /** The shared session is open, and this tab now knows it: a pending connect() resolves. */
  opened(): void;
}

export class TabState {
  readonly #host: TabStateHost;
  #state: ClientState = 'idle';
  /** The shared session, as the current leader last told. */
  #status: SharedStatus = idleStatus();
  /** Session this tab last saw open. */
  #known: string | undefined;
  /** This tab's messages lost with a session that is gone, for the next 'reset'. */
  #lostHere: Payload[] = [];

  constructor(host: TabStateHost) {
    this.#host = host;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Change this tab's state ('state' event). */
  set(next: ClientState): void {
    if (this.#state === next) return;
    this.#state = next;
    this.#host.emit('state', next);
  }

  /** The shared session, as the current leader last told. */
  get status(): SharedStatus {
    return this.#status;
  }

  /** Session this tab last saw open. */
  get known(): string | undefined {
    return this.#known;
  }

  /** A message of this tab lost with a session that is gone: the next 'reset' lists it. */
  lost(data: Payload): void {
    this.#lostHere.push(data);
  }

  /** A change of leader (the first one a tab follows is no change). */
  newLeader(): void {
    if (this.#state !== 'closed' && this.#known !== undefined) this.#host.emit('leader', { self: false, sessionId: this.#host.mirror.sessionId ?? this.#known });
  }

  /** The leader's status, with no event to apply. */
  statusChanged(status: SharedStatus): void {
    const previous = this.#status.transport;
    this.#status = status;
    if (status.transport !== previous && this.#state !== 'closed') this.#host.emit('transport', { transport: status.transport, previous });
  }

  /** open -> reconnecting, with the event HoldlineClient would emit. */
  enterReconnecting(why: string): void {
    if (this.#state !== 'open') return;
    this.set('reconnecting');
    this.#host.emit('reconnecting', { attempt: 0, delayMs: 0, error: new HoldlineError('session_lost', why) });
  }

  /** Apply the leader's status, and the event that came with it, to this tab. */
  apply(status: SharedStatus, event: RelayedEvent | undefined): void {
    const { emit, mirror } = this.#host;
    const previous = this.#status.transport;
    this.#status = status;
    if (status.transport !== previous && this.#state !== 'closed') emit('transport', { transport: status.transport, previous });
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'idle') return;
    const sid = status.sessionId;
    if (event?.type === 'close') {
      mirror.clear();
      this.#host.close(event.reason, new HoldlineError('session_closed', event.reason.message));
      return;
    }
    if (event?.type === 'error') {
      emit('error', fromWireError(event.error));
      return;
    }
    if (event?.type === 'reset') {
      mirror.clear();
      const previous = this.#known ?? event.previousSessionId;
      this.#known = event.sessionId;
      emit('reset', { previousSessionId: previous, sessionId: event.sessionId, reason: event.reason, lost: this.#lostHere.splice(0) });
      return;
    }
    if (event?.type === 'reconnecting') {
      if (this.#state === 'open' || this.#known !== undefined) this.set('reconnecting');
      emit('reconnecting', { attempt: event.attempt, delayMs: event.delayMs, error: fromWireError(event.error) });
      return;
    }
    if (status.state === 'open' && sid !== undefined) {
      if (this.#known !== undefined && this.#known !== sid) {
        // A new session without a reset from the client: another tab took over.
        const previous = this.#known;
        this.#known = sid;
        emit('reset', {
          previousSessionId: previous,
          sessionId: sid,
          reason: { code: 'transport_error', message: 'the tab that held the session went away; another tab opened a new one' },
          // What the old session took of this tab and never confirmed (the new leader said so: Leader.start).
          lost: this.#lostHere.splice(0),
        });
      }
      if (this.#state !== 'open') {
        const resumed = this.#known === sid && this.#state === 'reconnecting' && event?.type === 'open' && event.resumed;
        this.#known = sid;
        this.set('open');
        emit('open', { sessionId: sid, resumed });
        this.#host.opened();
      }
      return;
    }
    if (status.state === 'connecting' || status.state === 'reconnecting') {
      this.enterReconnecting(status.state === 'connecting' ? 'another tab takes over the session' : 'the session is reconnecting');
    }
  }
}
