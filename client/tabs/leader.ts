/**
 * What the leading tab does, for one leadership (one lock hold): it runs the
 * one HoldlineClient, takes every tab's messages in order (its own too),
 * hands them to the client as they fit, confirms them to their tabs as the
 * client reports acks, and relays to every tab what the client receives and
 * what happens to it. Then it hands over or closes, tells the others, and
 * releases the lock.
 *
 * Continuity (../tab-channel.ts, SEMANTICS): every tab mirrors the session
 * (mirror.ts) from what the leader posts: 'sync' (credential, positions,
 * unacknowledged messages), each incoming message with its number ('msg'),
 * each message handed to the client ('out') until the server acknowledges
 * it ('acked'). A new leader resumes the SAME session from its mirror, and
 * takes no message again under a new number that the stream already took
 * (tab-numbers.ts). A leader that stops while other tabs remain leaves the
 * session open for them (detach, no /close); the last tab closes it.
 */
import { HoldlineError, payloadBytes, type CloseReason, type Payload } from '../../shared/index.js';
import type { ClientStats, OpenEvent, ReconnectingEvent, ResetEvent } from '../holdline-client.js';
import { toWireError, type BusMessage, type RelayedEvent, type SharedStatus, type WireError } from './messages.js';
import type { MirrorEntry, MirrorSync, Resumable } from './mirror.js';
import { TabNumbers } from './tab-numbers.js';
import { TabReplies } from './tab-replies.js';
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
  /** This tab's messages `nums`, and any it holds numbered up to `upTo`, are lost with a session that is gone. */
  lost(nums: readonly number[], upTo?: number): void;
  /** What the session this tab's mirror follows took of each tab, when a new session replaces it (Mirror.abandoned). */
  abandoned(): ReadonlyMap<string, number> | undefined;
  /** Hand every unconfirmed message of this tab to the leader (again). */
  resendPending(): void;
  /** Message `seq` of the session's stream from the server, for this tab's listeners. */
  deliver(data: Payload, seq: number): void;
  /** The periodic status, as broadcast. */
  statusChanged(status: SharedStatus): void;
  /** A status broadcast with an event: replay it on this tab. */
  applyStatus(status: SharedStatus, event: RelayedEvent): void;
  /** This leadership is over and the lock released. */
  ended(leader: Leader): void;
  /** The session this tab's mirror can resume, with the tab and number of each unacknowledged message. */
  resumable(): Resumable | undefined;
  /** Keep this tab's mirror in step (it may lead again after a bfcache restore; cheap). */
  mirrorSync(sync: MirrorSync): void;
}

/** A message the leader accepted from some tab (itself included). */
interface Entry {
  tab: string;
  num: number;
  data: Payload;
  bytes: number;
  /** Its place in the client's send order (1: the first message the client took); 0 until handed over. */
  seq: number;
  /** Its number in the session's outbound stream (0: unknown). */
  stream: number;
}

export class Leader {
  /** Names this leadership in everything it posts. */
  readonly epoch: string;
  readonly #client: TabCoreClient;
  readonly #host: LeaderHost;
  /** Resolves the lock callback: the lock is released. */
  readonly #release: () => void;
  /** Per tab: the next message number expected, and the highest the current session's stream took. */
  readonly #numbers = new TabNumbers();
  /** What each tab is told of its messages. */
  readonly #replies: TabReplies;
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
  /** Tabs that said hello (or sent), less those that said bye: whether the session must outlive this tab. */
  readonly #followers = new Set<string>();
  /** Incoming messages of the current session relayed so far: the next one is number #inbound + 1. */
  #inbound = 0;
  /** Whether 'sync' was posted for the client's current session. */
  #synced: string | undefined;

  constructor(host: LeaderHost, epoch: string, client: TabCoreClient, release: () => void) {
    this.#host = host;
    this.epoch = epoch;
    this.#replies = new TabReplies(host, epoch);
    this.#client = client;
    this.#release = release;
    this.#status = this.#currentStatus();
  }

  /** true once this leadership relays nothing more (abdicating or over). */
  get done(): boolean {
    return this.#done;
  }

  /** The other tabs this leader's session serves (tabs that said hello or sent, until they say bye). */
  get followers(): number {
    return this.#followers.size;
  }

