/**
 * A session's sending side (server/session.ts): its SendState, and the
 * functions over it that refuse a message, admit it to the send window or
 * have it wait for room, commit what was sent in a turn to the store, count
 * the client's acks, and fail what still waits when the session ends.
 *
 * With a store in this process (enqueueNow), the first message sent in a
 * turn is committed at once, and its transport may write it before send()
 * returns; messages sent after it in the same turn (all of them, with a
 * store across the network) are committed together at the end of the
 * turn's microtasks and share one promise. `send()` applies backpressure:
 * past maxQueuedBytes it waits, in order, for the client's acks to make
 * room, and rejects with `queue_full` after sendTimeoutMs or with
 * `session_closed` when the session ends.
 *
 * These are functions taking the session's state, not methods of an object
 * of their own: an idle server holds one Session per client, and an idle
 * session holds no SendState at all (it is made on the first send or ack,
 * never for a message refused outright).
 */
import { HoldlineError, SendWindow, Unsent, type OutboxEntry, type RpcPeer } from '../shared/index.js';
import type { ResolvedOptions } from './options.js';
import type { Session } from './session.js';
import type { SessionHost } from './session-host.js';
import type { EnqueueResult, ReadOutboundResult, SessionStore } from './store.js';

/**
 * What a queued message costs beyond its payload (its entry, its slot in the
 * queue), counted against maxQueuedBytes: a flood of empty messages is
 * bounded too.
 */
export const MESSAGE_OVERHEAD = 64;

/** Send-side state, made on a session's first send (or ack): an idle session holds none. */
export interface SendState {
  /** Backpressure over bytes not yet acknowledged (payload + MESSAGE_OVERHEAD each). */
  window: SendWindow;
  /** Messages admitted to the window and not yet acknowledged. */
  pending: number;
  /** Messages waiting for room, in order: reported as unacked if the session closes first. */
  waiting: OutboxEntry[];
  /** Their bytes (payload + overhead): at most maxQueuedBytes wait. */
  waitingBytes: number;
  /** The tally of bytes not yet written. */
  unsent: Unsent;
  /**
   * The messages this node committed and the client has not acknowledged,
   * as pairs from `unackedHead` on: number, then window cost. An ack frees
   * exactly the costs of the messages it covers (takeAck), whatever order
   * the store's answers and other nodes' acks come in.
   */
  unacked: number[];
  unackedHead: number;
  /** Sent this turn, not yet committed to the store. */
  uncommitted: OutboxEntry[] | undefined;
  /** The commit of `uncommitted`, due at the end of this turn. */
  commit: Promise<void> | undefined;
  /** A send of this turn was committed at once: the turn's others wait for its end (commitNow()). */
  turnCommitted: boolean;
  /** A commit at once is under way: a 'flush' it brings waits for a microtask, never inside send(). */
  inCommit: boolean;
  /** Commits to the store so far (a batch read ahead is stale after another). */
  commits: number;
  /** The client's highest ack. */
  clientAck: number;
  /** Requests both ways, once the session has made or answered one. */
  rpc: RpcPeer | undefined;
}

/** A session's send state, as its first send (or ack) makes it. */
export function newSendState(options: ResolvedOptions): SendState {
  const { maxQueuedBytes, sendTimeoutMs } = options;
  return {
    window: new SendWindow(maxQueuedBytes, sendTimeoutMs),
    pending: 0,
    waiting: [],
    waitingBytes: 0,
    unsent: new Unsent(),
    unacked: [],
    unackedHead: 0,
    uncommitted: undefined,
    commit: undefined,
    turnCommitted: false,
    inCommit: false,
    commits: 0,
    clientAck: 0,
    rpc: undefined,
  };
}

/** What a message takes of the window: its payload and MESSAGE_OVERHEAD; a message as large as the whole queue still goes, alone. */
function costOf(entry: OutboxEntry, options: ResolvedOptions): number {
  return Math.min(entry.bytes + MESSAGE_OVERHEAD, options.maxQueuedBytes);
}

