/**
 * A server's figures (`hl.metrics()`), and its debug log lines: each place
 * that counts something calls one method here, which also logs it (see
 * shared/log.ts). Counters only grow; gauges (sessions, held polls, acks
 * pending) are read from the node when a snapshot is taken. Nothing here
 * keeps a token or a payload, only their counts and sizes.
 */
import type { ServerResponse } from 'node:http';
import { isRpc, utf8Length, type CloseReason, type Payload, type StreamItem } from '../shared/index.js';
import { describeError, log } from '../shared/log.js';
import { closeReactionOf } from '../shared/reaction.js';

/** Upper bounds (ms) of the poll-cut age histogram's buckets; the last bucket is everything above. */
export const POLL_CUT_BUCKETS_MS: readonly number[] = [1_000, 5_000, 10_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000];

export interface PollCutAges {
  count: number;
  /** Sum of all ages, ms. */
  sumMs: number;
  /** Cumulative counts: `count` of cuts at most `leMs` old (the last has leMs Infinity). */
  buckets: Array<{ leMs: number; count: number }>;
}

export interface ServerMetricsSnapshot {
  /** Open sessions this node owns. */
  sessions: number;
  sessionsOpened: number;
  sessionsClosed: number;
  /** Closed sessions by close reason code (`client_closed`, `idle_timeout`, ...). */
  closeReasons: Record<string, number>;
  /** Polls held on this node now. */
  heldPolls: number;
  /** WebSockets open on this node now. */
  websockets: number;
  /** Messages (and their payload bytes) from clients, delivered to sessions here. */
  messagesReceived: number;
  bytesReceived: number;
  /** Messages (and their payload bytes) queued to clients by sessions here. */
  messagesSent: number;
  bytesSent: number;
  /** Messages sent and not yet acknowledged by their clients, and their payload bytes. */
  acksPending: number;
  bytesPending: number;
  /** Sessions that ended in a way their client answers with a new session and a `reset` (idle_timeout, server_shutdown...). */
  resets: number;
  /** Error answers to requests and errors reported through `error`, by code. */
  errors: Record<string, number>;
  /** Held polls whose client went away before their answer (a proxy or NAT cut them), by how long they had been held. */
  pollCuts: PollCutAges;
}

/** What a snapshot reads off the node at the moment it is taken. */
export interface MetricGauges {
  sessions: number;
  heldPolls: number;
  websockets: number;
  acksPending: number;
  bytesPending: number;
}

/** The code an error answer was written with (set by writeError, read by answered()). */
const ERROR_CODE = Symbol('holdline.errorCode');
type Tagged = ServerResponse & { [ERROR_CODE]?: string };

/** writeError's note of the code it answers with, for the metrics. */
export function tagErrorAnswer(res: ServerResponse, code: string): void {
  (res as Tagged)[ERROR_CODE] = code;
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** A request or reply frame counts as a message of its frame's size. */
function payloadBytes(p: Payload | StreamItem): number {
  if (typeof p === 'string') return utf8Length(p);
  return isRpc(p) ? utf8Length(p.r) : p.byteLength;
}

export class ServerMetrics {
  #opened = 0;
  #closed = 0;
  #resets = 0;
  #messagesReceived = 0;
  #bytesReceived = 0;
  #messagesSent = 0;
  #bytesSent = 0;
  readonly #closeReasons = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #cutCounts: number[] = new Array<number>(POLL_CUT_BUCKETS_MS.length + 1).fill(0);
  #cutSumMs = 0;
  readonly #cutListeners = new Set<(ageMs: number) => void>();

  sessionOpened(sid: string, resumed: boolean): void {
    this.#opened++;
    log.server('session %s opened%s', sid, resumed ? ' (taken over from another node)' : '');
  }

  sessionClosed(sid: string, reason: CloseReason): void {
    this.#closed++;
    bump(this.#closeReasons, reason.code);
    const reset = closeReactionOf(reason.code) === 'new_session';
    if (reset) this.#resets++;
    log.server('session %s closed: %s%s', sid, reason.code, reset ? ' (the client resets)' : '');
  }

  /** Inbound messages delivered (the first `skip` were duplicates). */
  received(messages: readonly StreamItem[], skip: number): void {
    for (let i = skip; i < messages.length; i++) {
      const m = messages[i];
      if (m === undefined) continue;
      this.#messagesReceived++;
      this.#bytesReceived += payloadBytes(m);
    }
  }

  /** One outbound message of `bytes` payload bytes queued. */
  sent(bytes: number): void {
    this.#messagesSent++;
    this.#bytesSent += bytes;
  }

  /** An error reported through the server's `error` event. */
  reported(e: unknown): void {
    const code = (e as { code?: unknown } | undefined)?.code;
    bump(this.#errors, typeof code === 'string' ? code : 'internal_error');
    log.server('error: %s', describeError(e));
  }

  /** A request was handled: count its error answer, if it got one. */
  answered(res: ServerResponse): void {
    const code = (res as Tagged)[ERROR_CODE];
    if (code === undefined) return;
    bump(this.#errors, code);
    log.server('answered %d %s', res.statusCode, code);
  }

  /** A held poll's client went away `ageMs` after the poll came. */
  pollCut(sid: string, ageMs: number): void {
    let i = POLL_CUT_BUCKETS_MS.findIndex((le) => ageMs <= le);
    if (i < 0) i = POLL_CUT_BUCKETS_MS.length;
    this.#cutCounts[i] = (this.#cutCounts[i] ?? 0) + 1;
    this.#cutSumMs += ageMs;
    log.polling('poll of %s cut after %d ms held', sid, ageMs);
    for (const fn of this.#cutListeners) fn(ageMs);
  }

  /** Call `fn` with the age of every poll cut from now on (the Prometheus histogram); returns an unsubscribe. */
  onPollCut(fn: (ageMs: number) => void): () => void {
    this.#cutListeners.add(fn);
    return () => this.#cutListeners.delete(fn);
  }

  snapshot(g: MetricGauges): ServerMetricsSnapshot {
    let cumulative = 0;
    const buckets = this.#cutCounts.map((n, i) => ({ leMs: POLL_CUT_BUCKETS_MS[i] ?? Infinity, count: (cumulative += n) }));
    return {
      sessions: g.sessions,
      sessionsOpened: this.#opened,
      sessionsClosed: this.#closed,
      closeReasons: Object.fromEntries(this.#closeReasons),
      heldPolls: g.heldPolls,
      websockets: g.websockets,
      messagesReceived: this.#messagesReceived,
      bytesReceived: this.#bytesReceived,
      messagesSent: this.#messagesSent,
      bytesSent: this.#bytesSent,
      acksPending: g.acksPending,
      bytesPending: g.bytesPending,
      resets: this.#resets,
      errors: Object.fromEntries(this.#errors),
      pollCuts: { count: cumulative, sumMs: this.#cutSumMs, buckets },
    };
  }
}

/** The parts of a node a snapshot reads its gauges from. */
export interface GaugeSource {
  readonly size: number;
  sessions(): Iterable<{ readonly pendingAcks: number; readonly bufferedAmount: number }>;
  readonly polling: { readonly held: number };
  readonly websocket: { readonly size: number } | undefined;
}

export function gaugesOf(node: GaugeSource): MetricGauges {
  let acksPending = 0;
  let bytesPending = 0;
  for (const s of node.sessions()) {
    acksPending += s.pendingAcks;
    bytesPending += s.bufferedAmount;
  }
  return { sessions: node.size, heldPolls: node.polling.held, websockets: node.websocket?.size ?? 0, acksPending, bytesPending };
}
