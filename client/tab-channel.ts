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
 *   confirms that the SERVER acknowledged it (the leader watches its client's
 *   bufferedAmount fall: acks are cumulative, so acknowledged bytes identify
 *   acknowledged messages). Messages of different tabs interleave in the order
 *   the leader received them.
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
 * - A leader in a background tab runs on throttled timers: confirmations can
 *   lag (followers hold their messages longer), delivery does not.
 */
import {
  HoldlineError,
  SendWindow,
  TypedEmitter,
  isPayload,
  payloadBytes,
  type CloseReason,
  type ErrorCode,
  type Payload,
} from '../shared/index.js';
import { HoldlineClient } from './browser.js';
import type { ClientEvents, ClientState, ClientStats, OpenEvent, ReconnectingEvent, ResetEvent } from './holdline-client.js';
import { resolveClientOptions, type HoldlineClientOptions } from './options.js';

/** The part of HoldlineClient the leader uses. */
export interface TabCoreClient {
  readonly state: ClientState;
  readonly sessionId: string | undefined;
  readonly bufferedAmount: number;
  readonly stats: Readonly<ClientStats>;
  connect(): Promise<void>;
  send(data: Payload): Promise<void>;
  close(): Promise<void>;
  on<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): unknown;
}

/** The part of the Web Locks API used (navigator.locks). */
export interface TabLockManager {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The part of BroadcastChannel used. */
export interface TabBus {
  onmessage: ((ev: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

export interface HoldlineTabClientOptions extends HoldlineClientOptions {
  /** Tabs with the same name (and origin) share a session. Default: the resolved URL. */
  channelName?: string;
  /** For tests and unusual hosts; default navigator.locks (undefined: no sharing). */
  locks?: TabLockManager | null;
  /** For tests; default `new BroadcastChannel(name)`. */
  createBus?: (name: string) => TabBus;
  /** For tests; default `new HoldlineClient(url, options)`. */
  createClient?: (url: string, options: HoldlineClientOptions) => TabCoreClient;
  /** How often the leader checks its client for acknowledgements while messages are in flight. Default 50 ms. */
  ackCheckMs?: number;
}

export type TabRole = 'none' | 'leader' | 'follower';

export interface TabClientStats extends ClientStats {
  /** Messages this tab's send() queued (ClientStats.messagesSent counts the same for this tab). */
  messagesSent: number;
  /** Messages this tab delivered to its 'message' listeners. */
  messagesReceived: number;
  /** This tab's messages not yet confirmed as acknowledged by the server. */
  unconfirmed: number;
}

export interface TabClientEvents extends ClientEvents {
  /** This tab became the leader or a follower (or 'none' once closed). */
  role: (role: TabRole) => void;
  /** Every state change. */
  state: (state: ClientState) => void;
}

// ---- what travels on the BroadcastChannel ----

interface SharedStatus {
  state: ClientState;
  sessionId: string | undefined;
  transport: 'polling';
  stats: ClientStats;
}

interface WireError {
  code: ErrorCode;
  message: string;
  status: number | undefined;
}

type RelayedEvent =
  | { type: 'open'; resumed: boolean }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error: WireError }
  | { type: 'reset'; previousSessionId: string; sessionId: string; reason: CloseReason }
  | { type: 'error'; error: WireError }
  | { type: 'close'; reason: CloseReason };

type BusMessage =
  /** A tab joined: the leader answers with its status. */
  | { k: 'hello'; from: string }
  /** A tab's message for the leader. `base`: every number up to it is done (confirmed or refused). */
  | { k: 'send'; from: string; num: number; base: number; data: Payload }
  /** A tab closed its handle. */
  | { k: 'bye'; from: string }
  /** Leader to everyone; `event` when something happened. */
  | { k: 'status'; epoch: string; status: SharedStatus; event?: RelayedEvent }
  /** Leader: the server acknowledged `to`'s messages up to `upTo`. */
  | { k: 'confirm'; epoch: string; to: string; upTo: number }
  /** Leader: the client refused `to`'s message `num` (too large, say); it will not be sent. */
  | { k: 'refuse'; epoch: string; to: string; num: number; error: WireError }
  /** Leader: `to` left a gap; send everything unconfirmed again. */
  | { k: 'resync'; epoch: string; to: string }
  /** Leader: an incoming message. */
  | { k: 'msg'; epoch: string; data: Payload }
  /** Leader: this tab is going away (pagehide or close()). */
  | { k: 'leaving'; epoch: string };

interface Pending {
  num: number;
  data: Payload;
  bytes: number;
}

/** A message the leader accepted from some tab (itself included). */
interface Entry {
  tab: string;
  num: number;
  data: Payload;
  bytes: number;
  /** Cumulative bytes handed to the client in this session, through this entry. */
  end: number;
}

interface Leadership {
  epoch: string;
  client: TabCoreClient;
  /** Per tab: the next message number expected, and whether a resync was asked. */
  tabs: Map<string, { next: number; resyncAsked: boolean }>;
  /** Accepted, not yet handed to the client. */
  queue: Entry[];
  /** Handed to the client, not yet confirmed. */
  flight: Entry[];
  /** Bytes handed to the client in the current session. */
  admitted: number;
  /** Between the client's 'session_lost' reconnecting and its 'reset': acks cannot be read. */
  sessionLost: boolean;
  /** true once the shared session ended or this tab abdicates: relay nothing more. */
  done: boolean;
  /** The lock was released. */
  released: boolean;
  ackTimer: ReturnType<typeof setInterval> | undefined;
  statusTimer: ReturnType<typeof setInterval> | undefined;
  /** Resolves the lock callback: the lock is released. */
  release: () => void;
}

const EMPTY_STATS: ClientStats = {
  polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: 0,
  reconnects: 0, resets: 0, holdMs: 0, rttMs: 0,
};

function randomId(): string {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function toWireError(e: unknown): WireError {
  if (e instanceof HoldlineError) return { code: e.code, message: e.message, status: e.status };
  return { code: 'internal_error', message: String(e), status: undefined };
}

function fromWireError(e: WireError): HoldlineError {
  return new HoldlineError(e.code, e.message, e.status === undefined ? undefined : { status: e.status });
}

function defaultLocks(): TabLockManager | undefined {
  const nav = (globalThis as { navigator?: { locks?: TabLockManager } }).navigator;
  return nav?.locks;
}

function isBusMessage(v: unknown): v is BusMessage {
  return typeof v === 'object' && v !== null && typeof (v as { k?: unknown }).k === 'string';
}

export class HoldlineTabClient extends TypedEmitter<TabClientEvents> {
  readonly url: string;
  /** This tab's id on the channel. */
  readonly tabId = randomId();
  readonly channelName: string;
  readonly #clientOptions: HoldlineClientOptions;
  readonly #locks: TabLockManager | undefined;
  readonly #createBus: (name: string) => TabBus;
  readonly #createClient: (url: string, options: HoldlineClientOptions) => TabCoreClient;
  readonly #ackCheckMs: number;
  readonly #connectTimeoutMs: number;
  readonly #closeWaitMs: number;

  #state: ClientState = 'idle';
  #role: TabRole = 'none';
  #bus: TabBus | undefined;
  /** Aborts a lock request still waiting, and every wait of this tab. */
  readonly #lifetime = new AbortController();
  #connectPromise: Promise<void> | undefined;
  #connectSettle: { resolve: () => void; reject: (e: HoldlineError) => void } | undefined;

  // Shared view, from the current leader.
  #epoch: string | undefined;
  readonly #retired = new Set<string>();
  #status: SharedStatus = { state: 'idle', sessionId: undefined, transport: 'polling', stats: { ...EMPTY_STATS } };
  /** Session this tab last saw open. */
  #known: string | undefined;

  // This tab's outgoing messages.
  #nextNum = 1;
  #pending: Pending[] = [];
  readonly #window: SendWindow;
  #sent = 0;
  #received = 0;

  #lead: Leadership | undefined;
  readonly #onPageHide = () => this.#pageHide();

  constructor(url: string, options: HoldlineTabClientOptions = {}) {
    super();
    const { channelName, locks, createBus, createClient, ackCheckMs, ...clientOptions } = options;
    let u: URL;
    try {
      u = new URL(url, typeof location === 'undefined' ? undefined : location.href);
    } catch {
      throw new TypeError(`HoldlineTabClient: url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new TypeError(`HoldlineTabClient: url must be http: or https:, got ${u.protocol}`);
    }
    this.url = u.href.replace(/\/+$/, '');
    if (channelName !== undefined && (typeof channelName !== 'string' || channelName === '')) {
      throw new TypeError(`option "channelName" must be a non-empty string, got ${JSON.stringify(channelName)}`);
    }
    if (ackCheckMs !== undefined && (!Number.isSafeInteger(ackCheckMs) || ackCheckMs < 1)) {
      throw new TypeError(`option "ackCheckMs" must be an integer >= 1, got ${JSON.stringify(ackCheckMs)}`);
    }
    this.channelName = channelName ?? this.url;
    this.#clientOptions = clientOptions;
    this.#locks = locks === null ? undefined : (locks ?? defaultLocks());
    const Bus = (globalThis as { BroadcastChannel?: new (name: string) => TabBus }).BroadcastChannel;
    this.#createBus = createBus ?? ((name) => {
      if (!Bus) throw new TypeError('BroadcastChannel is not available');
      return new Bus(name);
    });
    if (!createBus && !Bus) this.#locks = undefined;
    this.#createClient = createClient ?? ((u2, o) => new HoldlineClient(u2, o));
    this.#ackCheckMs = ackCheckMs ?? 50;
    // The same checks HoldlineClient makes, now rather than when this tab leads.
    const resolved = resolveClientOptions(clientOptions);
    this.#connectTimeoutMs = resolved.connectTimeoutMs;
    this.#closeWaitMs = Math.min(2_000, resolved.requestTimeoutMs);
    this.#window = new SendWindow(resolved.maxBufferedBytes, resolved.sendTimeoutMs);
  }

  get state(): ClientState {
    return this.#state;
  }

  /** 'leader' when this tab runs the session, 'follower' when another tab does. */
  get role(): TabRole {
    return this.#role;
  }

  /** Whether tabs share a session here (Web Locks and BroadcastChannel available). */
  get shared(): boolean {
    return this.#locks !== undefined;
  }

  get sessionId(): string | undefined {
    return this.#known ?? this.#status.sessionId;
  }

  get transport(): 'polling' {
    return this.#status.transport;
  }

  /** The shared session's stats: live on the leader, as of the last status (at most 1 s old) on a follower. */
  #sharedStats(): ClientStats {
    const lead = this.#lead;
    return lead && !lead.done ? { ...lead.client.stats } : this.#status.stats;
  }

  /** Bytes this tab sent that the server has not acknowledged yet (as confirmed by the leader). */
  get bufferedAmount(): number {
    return this.#window.buffered;
  }

  /** The shared session's stats (from the leader), with this tab's own message counts. */
  get stats(): Readonly<TabClientStats> {
    return { ...this.#sharedStats(), messagesSent: this.#sent, messagesReceived: this.#received, unconfirmed: this.#pending.length };
  }

  /** Join the tabs' shared session (leading it if no tab does). Resolves once it is open. */
  connect(): Promise<void> {
    if (this.#connectPromise) return this.#connectPromise;
    if (this.#state !== 'idle') {
      return Promise.reject(new HoldlineError('invalid_state', `connect() needs state idle, not ${this.#state}`));
    }
    this.#connectPromise = new Promise<void>((resolve, reject) => {
      this.#connectSettle = { resolve, reject };
    });
    this.#setState('connecting');
    const timer = setTimeout(() => {
      if (this.#state === 'connecting') {
        void this.#closeTab(
          { code: 'transport_error', message: `no open session within ${this.#connectTimeoutMs} ms` },
          new HoldlineError('timeout', `could not join a session within ${this.#connectTimeoutMs} ms`),
        );
      }
    }, this.#connectTimeoutMs + 5_000);
    const clear = () => clearTimeout(timer);
    this.#connectPromise.then(clear, clear);

    if (!this.#locks) {
      // No sharing: lead alone, without a lock.
      void this.#becomeLeader(() => undefined);
      return this.#connectPromise;
    }
    const bus = this.#createBus(`holdline:${this.channelName}`);
    this.#bus = bus;
    bus.onmessage = (ev: MessageEvent) => {
      if (isBusMessage(ev.data)) this.#onBus(ev.data);
    };
    if (typeof addEventListener === 'function') addEventListener('pagehide', this.#onPageHide);
    this.#setRole('follower');
    this.#post({ k: 'hello', from: this.tabId });
    this.#locks
      .request(`holdline-leader:${this.channelName}`, { signal: this.#lifetime.signal }, () => {
        if (this.#lifetime.signal.aborted) return Promise.resolve();
        return new Promise<void>((release) => {
          void this.#becomeLeader(release);
        });
      })
      .catch(() => undefined); // aborted while waiting: this tab closed
    return this.#connectPromise;
  }

  /** Queue a message. Resolves once queued (waits while bufferedAmount is over maxBufferedBytes). */
  send(data: Payload): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(new HoldlineError('client_closed', `send() on a ${this.#state} client`));
    }
    if (!isPayload(data)) {
      return Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`));
    }
    const bytes = payloadBytes(data);
    if (bytes > this.#window.maxBytes) {
      return Promise.reject(new HoldlineError('message_too_large', `message of ${bytes} bytes exceeds maxBufferedBytes (${this.#window.maxBytes})`));
    }
    return this.#window.acquire(bytes, () => {
      const p: Pending = { num: this.#nextNum++, data, bytes };
      this.#pending.push(p);
      this.#sent++;
      this.#forward(p);
      return Promise.resolve();
    });
  }

  /**
   * Close this tab's handle. Waits briefly (up to 2 s) for its messages to be
   * confirmed; a leader then closes its session and lets another tab lead.
   */
  async close(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#state === 'idle') {
      this.#setState('closed');
      return;
    }
    const wasOpen = this.#state === 'open';
    this.#setState('closing');
    if (wasOpen && this.#pending.length > 0 && !this.#lead) await this.#waitConfirmed(this.#closeWaitMs);
    await this.#closeTab({ code: 'client_closed', message: 'closed by the client' }, new HoldlineError('client_closed', 'the client was closed'));
  }

  // ---- this tab ----

  #setState(next: ClientState): void {
    if (this.#state === next) return;
    this.#state = next;
    this.emit('state', next);
  }

  #setRole(role: TabRole): void {
    if (this.#role === role) return;
    this.#role = role;
    this.emit('role', role);
  }

  #post(m: BusMessage): void {
    try {
      this.#bus?.postMessage(m);
    } catch {
      // A closed channel (the tab is going away): the lock release tells the others.
    }
  }

  /** Hand a message of this tab to the leader (ourselves, or over the channel). */
  #forward(p: Pending): void {
    const base = this.#base();
    if (this.#lead && !this.#lead.done) this.#accept(this.#lead, this.tabId, p.num, base, p.data);
    else if (!this.#lead) this.#post({ k: 'send', from: this.tabId, num: p.num, base, data: p.data });
  }

  /** Every message number up to this one is done (confirmed or refused). */
  #base(): number {
    return this.#pending.length > 0 ? this.#pending[0].num - 1 : this.#nextNum - 1;
  }

  #resendPending(): void {
    for (const p of this.#pending) this.#forward(p);
  }

  #confirmed(upTo: number): void {
    let freed = 0;
    while (this.#pending.length > 0 && this.#pending[0].num <= upTo) freed += (this.#pending.shift() as Pending).bytes;
    if (freed > 0 || this.#pending.length === 0) this.#window.release(freed);
    if (this.#pending.length === 0) this.#drained?.();
  }

  #refused(num: number, error: WireError): void {
    const i = this.#pending.findIndex((p) => p.num === num);
    if (i < 0) return;
    const [p] = this.#pending.splice(i, 1);
    this.#window.release(p.bytes);
    this.emit('error', fromWireError(error));
    if (this.#pending.length === 0) this.#drained?.();
  }

  #drained: (() => void) | undefined;

  #waitConfirmed(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#drained = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#drained = done;
    });
  }

  #onBus(m: BusMessage): void {
    if (this.#state === 'closed') return;
    switch (m.k) {
      case 'hello':
        if (this.#lead && !this.#lead.done) this.#broadcastStatus(this.#lead, this.#status.state === 'open' ? { type: 'open', resumed: false } : undefined);
        return;
      case 'send':
        if (this.#lead && !this.#lead.done) this.#accept(this.#lead, m.from, m.num, m.base, m.data);
        return;
      case 'bye':
        this.#lead?.tabs.delete(m.from);
        return;
      default:
        break;
    }
    // From a leader.
    if (this.#lead || this.#retired.has(m.epoch)) return;
    if (m.epoch !== this.#epoch) {
      if (m.k === 'leaving') return;
      if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
      this.#epoch = m.epoch;
      this.#resendPending();
    }
    switch (m.k) {
      case 'status':
        this.#applyStatus(m.status, m.event);
        return;
      case 'confirm':
        if (m.to === this.tabId) this.#confirmed(m.upTo);
        return;
      case 'refuse':
        if (m.to === this.tabId) this.#refused(m.num, m.error);
        return;
      case 'resync':
        if (m.to === this.tabId) this.#resendPending();
        return;
      case 'msg':
        this.#deliver(m.data);
        return;
      case 'leaving':
        this.#retired.add(m.epoch);
        this.#epoch = undefined;
        this.#leaderGone();
        return;
    }
  }

  #deliver(data: Payload): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#received++;
    this.emit('message', data);
  }

  /** The leader went away; until another announces itself, this tab is reconnecting. */
  #leaderGone(): void {
    this.#enterReconnecting('the tab that held the session went away; another takes over');
  }

  /** open -> reconnecting, with the event HoldlineClient would emit. */
  #enterReconnecting(why: string): void {
    if (this.#state !== 'open') return;
    this.#setState('reconnecting');
    this.emit('reconnecting', { attempt: 0, delayMs: 0, error: new HoldlineError('session_lost', why) });
  }

  /** Apply the leader's status, and the event that came with it, to this tab. */
  #applyStatus(status: SharedStatus, event: RelayedEvent | undefined): void {
    this.#status = status;
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'idle') return;
    const sid = status.sessionId;
    if (event?.type === 'close') {
      void this.#closeTab(event.reason, new HoldlineError('session_closed', event.reason.message));
      return;
    }
    if (event?.type === 'error') {
      this.emit('error', fromWireError(event.error));
      return;
    }
    if (event?.type === 'reset') {
      const previous = this.#known ?? event.previousSessionId;
      this.#known = event.sessionId;
      this.emit('reset', { previousSessionId: previous, sessionId: event.sessionId, reason: event.reason, lost: [] });
      return;
    }
    if (event?.type === 'reconnecting') {
      if (this.#state === 'open' || this.#known !== undefined) this.#setState('reconnecting');
      this.emit('reconnecting', { attempt: event.attempt, delayMs: event.delayMs, error: fromWireError(event.error) });
      return;
    }
    if (status.state === 'open' && sid !== undefined) {
      if (this.#known !== undefined && this.#known !== sid) {
        // A new session without a reset from the client: another tab took over.
        const previous = this.#known;
        this.#known = sid;
        this.emit('reset', {
          previousSessionId: previous,
          sessionId: sid,
          reason: { code: 'transport_error', message: 'the tab that held the session went away; another tab opened a new one' },
          lost: [],
        });
      }
      if (this.#state !== 'open') {
        const resumed = this.#known === sid && this.#state === 'reconnecting' && event?.type === 'open' && event.resumed;
        this.#known = sid;
        this.#setState('open');
        this.emit('open', { sessionId: sid, resumed });
        this.#connectSettle?.resolve();
        this.#connectSettle = undefined;
      }
      return;
    }
    if (status.state === 'connecting' || status.state === 'reconnecting') {
      this.#enterReconnecting(status.state === 'connecting' ? 'another tab takes over the session' : 'the session is reconnecting');
    }
  }

  /** End this tab's handle: stop leading (or following), report what was not confirmed. */
  async #closeTab(reason: CloseReason, error: HoldlineError): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state !== 'closing') this.#setState('closing');
    const lead = this.#lead;
    if (lead) await this.#abdicate(lead);
    this.#lifetime.abort();
    this.#post({ k: 'bye', from: this.tabId });
    if (typeof removeEventListener === 'function') removeEventListener('pagehide', this.#onPageHide);
    const bus = this.#bus;
    this.#bus = undefined;
    if (bus) {
      bus.onmessage = null;
      bus.close();
    }
    const unacked = this.#pending.splice(0).map((p) => p.data);
    this.#window.fail(error);
    this.#setRole('none');
    this.#setState('closed');
    this.#connectSettle?.reject(error);
    this.#connectSettle = undefined;
    this.emit('close', reason, unacked);
  }

  #pageHide(): void {
    const lead = this.#lead;
    if (!lead) {
      // What this tab sent and the leader accepted still goes out; it can forget us.
      this.#post({ k: 'bye', from: this.tabId });
      return;
    }
    if (lead.done) return;
    // The tab is going away: confirm what is confirmed, and tell the others now
    // rather than when the lock is released.
    this.#checkAcks(lead);
    this.#post({ k: 'leaving', epoch: lead.epoch });
  }

  // ---- leading ----

  async #becomeLeader(release: () => void): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      release();
      return;
    }
    if (this.#epoch !== undefined) this.#retired.add(this.#epoch);
    const epoch = randomId();
    this.#epoch = epoch;
    let client: TabCoreClient;
    try {
      client = this.#createClient(this.url, this.#clientOptions);
    } catch (e) {
      release();
      void this.#closeTab({ code: 'transport_error', message: String(e) }, e instanceof HoldlineError ? e : new HoldlineError('invalid_argument', String(e)));
      return;
    }
    const lead: Leadership = {
      epoch, client, tabs: new Map(), queue: [], flight: [], admitted: 0, sessionLost: false, done: false, released: false,
      ackTimer: undefined, statusTimer: undefined, release,
    };
    this.#lead = lead;
    this.#setRole('leader');
    this.#enterReconnecting('this tab takes over the session');

    client.on('open', (e: OpenEvent) => this.#leaderEvent(lead, { type: 'open', resumed: e.resumed }));
    client.on('reconnecting', (e: ReconnectingEvent) => {
      if (e.error.code === 'session_lost') lead.sessionLost = true;
      this.#leaderEvent(lead, { type: 'reconnecting', attempt: e.attempt, delayMs: e.delayMs, error: toWireError(e.error) });
    });
    client.on('reset', (e: ResetEvent) => {
      this.#sessionReplaced(lead, e.lost.length);
      this.#leaderEvent(lead, { type: 'reset', previousSessionId: e.previousSessionId, sessionId: e.sessionId, reason: e.reason });
    });
    client.on('message', (data: Payload) => {
      if (lead.done) return;
      this.#post({ k: 'msg', epoch, data });
      this.#deliver(data);
      this.#checkAcks(lead);
    });
    client.on('error', (err: HoldlineError) => {
      if (!lead.done) this.#leaderEvent(lead, { type: 'error', error: toWireError(err) });
    });
    client.on('close', (reason: CloseReason, unacked: Payload[]) => {
      this.#settleOnClose(lead, unacked.length);
      if (lead.done) return; // this tab abdicated: the others carry on
      this.#leaderEvent(lead, { type: 'close', reason });
      this.#stopLeading(lead);
    });

    // Announce: followers re-send what they have not had confirmed.
    this.#broadcastStatus(lead, undefined);
    lead.statusTimer = setInterval(() => this.#broadcastStatus(lead, undefined), 1_000);
    this.#resendPending();
    client.connect().catch(() => undefined); // failures arrive as 'close'
  }

  #currentStatus(lead: Leadership): SharedStatus {
    const c = lead.client;
    return { state: c.state, sessionId: c.sessionId, transport: 'polling', stats: { ...c.stats } };
  }

  #broadcastStatus(lead: Leadership, event: RelayedEvent | undefined): void {
    if (lead.done) return;
    const status = this.#currentStatus(lead);
    this.#status = status;
    this.#post(event === undefined ? { k: 'status', epoch: lead.epoch, status } : { k: 'status', epoch: lead.epoch, status, event });
  }

