/**
 * Every tab's copy of the shared session, so that whichever tab leads next
 * resumes the SAME session (no new session, nothing lost or repeated):
 * the credential and limits (from the leader's 'sync'), the position in the
 * server's stream (each relayed message carries its number), and every
 * client-to-server message the leader handed to its client and the server
 * has not acknowledged yet, with its number in the session's stream and the
 * tab and number it came from ('out', pruned by 'acked'), and, per tab, the
 * highest number of that tab's messages the session's stream took: what a
 * new leader must never take as new again (the server may have acknowledged
 * it under its number while the tab had not heard so yet).
 *
 * Memory: the unacknowledged messages the leader's client holds, at most
 * about its maxBufferedBytes, once per tab.
 */
import type { OpenResponse, Payload } from '../../shared/index.js';
import { isPayload, toWire } from '../../shared/index.js';
import { checkSessionState, type SessionState } from '../session-state.js';

/** A message in the session's outbound stream: where it came from. */
export interface MirrorEntry {
  tab: string;
  num: number;
  data: Payload;
}

/** What a leader posts so that a tab's mirror starts right ('sync'). */
export interface MirrorSync {
  url: string;
  limits: OpenResponse;
  inboundAck: number;
  outboundAcked: number;
  /** Numbered outboundAcked + 1, + 2, … */
  entries: MirrorEntry[];
  /**
   * Per tab, the highest of its message numbers the session's outbound
   * stream took (acknowledged or among `entries`). Absent from a tab running
   * an older version of this code.
   */
  taken?: Record<string, number>;
}

/** What a new leader resumes: the session, the tab and number of each unacknowledged message, and what the stream took. */
export interface Resumable {
  state: SessionState;
  owners: MirrorEntry[];
  /** Per tab, the highest of its message numbers the session's stream took (see MirrorSync.taken). */
  taken: ReadonlyMap<string, number>;
}

/** `v` as a MirrorSync, or undefined (a tab running another version of this code may post anything). */
export function checkMirrorSync(v: unknown): MirrorSync | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const s = v as Record<string, unknown>;
  if (typeof s.url !== 'string' || !Array.isArray(s.entries)) return undefined;
  const entries = s.entries as unknown[];
  const ok = entries.every((e) => {
    const o = e as Record<string, unknown> | null;
    return typeof o === 'object' && o !== null && typeof o.tab === 'string' && typeof o.num === 'number' && isPayload(o.data);
  });
  const taken = s.taken as Record<string, unknown> | null | undefined;
  if (taken !== undefined && (typeof taken !== 'object' || taken === null || !Object.values(taken).every((n) => typeof n === 'number' && Number.isSafeInteger(n)))) return undefined;
  if (!ok || !checkSessionState({ v: 1, url: s.url, limits: s.limits, inboundAck: s.inboundAck, outboundAcked: s.outboundAcked, outbound: [] }, s.url)) return undefined;
  return v as MirrorSync;
}

/** Incoming messages held for a gap to fill, at most. */
const MAX_EARLY = 10_000;

export class Mirror {
  #url = '';
  #limits: OpenResponse | undefined;
  #inbound = 0;
  #acked = 0;
  /** Stream number -> entry, unacknowledged. */
  readonly #entries = new Map<number, MirrorEntry>();
  /** Incoming messages that came before the ones ahead of them (see arrive()). */
  readonly #early = new Map<number, Payload>();
  /** Per tab, the highest of its message numbers this session's outbound stream took. */
  readonly #taken = new Map<string, number>();

  /** The session this mirror follows (undefined: none yet). */
  get sessionId(): string | undefined {
    return this.#limits?.sid;
  }

  /** Every server-to-client message up to this number was delivered here. */
  get inbound(): number {
    return this.#inbound;
  }

