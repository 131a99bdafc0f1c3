/**
 * A session as it stands, in a form another client can resume: the tab
 * that takes over a shared session (client/tabs), or the same page after a
 * reload (`resume: 'session'`, kept in sessionStorage). It holds the
 * session's credential (sid and token, as the open answer gave them, with its
 * limits), the position in the server's stream (the inbound ack), and every
 * client-to-server message the server has not acknowledged, in wire form,
 * numbered on from `outboundAcked`.
 *
 * What reads it back checks every field: storage can hold anything (another
 * version of this code, a user's edit). A state that does not pass is
 * ignored, and the client opens a new session.
 */
import type { OpenResponse, WirePayload } from '../shared/index.js';

export interface SessionState {
  /** The format; a state of another version is ignored. */
  readonly v: 1;
  /** The server's base URL: a state is resumed only against the same server. */
  readonly url: string;
  /** The open answer (sid, token, limits). */
  readonly limits: OpenResponse;
  /** Every server-to-client message up to this number was delivered. */
  readonly inboundAck: number;
  /** The server acknowledged client-to-server messages up to this number. */
  readonly outboundAcked: number;
  /** The messages numbered outboundAcked + 1, + 2, …, not acknowledged yet. */
  readonly outbound: readonly WirePayload[];
  /**
   * How many of `outbound`, at its end, were queued by a client that had
   * resumed this session and was still waiting for the server's first ack:
   * never sent, and not yet theirs to keep, as the holder before may have
   * sent other messages under them. The client that resumes this state
   * numbers them after the server's ack, as that one would have. Absent: 0.
   */
  readonly outboundUnsent?: number;
}

const STORAGE_PREFIX = 'holdline:session:';

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isWirePayload(v: unknown): v is WirePayload {
  if (typeof v === 'string') return true;
  if (typeof v !== 'object' || v === null) return false;
  const keys = Object.keys(v);
  // Text, binary ({"b": base64}), or a request/reply frame ({"r": text}).
  return keys.length === 1 && (keys[0] === 'b' || keys[0] === 'r') && typeof (v as Record<string, unknown>)[keys[0]] === 'string';
}

/** `v` as a SessionState for `url`, or undefined when it is not one. */
export function checkSessionState(v: unknown, url: string): SessionState | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const s = v as Record<string, unknown>;
  if (s.v !== 1 || s.url !== url || !isCount(s.inboundAck) || !isCount(s.outboundAcked)) return undefined;
  if (!Array.isArray(s.outbound) || !s.outbound.every(isWirePayload)) return undefined;
  if (s.outboundUnsent !== undefined && (!isCount(s.outboundUnsent) || s.outboundUnsent > s.outbound.length)) return undefined;
  const l = s.limits as Record<string, unknown> | null;
  if (typeof l !== 'object' || l === null || typeof l.sid !== 'string' || typeof l.token !== 'string' || l.sid === '' || l.token === '') return undefined;
  for (const k of ['v', 'pollTimeoutMs', 'sessionIdleTimeoutMs', 'maxMessageBytes', 'maxBatchBytes'] as const) {
    if (!isCount(l[k])) return undefined;
  }
  if (l.maxBatchMessages !== undefined && !isCount(l.maxBatchMessages)) return undefined;
  return s as unknown as SessionState;
}

/** The page's sessionStorage, or undefined (Node, a sandboxed frame, storage disabled). */
function storage(): Storage | undefined {
  try {
    return (globalThis as { sessionStorage?: Storage }).sessionStorage;
  } catch {
    return undefined; // access throws where storage is denied
  }
}

/** The state kept for `url` in sessionStorage, if there is a valid one. */
export function loadSessionState(url: string): SessionState | undefined {
  try {
    const text = storage()?.getItem(STORAGE_PREFIX + url);
    return text == null ? undefined : checkSessionState(JSON.parse(text), url);
  } catch {
    return undefined;
  }
}

/** Keep `state` (or, undefined, forget it) for `url`. False when storage refused it (full, or denied). */
export function saveSessionState(url: string, state: SessionState | undefined): boolean {
  const s = storage();
  if (!s) return false;
  try {
    if (state === undefined) s.removeItem(STORAGE_PREFIX + url);
    else s.setItem(STORAGE_PREFIX + url, JSON.stringify(state));
    return true;
  } catch {
    // Over the quota: what is stored is stale, so it goes.
    try {
      s.removeItem(STORAGE_PREFIX + url);
    } catch {
      // denied
    }
    return false;
  }
}