  /** Something happened to the leader's client: tell every tab, this one included. */
  #leaderEvent(lead: Leadership, event: RelayedEvent): void {
    if (lead.done) return;
    this.#broadcastStatus(lead, event);
    this.#applyStatus(this.#status, event);
    if (event.type === 'open' || event.type === 'reset') this.#pump(lead);
  }

  /** A message from tab `from`, numbered `num`; everything up to `base` is done on that tab. */
  #accept(lead: Leadership, from: string, num: number, base: number, data: Payload): void {
    let t = lead.tabs.get(from);
    if (!t) {
      t = { next: base + 1, resyncAsked: false };
      lead.tabs.set(from, t);
    }
    if (num < t.next) return; // a repeat
    if (num > t.next) {
      if (base + 1 === num) {
        // The tab had earlier ones refused or confirmed meanwhile: move on.
        t.next = num;
      } else {
        if (!t.resyncAsked) {
          t.resyncAsked = true;
          if (from === this.tabId) this.#resendPending();
          else this.#post({ k: 'resync', epoch: lead.epoch, to: from });
        }
        return;
      }
    }
    t.next = num + 1;
    t.resyncAsked = false;
    lead.queue.push({ tab: from, num, data, bytes: payloadBytes(data), end: 0 });
    this.#pump(lead);
  }

  /** Hand queued messages to the client while they fit in its buffer (so send() never waits). */
  #pump(lead: Leadership): void {
    const c = lead.client;
    if (lead.done || lead.sessionLost || c.state === 'closing' || c.state === 'closed') return;
    while (lead.queue.length > 0) {
      const e = lead.queue[0];
      if (e.bytes > this.#window.maxBytes) {
        // The client would wait for room forever: refuse it (a tab with other options sent it).
        lead.queue.shift();
        this.#refuse(lead, e, new HoldlineError('message_too_large', `message of ${e.bytes} bytes exceeds maxBufferedBytes`));
        continue;
      }
      const buffered = c.bufferedAmount;
      if (buffered > 0 && buffered + e.bytes > this.#window.maxBytes) break;
      lead.queue.shift();
      lead.admitted += e.bytes;
      e.end = lead.admitted;
      lead.flight.push(e);
      c.send(e.data).catch((err: unknown) => this.#sendFailed(lead, e, err));
    }
    if (lead.flight.length > 0 && lead.ackTimer === undefined) {
      lead.ackTimer = setInterval(() => this.#checkAcks(lead), this.#ackCheckMs);
    }
  }

  /** The client refused a message outright (too large): it never counted it. */
  #sendFailed(lead: Leadership, e: Entry, err: unknown): void {
    const code = err instanceof HoldlineError ? err.code : 'internal_error';
    if (code !== 'message_too_large' && code !== 'invalid_argument') return; // closing: 'close' settles it
    const i = lead.flight.indexOf(e);
    if (i < 0) return;
    lead.flight.splice(i, 1);
    lead.admitted -= e.bytes;
    for (let j = i; j < lead.flight.length; j++) lead.flight[j].end -= e.bytes;
    this.#refuse(lead, e, err);
  }

  #refuse(lead: Leadership, e: Entry, err: unknown): void {
    const error = toWireError(err);
    if (e.tab === this.tabId) this.#refused(e.num, error);
    else this.#post({ k: 'refuse', epoch: lead.epoch, to: e.tab, num: e.num, error });
  }

  /**
   * Confirm what the server acknowledged. Acks are cumulative and the client
   * releases acknowledged bytes from bufferedAmount, so `admitted -
   * bufferedAmount` bytes of our messages, from the first, are acknowledged.
   * An empty message is confirmed once a later non-empty one is.
   */
  #checkAcks(lead: Leadership): void {
    if (lead.sessionLost || lead.flight.length === 0) {
      this.#stopAckTimer(lead);
      return;
    }
    const acked = lead.admitted - lead.client.bufferedAmount;
    let n = 0;
    while (n < lead.flight.length) {
      const e = lead.flight[n];
      if (e.bytes > 0 ? acked >= e.end : acked > e.end) n++;
      else break;
    }
    if (n > 0) this.#confirmEntries(lead, lead.flight.splice(0, n));
    if (lead.flight.length === 0) this.#stopAckTimer(lead);
    this.#pump(lead);
  }

  #stopAckTimer(lead: Leadership): void {
    if (lead.ackTimer !== undefined) clearInterval(lead.ackTimer);
    lead.ackTimer = undefined;
  }

  #confirmEntries(lead: Leadership, entries: Entry[]): void {
    const upTo = new Map<string, number>();
    for (const e of entries) upTo.set(e.tab, Math.max(upTo.get(e.tab) ?? 0, e.num));
    for (const [tab, n] of upTo) {
      if (tab === this.tabId) this.#confirmed(n);
      else this.#post({ k: 'confirm', epoch: lead.epoch, to: tab, upTo: n });
    }
  }

  /**
   * The client's session was replaced; `lost` of our messages (the last ones
   * handed over) were never acknowledged by the old one. The others were:
   * confirm them. Re-send the lost ones first on the new session.
   */
  #sessionReplaced(lead: Leadership, lost: number): void {
    const keep = Math.min(lost, lead.flight.length);
    const acked = lead.flight.splice(0, lead.flight.length - keep);
    if (acked.length > 0) this.#confirmEntries(lead, acked);
    lead.queue = [...lead.flight, ...lead.queue];
    lead.flight = [];
    lead.admitted = 0;
    lead.sessionLost = false;
    // #leaderEvent pumps them into the new session (before it opens, so they go first).
  }

  /** The client closed: of what was handed over, all but the `unacked` tail was acknowledged. */
  #settleOnClose(lead: Leadership, unacked: number): void {
    if (lead.sessionLost) return; // the client cannot tell which were acknowledged: keep them all
    const keep = Math.min(unacked, lead.flight.length);
    const acked = lead.flight.splice(0, lead.flight.length - keep);
    if (acked.length > 0) this.#confirmEntries(lead, acked);
  }

  #stopLeading(lead: Leadership): void {
    if (lead.released) return;
    lead.released = true;
    lead.done = true;
    this.#stopAckTimer(lead);
    if (lead.statusTimer !== undefined) clearInterval(lead.statusTimer);
    lead.statusTimer = undefined;
    if (this.#lead === lead) this.#lead = undefined;
    lead.release();
  }

  /**
   * This tab stops leading. Its client drains (up to 2 s) and closes its
   * session; its 'close' confirms what the server acknowledged meanwhile.
   * Messages arriving meanwhile are not relayed (the others will get a new
   * session) and sends from followers stay with them for the next leader.
   * Then the others are told, and the lock is released.
   */
  async #abdicate(lead: Leadership): Promise<void> {
    if (lead.done) {
      this.#stopLeading(lead);
      return;
    }
    this.#checkAcks(lead);
    lead.done = true;
    await lead.client.close().catch(() => undefined);
    this.#post({ k: 'leaving', epoch: lead.epoch });
    this.#stopLeading(lead);
  }
}