/** A send the session refuses outright (it is closed, or the message is too large): its rejection, else undefined. */
export function refusal(session: Session, options: ResolvedOptions, entry: OutboxEntry): Promise<void> | undefined {
  if (session.state === 'closed') {
    return quiet(Promise.reject(new HoldlineError('session_closed', `session ${session.id} is closed`)));
  }
  const { maxMessageBytes } = options;
  if (entry.bytes > maxMessageBytes) {
    return quiet(
      Promise.reject(new HoldlineError('message_too_large', `message of ${entry.bytes} bytes exceeds maxMessageBytes (${maxMessageBytes})`)),
    );
  }
  return undefined;
}

/**
 * Queue `entry` (a message not refused: see refusal()) in `out`:
 * admit it to the window at once, or have it wait, in order, for the
 * client's acks to make room. Refused with `queue_full` when the node holds
 * maxTotalQueuedBytes, or when another maxQueuedBytes already wait. See
 * Session.send().
 */
export function queueSend(session: Session, host: SessionHost, out: SendState, entry: OutboxEntry): Promise<void> {
  const cost = costOf(entry, host.options);
  if (host.queuedTotal + cost > host.options.maxTotalQueuedBytes) {
    return quiet(Promise.reject(new HoldlineError('queue_full', `the server holds maxTotalQueuedBytes (${host.options.maxTotalQueuedBytes}) unacknowledged across its sessions`)));
  }
  if (out.window.tryAcquire(cost)) {
    host.queued(cost);
    return admit(session, host, out, entry);
  }
  if (out.waitingBytes + cost > host.options.maxQueuedBytes) {
    return quiet(Promise.reject(new HoldlineError('queue_full', `session ${session.id}: maxQueuedBytes unacknowledged and as much again waiting`)));
  }
  out.waiting.push(entry);
  out.waitingBytes += cost;
  // The sender now waits for acks: they must not wait for a poll's hold.
  if (out.waiting.length === 1) host.ackWanted(session);
  const admitted = out.window.acquire(cost, () => {
    host.queued(cost);
    unwait(host, out, entry);
    return admit(session, host, out, entry);
  });
  // Timed out (queue_full) or failed: no longer waiting.
  admitted.catch(() => unwait(host, out, entry));
  return quiet(admitted);
}

function unwait(host: SessionHost, out: SendState, entry: OutboxEntry): void {
  const i = out.waiting.indexOf(entry);
  if (i < 0) return;
  out.waiting.splice(i, 1);
  out.waitingBytes -= costOf(entry, host.options);
}

function admit(session: Session, host: SessionHost, out: SendState, entry: OutboxEntry): Promise<void> {
  out.pending++;
  host.metrics?.sent(entry.bytes);
  out.unsent.push(entry.bytes);
  const { store } = host.options;
  if (store.enqueueNow !== undefined && out.uncommitted === undefined && !out.turnCommitted && session.state !== 'closed') {
    return commitNow(session, host, out, store, entry);
  }
  (out.uncommitted ??= []).push(entry);
  out.commit ??= quiet(Promise.resolve().then(() => commit(session, host, out)));
  return out.commit;
}

const RESOLVED = Promise.resolve();

/**
 * The turn's first send, appended to a store in this process (what
 * enqueueNow throws rejects this send) and handed to the transports at
 * once: a WebSocket writes it then, before the rest of the turn's work; a
 * held poll is answered at the end of the turn with the turn's other sends,
 * or as the delivery returns when the listeners sending it are done
 * (poll-flush.ts answerNow).
 */
function commitNow(session: Session, host: SessionHost, out: SendState, store: SessionStore, entry: OutboxEntry): Promise<void> {
  out.turnCommitted = true;
  process.nextTick(endTurn, out);
  out.inCommit = true;
  try {
    if (store.enqueueNow !== undefined) committed(session, host, out, store.enqueueNow(session.id, [entry]), [entry]);
  } catch (e) {
    return quiet(Promise.reject(e instanceof Error ? e : new Error(String(e))));
  } finally {
    out.inCommit = false;
  }
  return RESOLVED;
}

function endTurn(out: SendState): void {
  out.turnCommitted = false;
}

