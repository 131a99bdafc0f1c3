/**
 * A session's long-polling state on one node (server/polling.ts): the held
 * poll, when its hold ends, and bits of state as flags of one number. An
 * idle server keeps one Hold per session, so its size counts (bench/README.md,
 * the idle-heap budget); what only a streaming session needs waits in
 * Streaming.
 */
import type { ReadOutboundResult } from './store.js';
import type { PollHandle } from './polling-host.js';

export const FLUSHING = 1;
export const FLUSH_AGAIN = 2;
const EARLY = 4;
const EXPECT_EARLY = 8;
const WAITS_FOR_READ = 16;
/** Its held poll is to be answered once this turn's commits are in (see PollFlusher.wakeSoon, server/poll-flush.ts). */
export const DUE = 32;
/** The held poll's ack is being applied: it is not answered until that is in. */
export const ACKING = 64;
/** ... and something woke it meanwhile. */
export const WOKEN_ACKING = 128;
/** A batch is read ahead (or about to be) for the expected early poll (polling.ts): the Hold is kept, with it, until the next poll comes. */
export const READING_AHEAD = 256;

/**
 * A batch read before the poll it is for is answered, and the session's
 * commit count when it was read: the flush uses it only if that poll starts
 * at `seq` and nothing was committed since (poll-flush.ts).
 */
export interface ReadAhead {
  seq: number;
  commits: number;
  batch: Promise<ReadOutboundResult>;
}

/** A ReadAhead of a batch the store gave already (with a commit or with an ack). */
export function alreadyRead(batch: ReadOutboundResult, commits: number): ReadAhead {
  return { seq: batch.seq, commits, batch: Promise.resolve(batch) };
}

/** What a Hold keeps once it has written a batch or taken an early poll: idle sessions never need it. */
class Streaming {
  /** The Hold's flags, once it streams (see Hold.state). */
  flags = 0;
  /** Where the held poll's batch starts, if it named one (an early poll's `from`). */
  from: number | undefined;
  /** Just past the last batch written: where an early poll starts. */
  nextSeq = 1;
  /** A batch read ahead: for the expected early poll, or with the commit or the ack of the held poll. */
  ahead: ReadAhead | undefined;
  /** The last batch answer, while the client has not read it all: no second batch is written meanwhile. */
  unread: PollHandle | undefined;
}

/*
 * A session's polling state on this node. An idle server holds one per
 * session (its held poll), so it has few fields: flags are bits of one,
 * times are whole clockMs (small integers, not boxed numbers), and what only
 * a streaming session needs waits in Streaming. Accessors live on the
 * prototype and cost nothing per instance.
 */
export class Hold {
  /** The held poll. */
  poll: PollHandle | undefined;
  /** clockMs: when the held poll's hold ends. */
  until = 0;
  /** clockMs when the held poll came (its age when cut, for metrics; on a cluster, supersedes older than it are stale). */
  since = 0;
  /** Its flags while it has never streamed; then its Streaming, which keeps them (one field for both). */
  private state: number | Streaming = 0;

  /** Bits: FLUSHING, DUE, ACKING and the rest above. */
  get flags(): number {
    const s = this.state;
    return typeof s === 'number' ? s : s.flags;
  }
  set flags(v: number) {
    const s = this.state;
    if (typeof s === 'number') this.state = v;
    else s.flags = v;
  }

  private get streaming(): Streaming | undefined {
    const s = this.state;
    return typeof s === 'number' ? undefined : s;
  }

  /** Its Streaming, made on first use. */
  private streams(): Streaming {
    const s = this.state;
    if (typeof s !== 'number') return s;
    const made = new Streaming();
    made.flags = s;
    this.state = made;
    return made;
  }

  private flag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }

  /** The held poll is an early one (its `from` is past the client's ack + 1). */
  get early(): boolean {
    return (this.flags & EARLY) !== 0;
  }
  set early(on: boolean) {
    this.flag(EARLY, on);
  }

  /** The last answer carried NEXT_HEADER, and no poll or read-ahead has come since. */
  get expectEarly(): boolean {
    return (this.flags & EXPECT_EARLY) !== 0;
  }
  set expectEarly(on: boolean) {
    this.flag(EXPECT_EARLY, on);
  }

  /** A poll waits for `unread` to be read. */
  get waitsForRead(): boolean {
    return (this.flags & WAITS_FOR_READ) !== 0;
  }
  set waitsForRead(on: boolean) {
    this.flag(WAITS_FOR_READ, on);
  }

  get from(): number | undefined {
    return this.streaming?.from;
  }
  set from(v: number | undefined) {
    if (v !== undefined || this.streaming) this.streams().from = v;
  }

  get nextSeq(): number {
    return this.streaming?.nextSeq ?? 1;
  }
  set nextSeq(v: number) {
    this.streams().nextSeq = v;
  }

  get ahead(): Streaming['ahead'] {
    return this.streaming?.ahead;
  }
  set ahead(v: Streaming['ahead']) {
    if (v !== undefined || this.streaming) this.streams().ahead = v;
  }

  get unread(): PollHandle | undefined {
    return this.streaming?.unread;
  }
  set unread(v: PollHandle | undefined) {
    if (v !== undefined || this.streaming) this.streams().unread = v;
  }
}
