/**
 * What the leading tab does, for one leadership (one lock hold): it runs the
 * one HoldlineClient, takes every tab's messages in order (its own too),
 * hands them to the client as they fit, confirms them to their tabs as the
 * client reports acks, and relays to every tab what the client receives and
 * what happens to it. Then it drains, tells the others, and releases the lock.
 */
import { HoldlineError, payloadBytes, type CloseReason, type Payload } from '../../shared/index.js';
import type { ClientStats, OpenEvent, ReconnectingEvent, ResetEvent } from '../holdline-client.js';
import { toWireError, type BusMessage, type RelayedEvent, type SharedStatus, type WireError } from './messages.js';
import type { TabCoreClient } from './types.js';

/** What a leader needs from its own tab. */
export interface LeaderHost {
  readonly tabId: string;
  /** This tab's maxBufferedBytes: a larger message (sent by a tab with other options) is refused. */
  readonly maxBytes: number;
  post(m: BusMessage): void;
  /** The server acknowledged this tab's messages up to `upTo`. */
  confirmed(upTo: number): void;
  /** The client refused this tab's message `num`. */
  refused(num: number, error: WireError): void;
  /** Hand every unconfirmed message of this tab to the leader (again). */
  resendPending(): void;
  /** A message from the server, for this tab's listeners. */
  deliver(data: Payload): void;
  /** The periodic status, as broadcast. */
  statusChanged(status: SharedStatus): void;
  /** A status broadcast with an event: replay it on this tab. */
  applyStatus(status: SharedStatus, event: RelayedEvent): void;
  /** This leadership is over and the lock released. */
  ended(leader: Leader): void;
}

/** A message the leader accepted from some tab (itself included). */
interface Entry {
  tab: string;
  num: number;
  data: Payload;
  bytes: number;
  /** Its place in the client's send order (1: the first message the client took); 0 until handed over. */
  seq: number;
}

export class Leader {
  /** Names this leadership in everything it posts. */
  readonly epoch: string;
  readonly #client: TabCoreClient;
  readonly #host: LeaderHost;
  /** Resolves the lock callback: the lock is released. */
  readonly #release: () => void;
  /** Per tab: the next message number expected, and whether a resync was asked. */
  readonly #tabs = new Map<string, { next: number; resyncAsked: boolean }>();
  /** Accepted, not yet handed to the client. */
  #queue: Entry[] = [];
  /** Handed to the client, neither acknowledged nor lost yet, in send order. */
  #flight: Entry[] = [];
  /** Messages the client took: the next one handed over is number `#handed + 1` in its send order. */
  #handed = 0;
  /** Messages listed as lost by the client's 'reset' events: never acknowledged, yet counted in its send order. */
  #lost = 0;
  /** Between the client's 'session_lost' reconnecting and its 'reset': hand nothing over. */
  #sessionLost = false;
  /** true once the shared session ended or this tab abdicates: relay nothing more. */
  #done = false;
  /** The lock was released. */
  #released = false;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  /** What was last broadcast. */
  #status: SharedStatus;

  constructor(host: LeaderHost, epoch: string, client: TabCoreClient, release: () => void) {
    this.#host = host;
    this.epoch = epoch;
    this.#client = client;
    this.#release = release;
    this.#status = this.#currentStatus();
  }

  /** true once this leadership relays nothing more (abdicating or over). */
  get done(): boolean {
    return this.#done;
  }

