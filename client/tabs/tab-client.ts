/**
 * HoldlineTabClient, the public class: it checks its options
 * (tab-options.ts), runs the election (whoever holds the Web Locks lock
 * leads; until then a tab follows), routes what arrives on the
 * BroadcastChannel to its Leader or Follower, and has the shared session's
 * status turned into this tab's state and events (tab-state.ts). The
 * semantics are described in ../tab-channel.ts.
 */
import { HoldlineError, TypedEmitter, isPayload, payloadBytes, type CloseReason, type Payload } from '../../shared/index.js';
import type { ClientState, ClientStats, TransportName } from '../holdline-client.js';
import type { HoldlineClientOptions } from '../options.js';
import { Follower, type FollowerHost } from './follower.js';
import { Leader, type LeaderHost } from './leader.js';
import { Mirror } from './mirror.js';
import { fromWireError, isBusMessage, randomId, type BusMessage } from './messages.js';
import { Outgoing, type Pending } from './outgoing.js';
import { resolveTabOptions } from './tab-options.js';
import { TabState } from './tab-state.js';
import type { HoldlineTabClientOptions, TabBus, TabClientEvents, TabClientStats, TabCoreClient, TabLockManager, TabRole } from './types.js';

export class HoldlineTabClient extends TypedEmitter<TabClientEvents> {
  readonly url: string;
  /** This tab's id on the channel. */
  readonly tabId = randomId();
  readonly channelName: string;
  readonly #clientOptions: HoldlineClientOptions;
  readonly #locks: TabLockManager | undefined;
  readonly #createBus: (name: string) => TabBus;
  readonly #createClient: (url: string, options: HoldlineClientOptions) => TabCoreClient;
  readonly #connectTimeoutMs: number;
  readonly #closeWaitMs: number;

  /** This tab's state, and the shared session as this tab knows it. */
  readonly #view: TabState;
  #role: TabRole = 'none';
  #bus: TabBus | undefined;
  /** Aborts a lock request still waiting, and every wait of this tab. */
  readonly #lifetime = new AbortController();
  #connectPromise: Promise<void> | undefined;
  #connectSettle: { resolve: () => void; reject: (e: HoldlineError) => void } | undefined;

  readonly #outgoing: Outgoing;
  #received = 0;
  /** The shared session as this tab knows it, to resume if it leads next (tabs/mirror.ts). */
  readonly #mirror = new Mirror();
  #gapTimer: ReturnType<typeof setTimeout> | undefined;

  /** What this tab does as a follower, and which leaderships are over. */
  readonly #follower: Follower;
  /** Set while this tab leads. */
  #lead: Leader | undefined;
  /** This tab, as its Leader and Follower see it. */
  readonly #host: LeaderHost & FollowerHost;
  readonly #onPageHide = (ev: Event) => this.#pageHide((ev as { persisted?: boolean }).persisted === true);

