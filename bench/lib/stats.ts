/**
 * Small statistics helpers: latency samples, percentiles, rates, and the
 * shared clock used to stamp messages across processes.
 */

/**
 * Milliseconds on a clock shared by every process on this machine:
 * performance.timeOrigin (wall clock at process start, microsecond resolution)
 * plus the monotonic performance.now(). Used for one-way latencies, where the
 * stamp is taken in one process and read in another.
 */
export function sharedClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A growable list of samples (ms), cheap to append to. */
export class Samples {
  #data = new Float64Array(1024);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  add(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = value;
  }

  addAll(values: Iterable<number>): void {
    for (const v of values) this.add(v);
  }

  values(): number[] {
    return Array.from(this.#data.subarray(0, this.#length));
  }

  summary(): LatencySummary {
    return summarize(this.#data.subarray(0, this.#length));
  }
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted values; NaN for none. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? NaN;
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

/** The median item by `key` (the lower of the middle two for an even count); throws for none. */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  const median = sorted[(sorted.length - 1) >> 1];
  if (median === undefined) throw new Error('the median of no runs');
  return median;
}

/** CPU time used over a wall-clock interval, as percent of one core. */
export function cpuPercent(usage: NodeJS.CpuUsage, wallMs: number): number {
  return wallMs <= 0 ? NaN : ((usage.user + usage.system) / 1000 / wallMs) * 100;
}

/** Round for display and JSON: 3 significant decimals at most. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A latency summary with every figure rounded to `digits` (round()). */
export function roundedSummary(s: LatencySummary, digits = 3): LatencySummary {
  const r = (v: number) => round(v, digits);
  return { count: s.count, mean: r(s.mean), p50: r(s.p50), p90: r(s.p90), p99: r(s.p99), max: r(s.max) };
}

/** Count of lost, duplicated and out-of-order messages in a numbered stream 0..n-1. */
export class SequenceChecker {
  readonly expected: number;
  #seen: Uint8Array;
  #max = -1;
  unique = 0;
  duplicates = 0;
  outOfOrder = 0;
  /** Messages that do not carry a number in 0..n-1. */
  invalid = 0;

  constructor(expected: number) {
    this.expected = expected;
    this.#seen = new Uint8Array(expected);
  }

  /** Record message number `i`. */
  record(i: number): void {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.expected) {
      this.invalid++;
      return;
    }
    if (this.#seen[i] === 1) {
      this.duplicates++;
      return;
    }
    this.#seen[i] = 1;
    this.unique++;
    if (i < this.#max) this.outOfOrder++;
    else this.#max = i;
  }

  get complete(): boolean {
    return this.unique === this.expected;
  }

  report(): SequenceReport {
    return {
      expected: this.expected,
      received: this.unique,
      lost: this.expected - this.unique,
      duplicated: this.duplicates,
      outOfOrder: this.outOfOrder,
      invalid: this.invalid,
    };
  }
}

export interface SequenceReport {
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  invalid: number;
}

/** A payload of exactly `bytes` ASCII characters that starts with `head` and a '|'. */
export function padded(head: string, bytes: number): string {
  const s = `${head}|`;
  return s.length >= bytes ? s : s + 'x'.repeat(bytes - s.length);
}

/** The head of a padded() payload. */
export function headOf(payload: string): string {
  const bar = payload.indexOf('|');
  return bar < 0 ? payload : payload.slice(0, bar);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reject with a clear message when `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Time `once(i)` for `warmup + count` rounds, `gapMs` apart (0: back to
 * back, else each round after an idle gap, as the echo test paces its
 * messages); the summary of the last `count`.
 */
export async function timedRounds(count: number, warmup: number, gapMs: number, once: (i: number) => Promise<unknown>): Promise<LatencySummary> {
  const samples = new Samples();
  for (let i = 0; i < warmup + count; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const t0 = performance.now();
    await once(i);
    if (i >= warmup) samples.add(performance.now() - t0);
  }
  return samples.summary();
}