  /** The shared session's stats, live. */
  get stats(): ClientStats {
    return { ...this.#client.stats };
  }

  /** Listen to the client, announce this leadership (followers re-send what is unconfirmed), and connect. */
  start(): void {
    const client = this.#client;
    client.on('open', (e: OpenEvent) => this.#event({ type: 'open', resumed: e.resumed }));
    client.on('reconnecting', (e: ReconnectingEvent) => {
      if (e.error.code === 'session_lost') this.#sessionLost = true;
      this.#event({ type: 'reconnecting', attempt: e.attempt, delayMs: e.delayMs, error: toWireError(e.error) });
    });
    client.on('reset', (e: ResetEvent) => {
      this.#sessionReplaced(e.lost.length);
      this.#event({ type: 'reset', previousSessionId: e.previousSessionId, sessionId: e.sessionId, reason: e.reason });
    });
    client.on('ack', (total: number) => this.#acked(total));
    // Every tab shows the transport the shared session is on, as it changes.
    client.on('transport', () => this.#broadcast(undefined));
    client.on('message', (data: Payload) => {
      if (this.#done) return;
      this.#host.post({ k: 'msg', epoch: this.epoch, data });
      this.#host.deliver(data);
    });
    client.on('error', (err: HoldlineError) => {
      if (!this.#done) this.#event({ type: 'error', error: toWireError(err) });
    });
    client.on('close', (reason: CloseReason) => {
      // Every acknowledgement came as 'ack': the messages the client lists as
      // unacknowledged stay with their tabs for the next leader.
      if (this.#done) return; // this tab abdicated: the others carry on
      this.#event({ type: 'close', reason });
      this.#stop();
    });

    this.#broadcast(undefined);
    this.#statusTimer = setInterval(() => this.#broadcast(undefined), 1_000);
    this.#host.resendPending();
    client.connect().catch(() => undefined); // failures arrive as 'close'
  }

  /** A tab joined: tell it how things stand. */
  hello(): void {
    this.#broadcast(this.#status.state === 'open' ? { type: 'open', resumed: false } : undefined);
  }

  /** A tab closed its handle. */
  forget(tab: string): void {
    this.#tabs.delete(tab);
  }

  /** A message from tab `from`, numbered `num`; everything up to `base` is done on that tab. */
  accept(from: string, num: number, base: number, data: Payload): void {
    let t = this.#tabs.get(from);
    if (!t) {
      t = { next: base + 1, resyncAsked: false };
      this.#tabs.set(from, t);
    }
    if (num < t.next) return; // a repeat
    if (num > t.next) {
      if (base + 1 === num) {
        // The tab had earlier ones refused or confirmed meanwhile: move on.
        t.next = num;
      } else {
        if (!t.resyncAsked) {
          t.resyncAsked = true;
          if (from === this.#host.tabId) this.#host.resendPending();
          else this.#host.post({ k: 'resync', epoch: this.epoch, to: from });
        }
        return;
      }
    }
    t.next = num + 1;
    t.resyncAsked = false;
    this.#queue.push({ tab: from, num, data, bytes: payloadBytes(data), seq: 0 });
    this.#pump();
  }

  /** The tab is going away (pagehide): tell the others now rather than when the lock is released. */
  leaving(): void {
    if (this.#done) return;
    this.#host.post({ k: 'leaving', epoch: this.epoch });
  }

  /**
   * This tab stops leading. Its client drains (up to 2 s) and closes its
   * session; acks arriving meanwhile are still confirmed. Messages arriving
   * meanwhile are not relayed (the others will get a new session) and sends
   * from followers stay with them for the next leader. Then the others are
   * told, and the lock is released.
   */
  async abdicate(): Promise<void> {
    if (this.#done) {
      this.#stop();
      return;
    }
    this.#done = true;
    await this.#client.close().catch(() => undefined);
    this.#host.post({ k: 'leaving', epoch: this.epoch });
    this.#stop();
  }

  #currentStatus(): SharedStatus {
    const c = this.#client;
    return { state: c.state, sessionId: c.sessionId, transport: c.transport ?? 'polling', stats: { ...c.stats } };
  }

  #broadcast(event: RelayedEvent | undefined): void {
    if (this.#done) return;
    const status = this.#currentStatus();
    this.#status = status;
    this.#host.statusChanged(status);
    this.#host.post(event === undefined ? { k: 'status', epoch: this.epoch, status } : { k: 'status', epoch: this.epoch, status, event });
  }

  /** Something happened to the client: tell every tab, this one included. */
  #event(event: RelayedEvent): void {
    if (this.#done) return;
    this.#broadcast(event);
    this.#host.applyStatus(this.#status, event);
    if (event.type === 'open' || event.type === 'reset') this.#pump();
  }

  /** Hand queued messages to the client while they fit in its buffer (so send() never waits). */
  #pump(): void {
    const c = this.#client;
    if (this.#done || this.#sessionLost || c.state === 'closing' || c.state === 'closed') return;
    const max = this.#host.maxBytes;
    for (let e = this.#queue[0]; e !== undefined; e = this.#queue[0]) {
      if (e.bytes > max) {
        // The client would wait for room forever: refuse it (a tab with other options sent it).
        this.#queue.shift();
        this.#refuse(e, new HoldlineError('message_too_large', `message of ${e.bytes} bytes exceeds maxBufferedBytes`));
        continue;
      }
      const buffered = c.bufferedAmount;
      if (buffered > 0 && buffered + e.bytes > max) break;
      this.#queue.shift();
      e.seq = ++this.#handed;
      this.#flight.push(e);
      c.send(e.data).catch((err: unknown) => this.#sendFailed(e, err));
    }
  }

  /**
   * The client acknowledged `total` messages since it was created. With the
   * `#lost` ones of its resets, that many of its send order are settled: the
   * messages in flight up to there are acknowledged.
   */
  #acked(total: number): void {
    if (this.#released) return;
    const settled = total + this.#lost;
    const firstUnsettled = this.#flight.findIndex((e) => e.seq > settled);
    const n = firstUnsettled < 0 ? this.#flight.length : firstUnsettled;
    if (n > 0) this.#confirm(this.#flight.splice(0, n));
    this.#pump();
  }

  /**
   * The client refused a message outright (too large for the server, say):
   * it never took it, so the later ones move up in its send order.
   */
  #sendFailed(e: Entry, err: unknown): void {
    const code = err instanceof HoldlineError ? err.code : 'internal_error';
    if (code !== 'message_too_large' && code !== 'invalid_argument') return; // closing: nothing more is acknowledged
    const i = this.#flight.indexOf(e);
    if (i < 0) return;
    this.#flight.splice(i, 1);
    this.#handed--;
    for (const later of this.#flight.slice(i)) later.seq--;
    this.#refuse(e, err);
  }

  #refuse(e: Entry, err: unknown): void {
    const error = toWireError(err);
    if (e.tab === this.#host.tabId) this.#host.refused(e.num, error);
    else this.#host.post({ k: 'refuse', epoch: this.epoch, to: e.tab, num: e.num, error });
  }

  #confirm(entries: Entry[]): void {
    const upTo = new Map<string, number>();
    for (const e of entries) upTo.set(e.tab, Math.max(upTo.get(e.tab) ?? 0, e.num));
    for (const [tab, n] of upTo) {
      if (tab === this.#host.tabId) this.#host.confirmed(n);
      else this.#host.post({ k: 'confirm', epoch: this.epoch, to: tab, upTo: n });
    }
  }

  /**
   * The client's session was replaced and the `lost` oldest of our messages
   * in flight (those before them were acknowledged, and are confirmed) never
   * will be. They go out again first on the new session, as new messages in
   * the client's send order.
   */
  #sessionReplaced(lost: number): void {
    const again = this.#flight.splice(0, Math.min(lost, this.#flight.length));
    this.#lost += lost;
    for (const e of again) e.seq = 0;
    this.#queue = [...again, ...this.#queue];
    this.#sessionLost = false;
    // #event pumps them into the new session (before it opens, so they go first).
  }

  #stop(): void {
    if (this.#released) return;
    this.#released = true;
    this.#done = true;
    if (this.#statusTimer !== undefined) clearInterval(this.#statusTimer);
    this.#statusTimer = undefined;
    this.#host.ended(this);
    this.#release();
  }
}