  constructor(url: string, options: HoldlineTabClientOptions = {}) {
    super();
    const o = resolveTabOptions(url, options);
    this.url = o.url;
    this.channelName = o.channelName;
    this.#clientOptions = o.clientOptions;
    this.#locks = o.locks;
    this.#createBus = o.createBus;
    this.#createClient = o.createClient;
    this.#connectTimeoutMs = o.connectTimeoutMs;
    this.#closeWaitMs = o.closeWaitMs;
    this.#outgoing = new Outgoing(o.maxBufferedBytes, o.sendTimeoutMs);
    this.#view = new TabState({
      emit: (event, ...args) => this.emit(event, ...args),
      mirror: this.#mirror,
      close: (reason, error) => void this.#closeTab(reason, error),
      opened: () => {
        this.#connectSettle?.resolve();
        this.#connectSettle = undefined;
      },
    });
    this.#host = {
      tabId: this.tabId,
      maxBytes: this.#outgoing.maxBytes,
      post: (m) => this.#post(m),
      confirmed: (upTo) => this.#outgoing.confirmed(upTo),
      refused: (num, error) => {
        if (this.#outgoing.refused(num)) this.emit('error', fromWireError(error));
      },
      resendPending: () => this.#resendPending(),
      lost: (nums, upTo) => {
        const all = upTo === undefined ? nums : [...nums, ...this.#outgoing.pending.filter((p) => p.num <= upTo).map((p) => p.num)];
        for (const n of all) {
          const data = this.#outgoing.lost(n);
          if (data !== undefined) this.#view.lost(data);
        }
      },
      abandoned: () => this.#mirror.abandoned(),
      deliver: (data, seq) => this.#arrive(data, seq),
      resumable: () => this.#mirror.resumable(),
      mirrorSync: (sync) => this.#mirror.sync(sync),
      mirrorOut: (seq, e) => this.#mirror.out(seq, e),
      mirrorAcked: (upTo) => this.#mirror.acked(upTo),
      newLeader: () => {
        this.#view.newLeader();
        // So that it knows this tab shares its session (and detaches rather than closes it when it goes).
        this.#post({ k: 'hello', from: this.tabId });
      },
      statusChanged: (status) => this.#view.statusChanged(status),
      applyStatus: (status, event) => this.#view.apply(status, event),
      leaderGone: () => this.#view.enterReconnecting('the tab that held the session went away; another takes over'),
      ended: (leader) => {
        if (this.#lead === leader) this.#lead = undefined;
      },
    };
    this.#follower = new Follower(this.#host);
  }

  get state(): ClientState {
    return this.#view.state;
  }

  /** 'leader' when this tab runs the session, 'follower' when another tab does. */
  get role(): TabRole {
    return this.#role;
  }

  /** Whether tabs share a session here (Web Locks and BroadcastChannel available). */
  get shared(): boolean {
    return this.#locks !== undefined;
  }

  /**
   * On the leading tab: how many other tabs of this browser share its
   * session (they take it over if this tab goes). 0 on a follower.
   */
  get otherTabs(): number {
    const lead = this.#lead;
    return lead && !lead.done ? lead.followers : 0;
  }

  get sessionId(): string | undefined {
    return this.#view.known ?? this.#view.status.sessionId;
  }

  get transport(): TransportName {
    return this.#view.status.transport;
  }

  /** The shared session's stats: live on the leader, as of the last status (at most 1 s old) on a follower. */
  #sharedStats(): ClientStats {
    const lead = this.#lead;
    return lead && !lead.done ? lead.stats : this.#view.status.stats;
  }

  /** Bytes this tab sent that the server has not acknowledged yet (as confirmed by the leader). */
  get bufferedAmount(): number {
    return this.#outgoing.buffered;
  }

  /** The shared session's stats (from the leader), with this tab's own message counts. */
  get stats(): Readonly<TabClientStats> {
    return {
      ...this.#sharedStats(),
      messagesSent: this.#outgoing.queued,
      messagesReceived: this.#received,
      unconfirmed: this.#outgoing.pending.length,
    };
  }

  /** Join the tabs' shared session (leading it if no tab does). Resolves once it is open. */
  connect(): Promise<void> {
    if (this.#connectPromise) return this.#connectPromise;
    if (this.#view.state !== 'idle') {
      return Promise.reject(new HoldlineError('invalid_state', `connect() needs state idle, not ${this.#view.state}`));
    }
    this.#connectPromise = new Promise<void>((resolve, reject) => {
      this.#connectSettle = { resolve, reject };
    });
    this.#view.set('connecting');
    const timer = setTimeout(() => {
      if (this.#view.state === 'connecting') {
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
    this.#seekLead(this.#locks);
    return this.#connectPromise;
  }

  /** The election: whoever holds the lock leads, until its tab closes, crashes, abdicates or goes away. */
  #seekLead(locks: TabLockManager): void {
    locks
      .request(`holdline-leader:${this.channelName}`, { signal: this.#lifetime.signal }, () => {
        if (this.#lifetime.signal.aborted) return Promise.resolve();
        return new Promise<void>((release) => {
          void this.#becomeLeader(release);
        });
      })
      .catch(() => undefined); // aborted while waiting: this tab closed
  }

  /** Queue a message. Resolves once queued (waits while bufferedAmount is over maxBufferedBytes). */
  send(data: Payload): Promise<void> {
    if (this.#view.state === 'closing' || this.#view.state === 'closed') {
      return Promise.reject(new HoldlineError('client_closed', `send() on a ${this.#view.state} client`));
    }
    if (!isPayload(data)) {
      return Promise.reject(new HoldlineError('invalid_argument', `send() takes a string or Uint8Array, got ${typeof data}`));
    }
    const bytes = payloadBytes(data);
    const max = this.#outgoing.maxBytes;
    if (bytes > max) {
      return Promise.reject(new HoldlineError('message_too_large', `message of ${bytes} bytes exceeds maxBufferedBytes (${max})`));
    }
    return this.#outgoing.add(data, bytes, (p) => this.#forward(p));
  }

  /**
   * Close this tab's handle. Waits briefly (up to 2 s) for its messages to be
   * confirmed; a leader then closes its session and lets another tab lead.
   */
  async close(): Promise<void> {
    if (this.#view.state === 'closing' || this.#view.state === 'closed') return;
    if (this.#view.state === 'idle') {
      this.#view.set('closed');
      return;
    }
    const wasOpen = this.#view.state === 'open';
    this.#view.set('closing');
    if (wasOpen && this.#outgoing.pending.length > 0 && !this.#lead) await this.#outgoing.waitConfirmed(this.#closeWaitMs);
    await this.#closeTab({ code: 'client_closed', message: 'closed by the client' }, new HoldlineError('client_closed', 'the client was closed'));
  }

  // ---- this tab ----

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
    const base = this.#outgoing.base;
    const lead = this.#lead;
    if (lead && !lead.done) lead.accept(this.tabId, p.num, base, p.data);
    else if (!lead) this.#post({ k: 'send', from: this.tabId, num: p.num, base, data: p.data });
  }

  #resendPending(): void {
    for (const p of this.#outgoing.pending) this.#forward(p);
  }

  #onBus(m: BusMessage): void {
    if (this.#view.state === 'closed') return;
    const lead = this.#lead;
    switch (m.k) {
      case 'hello':
        if (lead && !lead.done) lead.hello(m.from);
        return;
      case 'send':
        if (lead && !lead.done) lead.accept(m.from, m.num, m.base, m.data);
        return;
      case 'bye':
        lead?.forget(m.from);
        return;
      default:
        // From a leader: a leading tab follows nobody.
        if (!lead) this.#follower.receive(m);
    }
  }

  /** Incoming message `seq` of the session: in order, once (tabs/mirror.ts); a gap that does not fill within 2 s is skipped. */
  #arrive(data: Payload, seq: number): void {
    for (const d of this.#mirror.arrive(seq, data)) this.#deliver(d);
    if (this.#mirror.waiting > 0 && this.#gapTimer === undefined) {
      this.#gapTimer = setTimeout(() => {
        this.#gapTimer = undefined;
        for (const d of this.#mirror.skipGap()) this.#deliver(d);
      }, 2_000);
    } else if (this.#mirror.waiting === 0 && this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
  }

  #deliver(data: Payload): void {
    if (this.#view.state === 'closing' || this.#view.state === 'closed') return;
    this.#received++;
    this.emit('message', data);
  }

  /** End this tab's handle: stop leading (or following), report what was not confirmed. */
  async #closeTab(reason: CloseReason, error: HoldlineError): Promise<void> {
    if (this.#view.state === 'closed') return;
    if (this.#view.state !== 'closing') this.#view.set('closing');
    const lead = this.#lead;
    if (lead) await lead.abdicate();
    this.#lifetime.abort();
    this.#post({ k: 'bye', from: this.tabId });
    if (typeof removeEventListener === 'function') removeEventListener('pagehide', this.#onPageHide);
    const bus = this.#bus;
    this.#bus = undefined;
    if (bus) {
      bus.onmessage = null;
      bus.close();
    }
    const unacked = this.#outgoing.abandon(error);
    this.#setRole('none');
    this.#view.set('closed');
    this.#connectSettle?.reject(error);
    this.#connectSettle = undefined;
    this.emit('close', reason, unacked);
  }

  /** `persisted`: the page goes into the back/forward cache, and may come back. */
  #pageHide(persisted: boolean): void {
    const lead = this.#lead;
    if (!lead) {
      // What this tab sent and the leader accepted still goes out; it can forget us.
      this.#post({ k: 'bye', from: this.tabId });
      return;
    }
    // The tab is going away: with other tabs on the session, another leads it from now on.
    if (!lead.leaving() || this.#view.state === 'closing' || this.#view.state === 'closed') return;
    this.#setRole('follower');
    this.#post({ k: 'bye', from: this.tabId });
    // Back from the cache, this tab follows, and is in line to lead again.
    if (persisted && this.#locks) this.#seekLead(this.#locks);
  }

  // ---- leading ----

  async #becomeLeader(release: () => void): Promise<void> {
    // The last leader's last posts may still be on their way: take them in first.
    await this.#follower.untilLeft(500);
    if (this.#view.state === 'closing' || this.#view.state === 'closed') {
      release();
      return;
    }
    const epoch = randomId();
    this.#follower.lead(epoch);
    let client: TabCoreClient;
    try {
      client = this.#createClient(this.url, this.#clientOptions);
    } catch (e) {
      release();
      void this.#closeTab({ code: 'transport_error', message: String(e) }, e instanceof HoldlineError ? e : new HoldlineError('invalid_argument', String(e)));
      return;
    }
    const lead = new Leader(this.#host, epoch, client, release);
    this.#lead = lead;
    this.#setRole('leader');
    // 'reconnecting' before 'leader': a page showing the latest event ends on who holds the session now.
    this.#view.enterReconnecting('this tab takes over the session');
    const known = this.#view.known;
    if (known !== undefined) this.emit('leader', { self: true, sessionId: this.#mirror.sessionId ?? known });
    lead.start();
  }
}
