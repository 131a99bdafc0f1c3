/**
 * What the store's answer to a poll's ack (Store.ackOutbound) says about the
 * poll: refused, or how many messages it can be answered with at once. The
 * polling transport applies a poll's ack once it holds the poll, so that one
 * store call both applies the ack and says whether to answer now.
 */
import type { AckOutboundResult, AckReadResult, ReadOutboundResult } from './store.js';

/**
 * What a poll's ack says once applied: false when it is refused (bad_ack:
 * past the last message, or a `from` more than one past it), else the number
 * of messages pending from `from` (or from just past the ack) on, or
 * undefined when the store did not say (its ack was already further).
 */
export type AckOutcome = false | number | undefined;

/**
 * A poll's ack applied together with the read of its batch
 * (Store.ackAndRead), when messages are pending: the poll is answered with
 * `batch` unless the session committed more since (`commits`, its count
 * when the ack was sent; see PollFlusher's read-ahead check).
 */
export interface AckRead {
  readonly pending: number;
  readonly batch: ReadOutboundResult;
  readonly commits: number;
}

/** The AckOutcome of ackOutbound(sid, ack) answering `r`, for a poll starting at `from`. */
export function ackOutcome(r: AckOutboundResult, ack: number, from?: number): AckOutcome {
  if (r.result === 'future') return false;
  if (from !== undefined && from > r.lastSeq + 1) return false;
  // 'stale': the store's ack is past `ack`, by how much it does not say.
  if (r.result !== 'ok') return undefined;
  return Math.max(0, r.lastSeq - Math.max(from ?? 0, ack + 1) + 1);
}

/**
 * The outcome of a poll's ack as ackOutcome() says, or, where the store read
 * the poll's batch with it (ackAndRead) and messages are pending, an AckRead
 * (`commits`: the session's commit count when the ack was sent).
 */
export function ackReadOutcome(r: AckReadResult, ack: number, from: number | undefined, commits: number): AckOutcome | AckRead {
  const outcome = ackOutcome(r, ack, from);
  const batch = r.batch;
  if (outcome === false || batch === undefined) return outcome;
  if (batch.count === 0) return outcome ?? 0;
  // 'stale' says nothing of the count: the batch does.
  return { pending: outcome ?? batch.count, batch, commits };
}
