/**
 * The default store: everything in this process's memory. Zero set-up, one
 * node. Sessions live in a Map (never a plain object) keyed by session id;
 * each holds the shared reliable-stream halves.
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

/** Read-only stand-ins for a stream with nothing in it yet (reads never change them). */
const NONE_OUT = new Outbox();
const NONE_IN = new Inbox();

/**
 * One session's state: its token and its two streams. Its id is the key it is
 * kept under, and an open attempt id is kept aside only until the session is
 * first used: an idle server holds one Entry per session.
 */
class Entry {
  readonly token: string;
  /** NONE_OUT / NONE_IN until the first message: idle sessions never get their own. */
  outbox: Outbox = NONE_OUT;
  inbox: Inbox = NONE_IN;

  constructor(token: string) {
    this.token = token;
  }
}

export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, Entry>();
  /** attempt -> sid and sid -> attempt, for sessions not used yet (see forgetAttempt). */
  readonly #attempts = new Map<string, string>();
  readonly #attemptOf = new Map<string, string>();

  #entry(sid: string): Entry {
    const e = this.#sessions.get(sid);
    if (!e) throw wireError('session_unknown');
    return e;
  }

  #record(sid: string, e: Entry): StoredSession {
    return { sid, token: e.token, attempt: this.#attemptOf.get(sid) ?? '' };
  }

  async create(session: StoredSession): Promise<void> {
    this.#sessions.set(session.sid, new Entry(session.token));
    if (session.attempt !== '') {
      this.#attempts.set(session.attempt, session.sid);
      this.#attemptOf.set(session.sid, session.attempt);
    }
  }

  async get(sid: string): Promise<StoredSession | undefined> {
    const e = this.#sessions.get(sid);
    return e && this.#record(sid, e);
  }

  async findByAttempt(attempt: string): Promise<StoredSession | undefined> {
    const sid = this.#attempts.get(attempt);
    const e = sid === undefined ? undefined : this.#sessions.get(sid);
    return e && this.#record(sid as string, e);
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
    const e = this.#sessions.get(sid);
    if (!e) return [];
    this.#sessions.delete(sid);
    this.#dropAttempt(sid);
    return e.outbox === NONE_OUT ? [] : e.outbox.takeAll();
  }

  async enqueue(sid: string, entries: readonly OutboxEntry[]): Promise<EnqueueResult> {
    const e = this.#entry(sid);
    if (e.outbox === NONE_OUT) e.outbox = new Outbox();
    const { outbox } = e;
    for (const en of entries) outbox.pushEntry(en);
    return { lastSeq: outbox.lastSeq, bufferedBytes: outbox.bufferedBytes };
  }

  async ackOutbound(sid: string, ack: number): Promise<AckOutboundResult> {
    const { outbox } = this.#entry(sid);
    const result = outbox.ack(ack);
    return { result, bufferedBytes: outbox.bufferedBytes, lastSeq: outbox.lastSeq };
  }

  async readOutbound(sid: string, maxWireBytes: number, from?: number): Promise<ReadOutboundResult> {
    const { outbox, inbox } = this.#entry(sid);
    const b = outbox.batch(maxWireBytes, Infinity, from);
    // Field by field: object spread costs about a microsecond a call.
    return { seq: b.seq, count: b.count, m: b.m, wireBytes: b.wireBytes, inboundAck: inbox.ack };
  }

  async pendingOutbound(sid: string, from?: number): Promise<number> {
    const { outbox } = this.#entry(sid);
    return from === undefined ? outbox.pending : outbox.pendingFrom(from);
  }

  async acceptInbound(sid: string, seq: number, count: number): Promise<AcceptInboundResult> {
    const e = this.#entry(sid);
    if (e.inbox === NONE_IN) e.inbox = new Inbox();
    const { inbox } = e;
    const verdict = inbox.accept(seq, count);
    return verdict.ok ? { ok: true, skip: verdict.skip, ack: inbox.ack } : { ok: false, expected: verdict.expected, ack: inbox.ack };
  }
}
