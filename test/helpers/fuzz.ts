/**
 * Fuzzing helpers: a seeded PRNG, and one raw HTTP/1.1 exchange over a TCP
 * (or, in the tests' TLS mode, TLS) socket that reports what came back: the
 * status of every complete response, whether the server closed the
 * connection, and whether it did neither within a deadline (a hang).
 *
 * The socket is written byte for byte as the input says (any framing, any
 * header, lies included), so nothing in between normalises it; responses are
 * parsed just enough to count them: a status line, headers, then a body by
 * Content-Length, chunked, or up to the close.
 */
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

/** A small deterministic PRNG (mulberry32): the same seed gives the same inputs. */
export class Rng {
  #a: number;

  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max], biased toward small values (log-uniform) when `log`. */
  range(min: number, max: number, log = false): number {
    if (!log) return min + this.int(max - min + 1);
    return Math.min(max, Math.floor(min + Math.expm1(this.next() * Math.log1p(max - min))));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new RangeError('Rng.pick: no items');
    return item;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** How an input's socket is treated once its bytes are written. */
export type AfterWrite =
  /** Keep it open: done at `expect` complete responses (plus a short linger for extras) or the server's close. */
  | 'keep'
  /** Half-close it (EOF): done when the server closes. */
  | 'half-close'
  /** Destroy it at once: nothing to wait for (only the server's survival is checked). */
  | 'destroy';

export interface RawInput {
  /** What the input is, for the report. */
  label: string;
  /** Written in order; a pause of `pauseMs` between pieces when more than one. */
  pieces: Buffer[];
  pauseMs?: number;
  after: AfterWrite;
  /** Complete responses that end a 'keep' exchange (at least 1). */
  expect: number;
  /** Request methods in order, so a response to HEAD is read without a body. */
  methods: string[];
}

export interface RawResponseHead {
  /** The method of the request it answers, when known (a HEAD answer has no body). */
  method: string | undefined;
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

export interface ExchangeResult {
  responses: RawResponseHead[];
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Neither the expected answers nor a close came within the deadline. */
  hung: boolean;
  /** A socket error seen (ECONNRESET, say); not a failure by itself. */
  error: string | undefined;
  /** Bytes that did not parse as a response. */
  garbage: boolean;
}

/** Just enough of an HTTP/1.1 response parser to count and read responses. */
export class ResponseParser {
  readonly responses: RawResponseHead[] = [];
  garbage = false;
  #buf: Buffer = Buffer.alloc(0);
  readonly #methods: string[];
  /** A response whose body runs to the close. */
  #toClose: { status: number; headers: Map<string, string>; start: number } | undefined;

  constructor(methods: readonly string[]) {
    this.#methods = [...methods];
  }

  feed(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (!this.garbage && this.#toClose === undefined && this.#parseOne());
  }

  /** The connection ended: a response delimited by the close is complete now. */
  end(): void {
    if (this.#toClose) {
      const { status, headers, start } = this.#toClose;
      this.responses.push({ method: this.#methods[0], status, headers, body: this.#buf.subarray(start) });
      this.#toClose = undefined;
      this.#buf = Buffer.alloc(0);
    }
  }

  #parseOne(): boolean {
    const buf = this.#buf;
    if (buf.length === 0) return false;
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) {
      if (buf.length > 5 && !buf.subarray(0, 5).equals(Buffer.from('HTTP/'))) this.garbage = true;
      return false;
    }
    const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) {
      this.garbage = true;
      return false;
    }
    const status = Number(m[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const start = headEnd + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim (100 Continue): not an answer.
      this.#buf = buf.subarray(start);
      return true;
    }
    const method = this.#methods[0];
    let body: Buffer;
    let rest: Buffer;
    if (method === 'HEAD' || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      rest = buf.subarray(start);
    } else if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
      const chunked = readChunked(buf, start);
      if (chunked === undefined) return false;
      if (chunked === null) {
        this.garbage = true;
        return false;
      }
      [body, rest] = chunked;
    } else if (headers.has('content-length')) {
      const n = Number(headers.get('content-length'));
      if (!Number.isSafeInteger(n) || n < 0) {
        this.garbage = true;
        return false;
      }
      if (buf.length < start + n) return false;
      body = buf.subarray(start, start + n);
      rest = buf.subarray(start + n);
    } else {
      this.#toClose = { status, headers, start };
      return false;
    }
    this.responses.push({ method, status, headers, body });
    this.#methods.shift();
    this.#buf = rest;
    return true;
  }
}

/** A chunked body from `start`: [body, rest], undefined when incomplete, null when malformed. */
function readChunked(buf: Buffer, start: number): [Buffer, Buffer] | undefined | null {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isSafeInteger(size) || size < 0) return null;
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', eol);
      return end < 0 ? undefined : [Buffer.concat(parts), buf.subarray(end + 4)];
    }
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

export interface Target {
  host: string;
  port: number;
  tls: boolean;
}

/** Where a base URL points, for raw sockets. */
export function targetOf(url: string): Target {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), tls: u.protocol === 'https:' };
}

const LINGER_MS = 30;

/**
 * Write one input on a fresh connection and watch what comes back, for at
 * most `deadlineMs` after the last byte is written.
 */
export async function exchange(target: Target, input: RawInput, deadlineMs: number): Promise<ExchangeResult> {
  const socket: net.Socket = target.tls
    ? tls.connect({ host: target.host, port: target.port, servername: target.host === '127.0.0.1' ? undefined : target.host })
    : net.connect({ host: target.host, port: target.port });
  const parser = new ResponseParser(input.methods);
  let closed = false;
  let error: string | undefined;
  let wake: () => void = () => {};
  const changed = () => wake();
  socket.on('data', (chunk: Buffer) => {
    parser.feed(chunk);
    changed();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  socket.on('close', () => {
    closed = true;
    parser.end();
    changed();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once(target.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    for (const [i, piece] of input.pieces.entries()) {
      if (closed) break;
      if (i > 0 && input.pauseMs !== undefined) await sleep(input.pauseMs);
      socket.write(piece);
    }
    if (input.after === 'destroy') {
      socket.destroy();
      return { responses: parser.responses, closed: true, hung: false, error, garbage: parser.garbage };
    }
    if (input.after === 'half-close' && !closed) socket.end();
    const deadline = Date.now() + deadlineMs;
    let lingerUntil: number | undefined;
    for (;;) {
      if (closed) break;
      const now = Date.now();
      if (input.after === 'keep' && parser.responses.length >= input.expect) {
        lingerUntil ??= now + LINGER_MS;
        if (now >= lingerUntil) break;
      }
      if (now >= deadline) return { responses: parser.responses, closed, hung: true, error, garbage: parser.garbage };
      const waitMs = Math.max(1, Math.min(deadline, lingerUntil ?? deadline) - now);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = () => {};
    }
    return { responses: parser.responses, closed, hung: false, error, garbage: parser.garbage };
  } catch (e) {
    // Refused or reset before anything was written: the server is not taking connections.
    return { responses: parser.responses, closed: true, hung: false, error: (e as NodeJS.ErrnoException).code ?? String(e), garbage: false };
  } finally {
    socket.destroy();
  }
}

/** The p-th percentile (0-100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const v = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  return v ?? NaN;
}
