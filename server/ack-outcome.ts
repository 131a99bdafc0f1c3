/**
 * What the store's answer to a poll's ack (Store.ackOutbound) says about the
 * poll: refused, or how many messages it can be answered with at once. The
 * polling transport applies a poll's ack once it holds the poll, so that one
 * store call both applies the ack and says whether to answer now.
 */
import type { AckOutboundResult } from './store.js';

/**
 * What a poll's ack says once applied: false when it is refused (bad_ack:
 * past the last message, or a `from` more than one past it), else the number
 * of messages pending from `from` (or from just past the ack) on, or
 * undefined when the store did not say (its ack was already further).
 */
export type AckOutcome = false | number | undefined;

/** The AckOutcome of ackOutbound(sid, ack) answering `r`, for a poll starting at `from`. */
export function ackOutcome(r: AckOutboundResult, ack: number, from?: number): AckOutcome {
  if (r.result === 'future') return false;
  if (from !== undefined && from > r.lastSeq + 1) return false;
  // 'stale': the store's ack is past `ack`, by how much it does not say.
  if (r.result !== 'ok') return undefined;
  return Math.max(0, r.lastSeq - Math.max(from ?? 0, ack + 1) + 1);
}
