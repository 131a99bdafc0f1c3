/**
 * What the HoldlineTabClient tests (client/tab-channel-*.test.ts) share:
 * waiting for a condition, tabs of one origin (one channel, one lock manager)
 * closed after each test, and a scripted client whose acks and session losses
 * the test drives, for the cases a real server cannot produce on demand.
 * Kept here, not under client/, because client/ compiles into dist.
 */
import assert from 'node:assert/strict';
import { HoldlineTabClient, type TabCoreClient } from '../../client/tab-channel.js';
import { HoldlineError, TypedEmitter, payloadBytes, type CloseReason, type Payload } from '../../shared/index.js';
import type { ClientEvents, ClientState, ClientStats } from '../../client/holdline-client.js';
import { FakeLocks } from './fake-locks.js';

let channelSeq = 0;
/** The tabs to close after the test: those tabGroup() made, and any a test adds. */
export const toClose: HoldlineTabClient[] = [];

/** Closes the tabs in `toClose` (register it with afterEach, and after for a describe's own). */
export async function closeTabs(): Promise<void> {
  await Promise.all(toClose.splice(0).map((t) => t.close()));
}

/** A maker of tabs that share one channel and one lock manager, as the tabs of one origin do. */
export function tabGroup(url: string, createClient: (url: string) => TabCoreClient, locks = new FakeLocks()): () => HoldlineTabClient {
  const channelName = `test-${process.pid}-${++channelSeq}`;
  return () => {
    const t = new HoldlineTabClient(url, { channelName, locks, createClient: (u) => createClient(u) });
    toClose.push(t);
    return t;
  };
}

/** The first element of `list`, failing the test if there is none. */
export function firstOf<T>(list: readonly T[], what: string): T {
  const value = list[0];
  assert.ok(value !== undefined, `no ${what}`);
  return value;
}

/** A client whose acks and session losses the test drives. */
export class ScriptedClient extends TypedEmitter<ClientEvents> implements TabCoreClient {
  state: ClientState = 'idle';
  sessionId: string | undefined;
  /** What the "server" got, in order. */
  readonly delivered: Payload[];
  /** Handed over, not acknowledged. */
  outstanding: Payload[] = [];
  /** Larger messages are refused by send(), as HoldlineClient does past the server's maxMessageBytes. */
  readonly maxMessageBytes: number;
  #n = 0;
  /** Messages acknowledged since this client was created (what 'ack' reports). */
  #acked = 0;

  constructor(delivered: Payload[], maxMessageBytes = Infinity) {
    super();
    this.delivered = delivered;
    this.maxMessageBytes = maxMessageBytes;
  }

  get bufferedAmount(): number {
    return this.outstanding.reduce((n, p) => n + payloadBytes(p), 0);
  }

  get stats(): Readonly<ClientStats> {
    return { polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: this.#acked, reconnects: 0, resets: 0, holdMs: 0, rttMs: 1 };
  }

  async connect(): Promise<void> {
    this.sessionId = `s${++this.#n}`;
    this.state = 'open';
    this.emit('open', { sessionId: this.sessionId, resumed: false });
  }

  async send(data: Payload): Promise<void> {
    const bytes = payloadBytes(data);
    if (bytes > this.maxMessageBytes) throw new HoldlineError('message_too_large', `message of ${bytes} bytes exceeds the server's maxMessageBytes`);
    this.outstanding.push(data);
  }

  /** The server received the first `n` outstanding (and, if `ack`, acknowledged them). */
  receive(n: number, ack: boolean): void {
    this.delivered.push(...this.outstanding.slice(0, n));
    if (!ack) return;
    this.outstanding = this.outstanding.slice(n);
    this.#acked += n;
    this.emit('ack', this.#acked);
  }

  /** The session is gone: the outstanding are lost (the first `received` of them had reached the server). */
  loseSession(reason: CloseReason): void {
    const lost = this.outstanding;
    this.outstanding = [];
    const previous = this.sessionId ?? '';
    this.state = 'reconnecting';
    this.emit('reconnecting', { attempt: 0, delayMs: 0, error: new HoldlineError('session_lost', 'lost') });
    this.sessionId = `s${++this.#n}`;
    this.emit('reset', { previousSessionId: previous, sessionId: this.sessionId, reason, lost });
    this.state = 'open';
    this.emit('open', { sessionId: this.sessionId, resumed: false });
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const unacked = this.outstanding;
    this.outstanding = [];
    this.emit('close', { code: 'client_closed', message: 'closed' }, unacked);
  }
}