  /** Start over from a leader's full account (a new session, or this tab just joined). */
  sync(s: MirrorSync): void {
    if (s.limits.sid !== this.#limits?.sid) this.#taken.clear();
    if (s.limits.sid !== this.#limits?.sid || s.inboundAck > this.#inbound) {
      this.#inbound = s.inboundAck;
      this.#early.clear();
    }
    this.#url = s.url;
    this.#limits = s.limits;
    this.#acked = s.outboundAcked;
    this.#entries.clear();
    s.entries.forEach((e, i) => this.#entries.set(s.outboundAcked + 1 + i, e));
    for (const [tab, num] of Object.entries(s.taken ?? {})) this.#took(tab, num);
    for (const e of s.entries) this.#took(e.tab, e.num);
  }

  #took(tab: string, num: number): void {
    if (num > (this.#taken.get(tab) ?? 0)) this.#taken.set(tab, num);
  }

  /**
   * Server-to-client message `seq` arrived: returns what can be delivered
   * now, in order (a repeat: nothing). Across a change of leader, the new
   * leader's first messages can overtake the old one's last (two senders on
   * the channel): those wait here until the gap fills (skipGap() gives up).
   */
  arrive(seq: number, data: Payload): Payload[] {
    if (seq <= this.#inbound) return [];
    if (seq > this.#inbound + 1) {
      if (this.#early.size < MAX_EARLY) {
        this.#early.set(seq, data);
        return [];
      }
      this.skipGap();
      if (seq <= this.#inbound) return [];
    }
    const out = [data];
    this.#inbound = seq;
    for (let next = this.#early.get(this.#inbound + 1); next !== undefined; next = this.#early.get(this.#inbound + 1)) {
      this.#early.delete(++this.#inbound);
      out.push(next);
    }
    return out;
  }

  /** Messages waiting for a gap to fill. */
  get waiting(): number {
    return this.#early.size;
  }

  /** The gap did not fill: go on from the first message waiting (returned, in order, with those after it). */
  skipGap(): Payload[] {
    if (this.#early.size === 0) return [];
    const first = Math.min(...this.#early.keys());
    const data = this.#early.get(first);
    this.#early.delete(first);
    this.#inbound = first - 1;
    return data === undefined ? [] : this.arrive(first, data);
  }

  /** The leader handed `e` to its client as stream message `seq`. */
  out(seq: number, e: MirrorEntry): void {
    this.#took(e.tab, e.num);
    if (seq > this.#acked) this.#entries.set(seq, e);
  }

  /** The server acknowledged the stream up to `upTo`. */
  acked(upTo: number): void {
    if (upTo <= this.#acked) return;
    for (let n = this.#acked + 1; n <= upTo; n++) this.#entries.delete(n);
    this.#acked = upTo;
  }

  /** The session ended or was replaced: nothing to resume, and the next session's stream starts at 1. */
  clear(): void {
    this.#limits = undefined;
    this.#inbound = 0;
    this.#acked = 0;
    this.#entries.clear();
    this.#early.clear();
    this.#taken.clear();
  }

  /**
   * The state a new leader resumes, with the tab and number of each
   * unacknowledged message and what the stream took of each tab; undefined
   * when there is no session, or a message is missing (a hole could not be
   * sent again: a new session then).
   */
  resumable(): Resumable | undefined {
    const limits = this.#limits;
    if (!limits) return undefined;
    const owners: MirrorEntry[] = [];
    let last = this.#acked;
    for (const n of this.#entries.keys()) last = Math.max(last, n);
    for (let n = this.#acked + 1; n <= last; n++) {
      const e = this.#entries.get(n);
      if (!e) return undefined;
      owners.push(e);
    }
    const outbound = owners.map((e) => (typeof e.data === 'string' ? e.data : toWire(e.data)));
    return { state: { v: 1, url: this.#url, limits, inboundAck: this.#inbound, outboundAcked: this.#acked, outbound }, owners, taken: new Map(this.#taken) };
  }

  /**
   * Per tab, the highest of its message numbers the session this mirror
   * follows took, for a new leader that opens a new session instead of
   * resuming it (resumable() found a hole, or its client cannot resume);
   * undefined when the mirror follows no session.
   */
  abandoned(): ReadonlyMap<string, number> | undefined {
    return this.#limits === undefined ? undefined : new Map(this.#taken);
  }
}
