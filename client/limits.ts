/**
 * What the client takes from the server: the open answer's limits, clamped
 * to sane ranges, and the largest answer it reads. A broken or hostile server
 * must not make the client spin, overflow a timer (Node clamps a delay past
 * 2^31-1 ms to 1 ms, with a TimeoutOverflowWarning) or buffer without bound.
 */
import { ENVELOPE_OVERHEAD, type OpenResponse } from '../shared/index.js';

/** The longest hold the client asks for, whatever the server grants: 10 min. */
export const MAX_POLL_TIMEOUT_MS = 600_000;
/**
 * The shortest: a server that grants no hold at all (answers every poll at
 * once) is then seen answering early, which the poll loop paces.
 */
export const MIN_POLL_TIMEOUT_MS = 100;
/** Largest answer to an open or a close (before a session's limits are known, or outside them). */
export const MAX_CONTROL_ANSWER_BYTES = 1024 * 1024;
/**
 * A message's JSON text is at most this many times its size: a control
 * character in a string is 1 byte and `\u00XX` (6) in JSON; binary is base64
 * (4/3) plus `{"b":""}`.
 */
const JSON_GROWTH = 6;

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

/** The open answer as the client uses it: every number in a range where it cannot hurt the client. */
export function saneLimits(r: OpenResponse): OpenResponse {
  const max = Number.MAX_SAFE_INTEGER;
  const limits: OpenResponse = {
    v: r.v,
    sid: r.sid,
    token: r.token,
    pollTimeoutMs: clamp(r.pollTimeoutMs, MIN_POLL_TIMEOUT_MS, MAX_POLL_TIMEOUT_MS),
    sessionIdleTimeoutMs: clamp(r.sessionIdleTimeoutMs, 0, max),
    maxMessageBytes: clamp(r.maxMessageBytes, 0, max),
    maxBatchBytes: clamp(r.maxBatchBytes, 0, max),
  };
  // Optional, and the codec does not check it: anything but a positive integer is no limit.
  const count: unknown = r.maxBatchMessages;
  if (typeof count === 'number' && Number.isInteger(count) && count >= 1) limits.maxBatchMessages = Math.min(count, max);
  return limits;
}

/**
 * The largest answer the client reads on a session with these limits: a poll
 * answer is at most maxBatchBytes of messages, or one message alone
 * (maxMessageBytes, JSON-escaped), plus its envelope. Past it, the answer is
 * `bad_response` and its connection is dropped.
 */
export function maxAnswerBytes(limits: OpenResponse): number {
  return Math.max(limits.maxBatchBytes, JSON_GROWTH * limits.maxMessageBytes + 16, MAX_CONTROL_ANSWER_BYTES) + ENVELOPE_OVERHEAD;
}