/**
 * Commit what the sends of this turn admitted: at once with a store in this
 * process (enqueueNow), else awaiting the store. An application that awaits
 * each send() commits one message at a time, so the hops saved count.
 */
function commit(session: Session, host: SessionHost, out: SendState): Promise<void> | undefined {
  out.commit = undefined;
  // Closed meanwhile: leave the entries for close() to report as unacked.
  if (session.state === 'closed') throw new HoldlineError('session_closed', `session ${session.id} is closed`);
  const entries = out.uncommitted ?? [];
  out.uncommitted = undefined;
  const { store } = host.options;
  if (store.enqueueNow === undefined) return commitToStore(session, host, out, entries);
  committed(session, host, out, store.enqueueNow(session.id, entries), entries);
  return undefined;
}

async function commitToStore(session: Session, host: SessionHost, out: SendState, entries: OutboxEntry[]): Promise<void> {
  const { store } = host.options;
  // A poll held (or a WebSocket idle) here waits for these messages: the store reads its batch in the same call, if it can.
  const read = store.enqueueAndRead === undefined ? undefined : host.heldRead(session);
  if (read !== undefined && store.enqueueAndRead !== undefined) {
    const both = await store.enqueueAndRead(session.id, entries, read);
    committed(session, host, out, both, entries, both.batch);
  } else {
    committed(session, host, out, await store.enqueue(session.id, entries), entries);
  }
}

/** `entries` are in the store, the last numbered `r.lastSeq`: their costs wait for the client's ack. */
function committed(session: Session, host: SessionHost, out: SendState, r: EnqueueResult, entries: readonly OutboxEntry[], batch?: ReadOutboundResult): void {
  out.commits++;
  const first = r.lastSeq - entries.length + 1;
  let seq = first;
  for (const e of entries) out.unacked.push(seq++, costOf(e, host.options));
  // An ack that reached this node before this answer (another node's, with a store across the network) covers them already.
  if (first <= out.clientAck) session.acked(out.clientAck);
  host.outboundReady(session, out.commits, batch);
}

/**
 * The client acknowledged up to `ack`: the window cost of this node's
 * messages that this covers (messages other nodes queued, or a node that
 * owned the session before, cost this window nothing). -1 when nothing
 * changed (an ack already counted, and no message of it committed since).
 */
export function takeAck(out: SendState, ack: number): number {
  const advanced = ack > out.clientAck;
  if (advanced) out.clientAck = ack;
  const u = out.unacked;
  let i = out.unackedHead;
  let freed = 0;
  let messages = 0;
  for (; i < u.length && (u[i] ?? Infinity) <= out.clientAck; i += 2, messages++) freed += u[i + 1] ?? 0;
  if (i >= u.length) {
    out.unacked = [];
    out.unackedHead = 0;
  } else if (i > 2048) {
    out.unacked = u.slice(i);
    out.unackedHead = 0;
  } else {
    out.unackedHead = i;
  }
  out.pending -= messages;
  return advanced || messages > 0 ? freed : -1;
}

/** Free `bytes` of the window (sends waiting for room are admitted, in order) and tell the node. */
export function releaseRoom(host: SessionHost, out: SendState, bytes: number): void {
  const before = out.window.buffered;
  out.window.release(bytes);
  host.queued(out.window.buffered - before);
}

/**
 * The session closed: sends still waiting for room reject with `error` and
 * are reported as unacked with the rest (Session.ended()); nothing is left
 * to write.
 */
export function closeSends(host: SessionHost, out: SendState, error: HoldlineError): void {
  const waiting = out.waiting;
  out.waiting = [];
  host.queued(-out.window.buffered);
  out.window.fail(error);
  (out.uncommitted ??= []).push(...waiting);
  out.unsent.reset();
  out.unacked = [];
  out.unackedHead = 0;
}

/** The session moved to another node: sends still waiting for room reject with `error`. */
export function failSends(host: SessionHost, out: SendState, error: HoldlineError): void {
  host.queued(-out.window.buffered);
  out.window.fail(error);
  out.unacked = [];
  out.unackedHead = 0;
}

/** Mark a promise handled (an ignored send() must never be an unhandled rejection) and return it as it is. */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

function noop(): void {}
