/**
 * One plain-HTTP/1.1 keep-alive connection to one origin, for the Node
 * client's direct path (http://, no proxy). It takes the same dispatch()
 * call and handler as an undici Client, with a fraction of the work per
 * request: no request object and header validation, no idle-socket check
 * that waits an event-loop turn before every request on a reused socket.
 *
 * Requests go one at a time, in order (no pipelining): a request is written
 * once the answer before it is complete. They carry no Connection header
 * (keep-alive is HTTP/1.1's default) unless `reset` asks for close. Answers
 * may be framed by Content-Length,
 * by chunked transfer coding, or by the end of the connection; 1xx interim
 * answers are skipped. Anything else it cannot read (a malformed status line
 * or header, a head over 64 KiB, a body over 64 MiB) fails the request and
 * closes the connection, as does abort(): an HTTP/1.1 request cannot be
 * withdrawn otherwise. An idle connection closes itself after
 * `keepAliveTimeoutMs`, before a server's own idle timeout can race a new
 * request (Node's default is 5 s).
 */
import net from 'node:net';

export type Headers = Record<string, string | string[] | undefined>;

/** What dispatch() reports to, shaped as undici's DispatchHandler (the subset the client uses). */
export interface Http1Handler {
  onRequestStart?(controller: Http1Controller, context: unknown): void;
  onResponseStart?(controller: Http1Controller, status: number, headers: Headers, statusText: string): void;
  onResponseData?(controller: Http1Controller, chunk: Buffer): void;
  onResponseEnd?(controller: Http1Controller, trailers: Headers): void;
  onResponseError?(controller: Http1Controller, err: Error): void;
}

export interface Http1Controller {
  abort(reason?: unknown): void;
}

export interface Http1Request {
  path: string;
  method: 'POST';
  body: string;
  /** Flat list: name, value, name, value… */
  headers: string[];
  /** Close the connection after this exchange (no keep-alive). */
  reset?: boolean;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const LF = 0x0a;

const enum Read {
  /** No request in flight: any byte from the server is an error. */
  Idle,
  StatusLine,
  Headers,
  /** Content-Length bytes left in `#left`. */
  Length,
  ChunkSize,
  /** Chunk bytes left in `#left`. */
  ChunkData,
  /** The CRLF after a chunk's data. */
  ChunkEnd,
  Trailers,
  /** Until the server closes the connection. */
  UntilClose,
}

class ProtocolError extends Error {}

/** Where a status line's code sits: "HTTP/1.x NNN", then the end or a space and the reason. */
const STATUS_RE = /^HTTP\/1\.[01] \d{3}(?: |$)/;

interface Pending {
  request: Http1Request;
  handler: Http1Handler;
  controller: Http1Controller;
}

export class Http1Connection {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #keepAliveTimeoutMs: number;
  #socket: net.Socket | undefined;
  readonly #queue: Pending[] = [];
  #current: Pending | undefined;
  #read = Read.Idle;
  /** Bytes of a line not yet ended (status line, header, chunk size, trailer). */
  #partial: Buffer | undefined;
  #headBytes = 0;
  #status = 0;
  #statusText = '';
  #headers: Headers = {};
  #left = 0;
  #bodyBytes = 0;
  /** The answer in progress ends the connection (Connection: close, HTTP/1.0, or close-delimited). */
  #closeAfter = false;
  /** The socket is unref'd with its idle timeout set (see #complete). */
  #idle = false;
  #destroyed = false;

  constructor(origin: string, options: { keepAliveTimeoutMs: number }) {
    const u = new URL(origin);
    if (u.protocol !== 'http:') throw new TypeError(`Http1Connection speaks plain http only, not ${u.protocol}`);
    this.#host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = u.port === '' ? 80 : Number(u.port);
    this.#hostHeader = u.host;
    this.#keepAliveTimeoutMs = options.keepAliveTimeoutMs;
  }