  /** The shared session's stats, live. */
  get stats(): ClientStats {
    return { ...this.#client.stats };
  }

  /** Listen to the client, announce this leadership (followers re-send what is unconfirmed), and connect. */
  start(): void {
    const client = this.#client;
    client.on('open', (e: OpenEvent) => {
      this.#postSync();
      this.#event({ type: 'open', resumed: e.resumed });
    });
    client.on('reconnecting', (e: ReconnectingEvent) => {
      if (e.error.code === 'session_lost') this.#sessionLost = true;
      this.#event({ type: 'reconnecting', attempt: e.attempt, delayMs: e.delayMs, error: toWireError(e.error) });
    });
    client.on('reset', (e: ResetEvent) => {
      this.#inbound = 0;
      this.#synced = undefined;
      this.#numbers.newStream();
      this.#sessionReplaced(e.lost.length);
      this.#event({ type: 'reset', previousSessionId: e.previousSessionId, sessionId: e.sessionId, reason: e.reason });
    });
    client.on('ack', (total: number) => this.#acked(total));
    // Every tab shows the transport the shared session is on, as it changes.
    client.on('transport', () => this.#broadcast(undefined));
    client.on('message', (data: Payload) => {
      if (this.#done) return;
      const seq = ++this.#inbound;
      this.#host.post({ k: 'msg', epoch: this.epoch, data, seq });
      this.#host.deliver(data, seq);
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
    const resumable = client.resume ? this.#host.resumable() : undefined;
    if (resumable && client.resume) {
      // The same session goes on: what the last leader's client had not had
      // acknowledged is this client's first messages, in the same order.
      for (const o of resumable.owners) {
        this.#flight.push({ tab: o.tab, num: o.num, data: o.data, bytes: payloadBytes(o.data), seq: ++this.#handed, stream: 0 });
      }
      this.#flight.forEach((e, i) => (e.stream = resumable.state.outboundAcked + 1 + i));
      this.#inbound = resumable.state.inboundAck;
      this.#numbers.resume(resumable, (tab, upTo) => this.#replies.confirm(tab, upTo));
      // Resumed first: what the tabs hand over next is numbered after the resumed messages.
      client.resume(resumable.state).catch(() => undefined); // failures arrive as 'close'
      this.#host.resendPending();
      return;
    }
    // A new session: what the last one took is lost with it, never sent again.
    const abandoned = this.#host.abandoned();
    if (abandoned) this.#numbers.abandon(abandoned, (tab, upTo) => this.#replies.lose(tab, [], upTo));
    this.#host.resendPending();
    client.connect().catch(() => undefined); // failures arrive as 'close'
  }

  /** Tab `from` joined: tell it how things stand. */
  hello(from: string): void {
    this.#followers.add(from);
    if (this.#synced !== undefined) this.#postSync();
    this.#broadcast(this.#status.state === 'open' ? { type: 'open', resumed: false } : undefined);
  }

  /** A tab closed its handle. */
  forget(tab: string): void {
    this.#numbers.forget(tab);
    this.#followers.delete(tab);
  }

  /** Every tab's mirror starts over from the session as it stands. */
  #postSync(): void {
    const state = this.#client.exportState?.();
    if (this.#done || !state) return;
    const entries: MirrorEntry[] = [];
    const bySeq = new Map(this.#flight.filter((e) => e.stream > 0).map((e) => [e.stream, e]));
    for (let i = 0; i < state.outbound.length; i++) {
      const e = bySeq.get(state.outboundAcked + 1 + i);
      // A message not handed by this leadership (refused meanwhile): no mirror can resume this session exactly.
      if (!e) return;
      entries.push({ tab: e.tab, num: e.num, data: e.data });
    }
    const sync: MirrorSync = {
      url: state.url,
      limits: state.limits,
      inboundAck: this.#inbound,
      outboundAcked: state.outboundAcked,
      entries,
      taken: this.#numbers.takenByTab(),
    };
    this.#synced = state.limits.sid;
    this.#host.mirrorSync(sync);
    this.#host.post({ k: 'sync', epoch: this.epoch, sync });
  }

  /** A message from tab `from`, numbered `num`; everything up to `base` is done on that tab. */
  accept(from: string, num: number, base: number, data: Payload): void {
    if (from !== this.#host.tabId) this.#followers.add(from);
    const admission = this.#numbers.admit(from, num, base);
    if (admission === 'resync') {
      if (from === this.#host.tabId) this.#host.resendPending();
      else this.#host.post({ k: 'resync', epoch: this.epoch, to: from });
    }
    if (admission !== 'take') return; // a repeat, or after a gap (the tab was asked to send again)
    this.#queue.push({ tab: from, num, data, bytes: payloadBytes(data), seq: 0, stream: 0 });
    this.#pump();
  }

  /**
   * The tab is going away (pagehide): with other tabs on the session, hand
   * over now (a client running on until the page is gone would acknowledge
   * messages whose relay can reach the others after the lock); else only say so.
   * Returns whether this leadership is over (handed over).
   */
  leaving(): boolean {
    if (this.#done) return false;
    if (this.#shared()) this.#handOver();
    else this.#host.post({ k: 'leaving', epoch: this.epoch });
    return this.#done;
  }

  /**
   * This tab stops leading: with other tabs on the session, it hands over;
   * else its client drains (up to 2 s; acks meanwhile are still confirmed)
   * and closes the session, the others are told, and the lock is released.
   */
  async abdicate(): Promise<void> {
    if (this.#done) {
      this.#stop();
      return;
    }
    if (this.#shared()) {
      this.#handOver();
      return;
    }
    this.#done = true;
    await this.#client.close().catch(() => undefined);
    this.#host.post({ k: 'leaving', epoch: this.epoch });
    this.#stop();
  }

  /** Other tabs go on with this session, and the client can leave it open for them. */
  #shared(): boolean {
    return this.#followers.size > 0 && this.#client.detach !== undefined;
  }

  /** End this leadership, the session left open: the client stops first, so 'leaving' (which the next leader waits for) is the last post. */
  #handOver(): void {
    this.#done = true;
    this.#client.detach?.();
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
        this.#replies.refuse(e.tab, e.num, new HoldlineError('message_too_large', `message of ${e.bytes} bytes exceeds maxBufferedBytes`));
        continue;
      }
      const buffered = c.bufferedAmount;
      if (buffered > 0 && buffered + e.bytes > max) break;
      this.#queue.shift();
      e.seq = ++this.#handed;
      this.#flight.push(e);
      const before = c.outboundSeq ?? 0;
      c.send(e.data).catch((err: unknown) => this.#sendFailed(e, err));
      // Queued at once (it fitted): its number in the stream is known now, and every tab's mirror gets it.
      // (A message the client refused at once took no number: the last one is another message's.)
      const stream = c.outboundSeq ?? 0;
      if (stream > before && !this.#sessionLost) {
        e.stream = stream;
        this.#numbers.took(e.tab, e.num);
        this.#host.post({ k: 'out', epoch: this.epoch, seq: stream, tab: e.tab, num: e.num, data: e.data });
      }
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
    if (n > 0) {
      const settledEntries = this.#flight.splice(0, n);
      this.#replies.confirmAll(settledEntries);
      const upTo = settledEntries[settledEntries.length - 1]?.stream ?? 0;
      if (upTo > 0 && !this.#done) this.#host.post({ k: 'acked', epoch: this.epoch, upTo });
    }
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
    this.#replies.refuse(e.tab, e.num, err);
  }

  /**
   * The client's session was replaced and the `lost` oldest of our messages
   * in flight (those before them were acknowledged, and are confirmed) never
   * will be: each tab is told which of its messages are lost (before the
   * 'reset' that lists them), as HoldlineClient's 'reset' does. Messages not
   * handed to the old session yet go on in the new one.
   */
  #sessionReplaced(lost: number): void {
    const gone = this.#flight.splice(0, Math.min(lost, this.#flight.length));
    this.#lost += lost;
    const byTab = new Map<string, number[]>();
    for (const e of gone) {
      const nums = byTab.get(e.tab);
      if (nums) nums.push(e.num);
      else byTab.set(e.tab, [e.num]);
    }
    for (const [tab, nums] of byTab) this.#replies.lose(tab, nums);
    this.#sessionLost = false;
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
