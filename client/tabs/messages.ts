/**
 * What travels on the BroadcastChannel between the tabs of one channel: the
 * message kinds, a guard for what arrives (a tab may run another version of
 * this code), errors and events in a form that survives structured cloning,
 * and the random ids of tabs and leaderships.
 */
import { HoldlineError, isPayload, type CloseReason, type ErrorCode, type Payload } from '../../shared/index.js';
import type { ClientState, ClientStats, TransportName } from '../holdline-client.js';
import type { MirrorSync } from './mirror.js';

/** The shared session as the leader last saw it. */
export interface SharedStatus {
  state: ClientState;
  sessionId: string | undefined;
  transport: TransportName;
  stats: ClientStats;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  status: number | undefined;
}

/** Something that happened to the leader's client, for every tab to replay. */
export type RelayedEvent =
  | { type: 'open'; resumed: boolean }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error: WireError }
  | { type: 'reset'; previousSessionId: string; sessionId: string; reason: CloseReason }
  | { type: 'error'; error: WireError }
  | { type: 'close'; reason: CloseReason };

export type BusMessage =
  /** A tab joined: the leader answers with its status. */
  | { k: 'hello'; from: string }
  /** A tab's message for the leader. `base`: every number up to it is done (confirmed or refused). */
  | { k: 'send'; from: string; num: number; base: number; data: Payload }
  /** A tab closed its handle. */
  | { k: 'bye'; from: string }
  /** Leader to everyone; `event` when something happened. */
  | { k: 'status'; epoch: string; status: SharedStatus; event?: RelayedEvent }
  /** Leader: the server acknowledged `to`'s messages up to `upTo`. */
  | { k: 'confirm'; epoch: string; to: string; upTo: number }
  /** Leader: the client refused `to`'s message `num` (too large, say); it will not be sent. */
  | { k: 'refuse'; epoch: string; to: string; num: number; error: WireError }
  /**
   * Leader: `to`'s messages `nums` went to a session that is gone,
   * unacknowledged: they are lost (listed in its 'reset'); with `upTo`, so is
   * every message numbered up to it that `to` still holds.
   */
  | { k: 'lost'; epoch: string; to: string; nums: number[]; upTo?: number }
  /** Leader: `to` left a gap; send everything unconfirmed again. */
  | { k: 'resync'; epoch: string; to: string }
  /** Leader: incoming message number `seq` of the session's stream. */
  | { k: 'msg'; epoch: string; data: Payload; seq: number }
  /** Leader: the session as it stands, for every tab's mirror (tabs/mirror.ts); on a new session and to a joining tab. */
  | { k: 'sync'; epoch: string; sync: MirrorSync }
  /** Leader: `tab`'s message `num` is number `seq` of the session's outbound stream. */
  | { k: 'out'; epoch: string; seq: number; tab: string; num: number; data: Payload }
  /** Leader: the server acknowledged the outbound stream up to `upTo`. */
  | { k: 'acked'; epoch: string; upTo: number }
  /** Leader: this tab is going away (pagehide or close()). */
  | { k: 'leaving'; epoch: string };

/** What a leader posts: every such message names its leadership (`epoch`). */
export type LeaderMessage = Extract<BusMessage, { epoch: string }>;

type FieldKind = 'string' | 'number' | 'object' | 'payload';

/** The fields each kind must carry, and what they hold. */
const FIELDS: { readonly [K in BusMessage['k']]: Readonly<Record<string, FieldKind>> } = {
  hello: { from: 'string' },
  send: { from: 'string', num: 'number', base: 'number', data: 'payload' },
  bye: { from: 'string' },
  status: { epoch: 'string', status: 'object' },
  confirm: { epoch: 'string', to: 'string', upTo: 'number' },
  refuse: { epoch: 'string', to: 'string', num: 'number', error: 'object' },
  resync: { epoch: 'string', to: 'string' },
  lost: { epoch: 'string', to: 'string', nums: 'object' },
  msg: { epoch: 'string', data: 'payload', seq: 'number' },
  sync: { epoch: 'string', sync: 'object' },
  out: { epoch: 'string', seq: 'number', tab: 'string', num: 'number', data: 'payload' },
  acked: { epoch: 'string', upTo: 'number' },
  leaving: { epoch: 'string' },
};

function hasKind(v: unknown, kind: FieldKind): boolean {
  if (kind === 'payload') return isPayload(v);
  if (kind === 'object') return typeof v === 'object' && v !== null;
  return typeof v === kind;
}

/** Whether `v` is a message of a known kind with the fields that kind needs; anything else is ignored. */
export function isBusMessage(v: unknown): v is BusMessage {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  const k = m.k;
  if (typeof k !== 'string' || !Object.hasOwn(FIELDS, k)) return false;
  for (const [field, kind] of Object.entries(FIELDS[k as BusMessage['k']])) {
    if (!hasKind(m[field], kind)) return false;
  }
  return k !== 'status' || m.event === undefined || hasKind(m.event, 'object');
}

export function idleStatus(): SharedStatus {
  return {
    state: 'idle',
    sessionId: undefined,
    transport: 'polling',
    stats: {
      polls: 0, pollCuts: 0, sendRequests: 0, messagesSent: 0, messagesReceived: 0, messagesAcked: 0,
      reconnects: 0, resets: 0, holdMs: 0, rttMs: 0, transportSwitches: 0,
    },
  };
}

/** 16 hex digits: a tab's id, or a leadership's epoch. */
export function randomId(): string {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function toWireError(e: unknown): WireError {
  if (e instanceof HoldlineError) return { code: e.code, message: e.message, status: e.status };
  return { code: 'internal_error', message: String(e), status: undefined };
}

export function fromWireError(e: WireError): HoldlineError {
  return new HoldlineError(e.code, e.message, e.status === undefined ? undefined : { status: e.status });
}