  dispatch(request: Http1Request, handler: Http1Handler): boolean {
    if (this.#destroyed) {
      handler.onResponseError?.({ abort() {} }, new Error('the connection is closed'));
      return false;
    }
    const pending: Pending = { request, handler, controller: { abort: () => this.#abort(pending) } };
    this.#queue.push(pending);
    handler.onRequestStart?.(pending.controller, {});
    if (!this.#current) this.#next();
    return true;
  }

  /** Close the connection; requests in flight or queued fail. */
  destroy(): Promise<void> {
    this.#destroyed = true;
    const err = new Error('the connection was closed');
    for (const p of this.#queue.splice(0)) p.handler.onResponseError?.(p.controller, err);
    this.#fail(err);
    return Promise.resolve();
  }

  #next(): void {
    const pending = this.#queue.shift();
    if (!pending) return;
    this.#current = pending;
    const socket = this.#connected();
    if (this.#idle) {
      // In flight: the connection keeps the process alive and has no idle timeout.
      this.#idle = false;
      socket.ref();
      socket.setTimeout(0);
    }
    this.#read = Read.StatusLine;
    this.#headBytes = 0;
    this.#closeAfter = pending.request.reset === true;
    const { request } = pending;
    // No "connection: keep-alive": it is HTTP/1.1's default, and a server
    // holding a poll holds every header line of it.
    let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\n${this.#closeAfter ? 'connection: close\r\n' : ''}`;
    const h = request.headers;
    for (let i = 0; i + 1 < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    head += `content-length: ${Buffer.byteLength(request.body)}\r\n\r\n`;
    // One write, so head and body leave in one segment when they fit.
    socket.write(head + request.body);
  }

  #connected(): net.Socket {
    const existing = this.#socket;
    if (existing && !existing.destroyed) return existing;
    const socket = net.connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    this.#idle = false;
    let lastError: Error | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      try {
        this.#parse(socket, chunk);
      } catch (e) {
        if (this.#socket === socket) this.#fail(e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on('timeout', () => {
      // Idle past keepAliveTimeoutMs (a request in flight sets no timeout).
      if (this.#socket === socket && !this.#current) this.#drop(socket);
    });
    socket.on('error', (e) => {
      lastError = e; // 'close' follows and reports it
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      if (!this.#current) return;
      if (this.#read === Read.UntilClose) this.#complete();
      else this.#fail(lastError ?? new Error('the server closed the connection before the answer was complete'));
    });
    return socket;
  }

  #drop(socket: net.Socket): void {
    if (this.#socket === socket) this.#socket = undefined;
    socket.destroy();
  }

  #abort(pending: Pending): void {
    const i = this.#queue.indexOf(pending);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      return;
    }
    // In flight: only closing the connection withdraws it. The handler reports its own abort.
    if (this.#current === pending) this.#fail(undefined);
  }

  /** End the exchange in flight with `err` (undefined: aborted, nothing to report) and close the connection. */
  #fail(err: Error | undefined): void {
    const current = this.#current;
    this.#current = undefined;
    this.#read = Read.Idle;
    this.#partial = undefined;
    if (this.#socket) this.#drop(this.#socket);
    if (current && err) current.handler.onResponseError?.(current.controller, err);
    if (!this.#destroyed) this.#next();
  }

  #complete(): void {
    const current = this.#current as Pending;
    this.#current = undefined;
    this.#read = Read.Idle;
    this.#partial = undefined;
    const socket = this.#socket;
    if (socket && this.#closeAfter) this.#drop(socket);
    else if (socket && this.#queue.length === 0) {
      // Idle: closes itself in time, and keeps no process alive.
      this.#idle = true;
      socket.setTimeout(this.#keepAliveTimeoutMs);
      socket.unref();
    }
    current.handler.onResponseEnd?.(current.controller, {});
    if (!this.#destroyed) this.#next();
  }

  #parse(socket: net.Socket, chunk: Buffer): void {
    let at = 0;
    // Stops when the connection is dropped (a handler aborted, or the answer ended it).
    while (at < chunk.length && this.#socket === socket) {
      switch (this.#read) {
        case Read.Idle:
          throw new ProtocolError('the server sent bytes with no request in flight');
        case Read.Length: {
          const n = Math.min(this.#left, chunk.length - at);
          this.#data(chunk.subarray(at, at + n));
          if (this.#socket !== socket) return; // the handler ended it
          at += n;
          this.#left -= n;
          if (this.#left === 0) return this.#finish(chunk, at);
          break;
        }
        case Read.ChunkData: {
          const n = Math.min(this.#left, chunk.length - at);
          this.#data(chunk.subarray(at, at + n));
          at += n;
          this.#left -= n;
          if (this.#left === 0) this.#read = Read.ChunkEnd;
          break; // the loop stops if the handler ended it
        }
        case Read.UntilClose:
          this.#data(at === 0 ? chunk : chunk.subarray(at));
          return;
        default: {
          // A line: status, header, chunk size, chunk end or trailer.
          const lf = chunk.indexOf(LF, at);
          const end = lf < 0 ? chunk.length : lf + 1;
          // Counted per section (head, a chunk's size line, trailers), so a long chunked body is no head.
          this.#headBytes += end - at;
          if (this.#headBytes > MAX_HEAD_BYTES) throw new ProtocolError('the answer\'s head is over 64 KiB');
          if (lf < 0) {
            const rest = chunk.subarray(at);
            this.#partial = this.#partial ? Buffer.concat([this.#partial, rest]) : Buffer.from(rest);
            return;
          }
          let line = chunk.subarray(at, lf);
          if (this.#partial) {
            line = Buffer.concat([this.#partial, line]);
            this.#partial = undefined;
          }
          at = end;
          const text = line.toString('latin1');
          this.#line(text.endsWith('\r') ? text.slice(0, -1) : text);
          if (this.#socket !== socket) return; // the handler ended it
          if ((this.#read as Read) === Read.Idle) return this.#finish(chunk, at);
        }
      }
    }
  }

  /**
   * The answer ended at `at` in `chunk`. Bytes after it answer nothing we
   * asked: the answer stands, but this connection is not used again.
   */
  #finish(chunk: Buffer, at: number): void {
    if (at < chunk.length) this.#closeAfter = true;
    this.#complete();
  }

  #data(bytes: Buffer): void {
    this.#bodyBytes += bytes.length;
    if (this.#bodyBytes > MAX_BODY_BYTES) throw new ProtocolError('the answer\'s body is over 64 MiB');
    const current = this.#current as Pending;
    current.handler.onResponseData?.(current.controller, bytes);
  }

  #line(line: string): void {
    switch (this.#read) {
      case Read.StatusLine: {
        // Checked by one anchored test, then read by position.
        if (!STATUS_RE.test(line)) throw new ProtocolError(`not an HTTP/1.x status line: ${JSON.stringify(line.slice(0, 80))}`);
        if (line.charCodeAt(7) === 0x30) this.#closeAfter = true; // HTTP/1.0
        this.#status = Number(line.slice(9, 12));
        this.#statusText = line.slice(13);
        this.#headers = {};
        this.#read = Read.Headers;
        return;
      }
      case Read.Headers: {
        if (line !== '') return this.#header(line);
        return this.#headEnded();
      }
      case Read.ChunkSize: {
        const size = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line);
        if (!size) throw new ProtocolError(`bad chunk size line: ${JSON.stringify(line.slice(0, 80))}`);
        this.#left = parseInt(size[1], 16);
        this.#read = this.#left === 0 ? Read.Trailers : Read.ChunkData;
        return;
      }
      case Read.ChunkEnd:
        if (line !== '') throw new ProtocolError('chunk data longer than its size');
        this.#headBytes = 0;
        this.#read = Read.ChunkSize;
        return;
      case Read.Trailers:
        if (line === '') this.#read = Read.Idle; // complete
        return;
    }
  }

  #header(line: string): void {
    const colon = line.indexOf(':');
    const before = line.charCodeAt(colon - 1);
    if (colon <= 0 || before === 0x20 || before === 0x09) throw new ProtocolError(`bad header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = this.#headers[name];
    this.#headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }

  #headEnded(): void {
    const status = this.#status;
    if (status < 200) {
      if (status === 101) throw new ProtocolError('the server switched protocols');
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      this.#read = Read.StatusLine;
      return;
    }
    const h = this.#headers;
    if (h.connection !== undefined && /(^|,)\s*close\s*(,|$)/i.test(String(h.connection))) this.#closeAfter = true;
    const current = this.#current as Pending;
    this.#bodyBytes = 0;
    this.#headBytes = 0;
    current.handler.onResponseStart?.(current.controller, status, h, this.#statusText);
    if (this.#current !== current) return; // the handler aborted it
    const te = h['transfer-encoding'];
    const length = h['content-length'];
    if (status === 204 || status === 304) {
      this.#read = Read.Idle;
    } else if (te !== undefined) {
      const codings = String(te).toLowerCase();
      this.#read = /(^|,)\s*chunked\s*$/.test(codings) ? Read.ChunkSize : Read.UntilClose;
      if (this.#read === Read.UntilClose) this.#closeAfter = true;
    } else if (length !== undefined) {
      const values = Array.isArray(length) ? length : [length];
      if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0])) throw new ProtocolError(`bad content-length: ${String(length)}`);
      this.#left = Number(values[0]);
      this.#read = this.#left === 0 ? Read.Idle : Read.Length;
    } else {
      this.#read = Read.UntilClose;
      this.#closeAfter = true;
    }
  }
}
