/**
 * HttpFramer: the HTTP/1.1 framing half of the fault proxy (see
 * ../fault-proxy.ts), just enough to know where each message starts and ends.
 * It reads one direction of a connection (requests or responses) and reports,
 * in byte order, each message head, the bytes themselves and each message's
 * end (Content-Length or chunked body); whatever it cannot follow (bad syntax,
 * an oversized head or chunk line, chunked request bodies, CONNECT, 101
 * upgrades, close-delimited responses) it hands back as `raw` bytes, and the
 * link turns the connection into plain pass-through.
 */
const EMPTY: Buffer = Buffer.alloc(0);
const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024; // a longer head counts as unparseable
const MAX_LINE = 4096; // chunk-size and trailer lines
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) HTTP/1\\.[01]$`);
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/;
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`);
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/;

/** none: no body; length: Content-Length; chunked; raw: cannot follow, pass through. */
type Framing = 'none' | 'length' | 'chunked' | 'raw';

export interface MessageHead {
  readonly method: string; // requests ('' for responses)
  readonly target: string; // requests ('' for responses)
  readonly status: number; // responses (0 for requests)
  readonly framing: Framing;
  readonly bodyBytes: number; // Content-Length, else 0
}

/** Events in byte order; the `data` (and `raw`) bytes are exactly the input. */
export type FramerEvent =
  | { type: 'head'; head: MessageHead } // comes before the head's bytes
  | { type: 'data'; bytes: Buffer }
  | { type: 'end'; head: MessageHead } // comes after the message's last byte
  | { type: 'raw'; bytes: Buffer }; // gave up: these and all later bytes are unframed

export class HttpFramer {
  readonly #role: 'request' | 'response';
  readonly #pendingMethod: () => string | undefined; // responses to HEAD have no body
  #state: 'head' | 'body' | 'size' | 'chunk' | 'chunk-end' | 'trailer' | 'raw' = 'head';
  #held: Buffer = EMPTY; // an incomplete head, not forwarded yet
  #line = '';
  #remaining = 0;
  #head: MessageHead | undefined;

  constructor(role: 'request' | 'response', pendingMethod: () => string | undefined = () => undefined) {
    this.#role = role;
    this.#pendingMethod = pendingMethod;
  }

  /** Takes back the bytes of an incomplete head (at end of stream, or on pass-through). */
  drain(): Buffer {
    const held = this.#held;
    this.#held = EMPTY;
    return held;
  }

  push(chunk: Buffer): FramerEvent[] {
    const out: FramerEvent[] = [];
    let pos = 0;
    let from = 0; // first byte of `chunk` not emitted yet
    const emit = (): void => {
      if (pos > from) out.push({ type: 'data', bytes: chunk.subarray(from, pos) });
      from = pos;
    };
    const finish = (head: MessageHead): void => {
      emit();
      out.push({ type: 'end', head });
      this.#state = 'head';
    };
    const giveUp = (): FramerEvent[] => {
      out.push({ type: 'raw', bytes: Buffer.concat([this.drain(), chunk.subarray(from)]) });
      this.#state = 'raw';
      return out;
    };
    while (pos < chunk.length) {
      const state = this.#state;
      if (state === 'raw') return giveUp();
      if (state === 'head') {
        const seen = this.#held.length;
        const buf = seen === 0 ? chunk.subarray(pos) : Buffer.concat([this.#held, chunk.subarray(pos)]);
        const at = buf.indexOf(CRLF2, Math.max(0, seen - 3));
        this.#held = at === -1 ? buf : buf.subarray(0, at + 4);
        pos = from = at === -1 ? chunk.length : pos + at + 4 - seen;
        if (at === -1) return buf.length > MAX_HEAD ? giveUp() : out;
        const head = this.#parseHead(this.#held);
        if (head === undefined) return giveUp();
        this.#head = head;
        out.push({ type: 'head', head }, { type: 'data', bytes: this.drain() });
        if (head.framing === 'raw') return giveUp();
        if (head.framing === 'none') finish(head);
        else [this.#state, this.#remaining] = head.framing === 'chunked' ? ['size', 0] : ['body', head.bodyBytes];
      } else if (state === 'body' || state === 'chunk') {
        const n = Math.min(this.#remaining, chunk.length - pos);
        [pos, this.#remaining] = [pos + n, this.#remaining - n];
        if (this.#remaining === 0 && state === 'chunk') this.#state = 'chunk-end';
        else if (this.#remaining === 0 && this.#head) finish(this.#head);
      } else {
        // Line states: a chunk size, the CRLF after chunk data, trailer lines.
        const nl = chunk.indexOf(0x0a, pos);
        const stop = nl === -1 ? chunk.length : nl + 1;
        this.#line += chunk.toString('latin1', pos, stop);
        pos = stop;
        if (this.#line.length > MAX_LINE) return giveUp();
        if (nl === -1) break;
        const line = this.#line.replace(/\r?\n$/, '');
        this.#line = '';
        if (state === 'size') {
          const [, size] = CHUNK_SIZE.exec(line) ?? [];
          if (size === undefined) return giveUp();
          this.#remaining = parseInt(size, 16);
          this.#state = this.#remaining === 0 ? 'trailer' : 'chunk';
        } else if (state === 'chunk-end') {
          if (line !== '') return giveUp();
          this.#state = 'size';
        } else if (line === '' && this.#head) {
          finish(this.#head); // the empty line closes the trailer section
        }
      }
    }
    emit();
    return out;
  }

  #parseHead(bytes: Buffer): MessageHead | undefined {
    const [first = '', ...lines] = bytes.toString('latin1', 0, bytes.length - 4).split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const [, field, value] = HEADER_LINE.exec(line) ?? [];
      if (field === undefined || value === undefined) return undefined; // also rejects obsolete line folding
      const name = field.toLowerCase();
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    }
    const te = headers.get('transfer-encoding');
    const cl = headers.get('content-length');
    const [length, ...otherLengths] = new Set((cl ?? '0').split(',').map((v) => v.trim()));
    if (length === undefined || otherLengths.length !== 0 || !/^\d{1,15}$/.test(length)) return undefined;
    const bodyBytes = Number(length);

    if (this.#role === 'request') {
      const [, method, target] = REQUEST_LINE.exec(first) ?? [];
      if (method === undefined || target === undefined) return undefined;
      // Chunked request bodies and CONNECT tunnels are not followed.
      const framing = te !== undefined || method === 'CONNECT' ? 'raw' : bodyBytes > 0 ? 'length' : 'none';
      return { method, target, status: 0, framing, bodyBytes };
    }
    const [, code] = STATUS_LINE.exec(first) ?? [];
    if (code === undefined) return undefined;
    const status = Number(code);
    let framing: Framing;
    if (status === 101) framing = 'raw'; // protocol switch
    else if (status < 200 || status === 204 || status === 304 || this.#pendingMethod() === 'HEAD') framing = 'none';
    else if (te !== undefined) framing = /(?:^|,)\s*chunked\s*$/i.test(te) ? 'chunked' : 'raw';
    else if (cl !== undefined) framing = bodyBytes > 0 ? 'length' : 'none';
    else framing = 'raw'; // delimited by connection close
    return { method: '', target: '', status, framing, bodyBytes };
  }
}
