/**
 * The default store: everything in this process's memory. Zero set-up, one
 * node. Sessions live in a Map (never a plain object) keyed by session id;
 * each holds its token and, once it has sent or received, the shared
 * reliable-stream halves.
 */
import { Inbox, Outbox, wireError, type OutboxEntry } from '../shared/index.js';
import type {
  AcceptInboundResult,
  AckOutboundResult,
  EnqueueResult,
  ReadOutboundResult,
  SessionStore,
  StoredSession,
} from './store.js';

/** Read-only stand-ins for the streams of a session that has none yet (reads never change them). */
const NONE_OUT = new Outbox();
const NONE_IN = new Inbox();
const NO_STREAMS = { outbox: NONE_OUT, inbox: NONE_IN };

/**
 * A session's streams, made on its first message. Its id is the key it is
 * kept under; its token stays the Map's value until then, and a field here.
 */
class Streams {
  readonly token: string;
  outbox: Outbox = NONE_OUT;
  inbox: Inbox = NONE_IN;

  constructor(token: string) {
    this.token = token;
  }
}

/** What the store keeps per session: its token while it has sent nothing either way (an idle server holds one per session), then its Streams. */
type Slot = string | Streams;

const tokenOf = (slot: Slot): string => (typeof slot === 'string' ? slot : slot.token);

export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, Slot>();
  /** attempt -> sid and sid -> attempt, for sessions not used yet (see forgetAttempt). */
  readonly #attempts = new Map<string, string>();
  readonly #attemptOf = new Map<string, string>();

  #slot(sid: string): Slot {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) throw wireError('session_unknown');
    return slot;
  }

  /** The session's streams for reading: the empty stand-ins while it has none. */
  #read(sid: string): { outbox: Outbox; inbox: Inbox } {
    const slot = this.#slot(sid);
    return typeof slot === 'string' ? NO_STREAMS : slot;
  }

  /** The session's streams for writing: made on first use. */
  #streams(sid: string): Streams {
    const slot = this.#slot(sid);
    if (typeof slot !== 'string') return slot;
    const streams = new Streams(slot);
    this.#sessions.set(sid, streams);
    return streams;
  }

  #record(sid: string, slot: Slot): StoredSession {
    return { sid, token: tokenOf(slot), attempt: this.#attemptOf.get(sid) ?? '' };
  }

  async create(session: StoredSession): Promise<void> {
    this.#sessions.set(session.sid, session.token);
    if (session.attempt !== '') {
      this.#attempts.set(session.attempt, session.sid);
      this.#attemptOf.set(session.sid, session.attempt);
    }
  }

  async get(sid: string): Promise<StoredSession | undefined> {
    const slot = this.#sessions.get(sid);
    return slot === undefined ? undefined : this.#record(sid, slot);
  }

  async findByAttempt(attempt: string): Promise<StoredSession | undefined> {
    const sid = this.#attempts.get(attempt);
    const slot = sid === undefined ? undefined : this.#sessions.get(sid);
    return slot === undefined ? undefined : this.#record(sid as string, slot);
  }

  async forgetAttempt(sid: string): Promise<void> {
    this.#dropAttempt(sid);
  }

  #dropAttempt(sid: string): void {
    const attempt = this.#attemptOf.get(sid);
    if (attempt === undefined) return;
    this.#attemptOf.delete(sid);
    this.#attempts.delete(attempt);
  }

  async count(): Promise<number> {
    return this.#sessions.size;
  }

  async delete(sid: string): Promise<OutboxEntry[]> {
    const slot = this.#sessions.get(sid);
    if (slot === undefined) return [];
    this.#sessions.delete(sid);
    this.#dropAttempt(sid);
    return typeof slot === 'string' || slot.outbox === NONE_OUT ? [] : slot.outbox.takeAll();
  }

  async enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult> {
    const streams = this.#streams(sid);
    if (streams.outbox === NONE_OUT) streams.outbox = new Outbox();
    const { outbox } = streams;
    for (const en of entries) outbox.pushEntry(en);
    return { lastSeq: outbox.lastSeq, bufferedBytes: outbox.bufferedBytes };
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const { outbox } = this.#read(sid);
    const result = outbox.ack(ack);
    return { result, bufferedBytes: outbox.bufferedBytes, lastSeq: outbox.lastSeq };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number): Promise<ReadOutboundResult> {
    const { outbox, inbox } = this.#read(sid);
    const b = outbox.batch(maxWireBytes, Infinity, from);
    // Field by field: object spread costs about a microsecond a call.
    return { seq: b.seq, count: b.count, m: b.m, wireBytes: b.wireBytes, inboundAck: inbox.ack };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const { outbox } = this.#read(sid);
    return from === undefined ? outbox.pending : outbox.pendingFrom(from);
  }

  async acceptInbound(sid: string, seq: number, count: number): Promise<AcceptInboundResult> {
    const streams = this.#streams(sid);
    if (streams.inbox === NONE_IN) streams.inbox = new Inbox();
    const { inbox } = streams;
    const verdict = inbox.accept(seq, count);
    return verdict.ok ? { ok: true, skip: verdict.skip, ack: inbox.ack } : { ok: false, expected: verdict.expected, ack: inbox.ack };
  }
}
