/**
 * The HTTP endpoints: one handler for the four endpoints (open, poll, send,
 * close), shared by the express Router and the plain node:http attachment.
 * It parses and checks each request, answers errors with status +
 * `{"error":{"code","message"}}`, and hands valid requests to the node
 * (session-registry.ts) and its polling transport (polling.ts). Every
 * response is complete (Content-Length), never cached (Cache-Control:
 * no-store), never streamed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ERROR_CONTENT_TYPE,
  HoldlineError,
  NEXT_HEADER,
  PATHS,
  WRITTEN_HEADER,
  RESPONSE_CONTENT_TYPE,
  decodeCloseRequest,
  decodeOpenRequest,
  decodePollRequest,
  decodePayloads,
  decodeSendEnvelope,
  encodeClose,
  isRpc,
  type PollRequest,
  type SendEnvelope,
  type SessionAuth,
  wireError,
} from '../shared/index.js';
import { readBody } from './body.js';
import { clockMs } from './clock.js';
import { tagErrorAnswer } from './metrics.js';
import { requestHeader } from './request-header.js';
import type { PollAnswerer, PollHandle } from './polling-host.js';
import type { AuthResult, SessionRegistry } from './session-registry.js';

type Endpoint = 'open' | 'poll' | 'send' | 'close';

/** Response header naming the node that answered (option nodeHeader). */
export const NODE_HEADER = 'Holdline-Node';
const EXPOSED = `${NEXT_HEADER}, ${NODE_HEADER}, ${WRITTEN_HEADER}`;

/** No CORS headers to add (same origin or no Origin): one object for every such request. */
const NO_CORS: Record<string, string> = Object.freeze({});

/**
 * Largest body of an open, poll or close: they carry a few short fields, so a
 * large one is garbage (and JSON with deep nesting costs time to parse).
 */
const CONTROL_BODY_BYTES = 4096;

/** A send batch of more messages than this is acknowledged before it is delivered. */
const SMALL_BATCH = 8;
const ENDPOINTS = new Map<string, Endpoint>(Object.entries(PATHS).map(([k, v]) => [v, k as Endpoint]));

/** Bodies longer than this are encoded to bytes here, once, rather than measured and then encoded by the socket. */
const ENCODE_AT = 4096;

/** Answer with `text`: JSON, or its UTF-8 bytes. */
function write(res: ServerResponse, status: number, text: string | Uint8Array, contentType: string, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  const body = typeof text === 'string' && text.length > ENCODE_AT ? Buffer.from(text, 'utf8') : text;
  // Headers as a flat list: node writes them as they are, where an object
  // goes through setHeader() and an entry object per header first (this runs
  // for every answer: ten thousand per broadcast at ten thousand sessions).
  const headers = [
    'Content-Type',
    contentType,
    'Content-Length',
    String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
    'Cache-Control',
    'no-store',
    'X-Content-Type-Options',
    'nosniff',
  ];
  if (extra !== undefined && extra !== NO_CORS) for (const [k, v] of Object.entries(extra)) headers.push(k, v);
  res.writeHead(status, headers);
  res.end(body);
}

function badAck(ack: number, from?: number): HoldlineError {
  const what = from === undefined ? `ack ${ack}` : `ack ${ack} or from ${from}`;
  return wireError('bad_ack', `${what} is past the last message sent`);
}

/** A send answer's headers: how far this node wrote the session's outbound stream, when it owns it. */
function writtenHeader(cors: Record<string, string>, session: { readonly writtenSeq: number } | undefined): Record<string, string> {
  const n = session?.writtenSeq ?? 0;
  return n === 0 ? cors : { ...cors, [WRITTEN_HEADER]: String(n) };
}

export function writeError(res: ServerResponse, err: HoldlineError, extra?: Record<string, string>): void {
  tagErrorAnswer(res, err.code);
  write(res, err.status ?? 500, JSON.stringify(err.toWire()), ERROR_CONTENT_TYPE, extra);
}

/** An answer not taken by the client within writeTimeoutMs: drop its connection (what it held is freed). */
function dropUnread(res: ServerResponse): void {
  if (!res.writableFinished) res.destroy();
}

/** The first of a comma-separated header's values, trimmed; undefined when empty. */
function firstValue(v: string | undefined): string | undefined {
  const first = v?.split(',')[0]?.trim().toLowerCase();
  return first === '' ? undefined : first;
}

/** A poll on a closed session gets the close frame (200); anything else the error. */
function failSession(res: ServerResponse, cors: Record<string, string>, s: Extract<AuthResult, { ok: false }>, isPoll: boolean): void {
  if (isPoll && s.closed) return write(res, 200, encodeClose(0, s.closed), RESPONSE_CONTENT_TYPE, cors);
  return writeError(res, s.error, cors);
}

/**
 * The HTTP layer answers held polls itself: a held poll is its
 * ServerResponse and nothing more (no object, listener or closure per poll:
 * an idle server holds one per session). Whether the client went away is
 * read off the socket; CORS headers are worked out again from the request.
 */
export class HttpHandler implements PollAnswerer {
  readonly #core: SessionRegistry;

  constructor(core: SessionRegistry) {
    this.#core = core;
  }

  /**
   * Handle a request whose path below the mount point is `subpath`
   * (e.g. '/poll'). Never throws; every path ends in a response, or in
   * nothing when the client has gone.
   */
  handle(req: IncomingMessage, res: ServerResponse, subpath: string): void {
    void this.#handleSafely(req, res, subpath);
  }

  async #handleSafely(req: IncomingMessage, res: ServerResponse, subpath: string): Promise<void> {
    try {
      await this.#handle(req, res, subpath);
    } catch (e) {
      // A session deleted while its request was under way (closed, expired,
      // taken over) is an ordinary answer, not a fault of the server.
      const routine = e instanceof HoldlineError && e.code === 'session_unknown';
      if (!routine) this.#core.reportError(e);
      writeError(res, e instanceof HoldlineError && e.status ? e : wireError('internal_error'));
    }
    this.#core.metrics.answered(res);
  }

  async #handle(req: IncomingMessage, res: ServerResponse, subpath: string): Promise<void> {
    if (this.#core.options.nodeHeader) res.setHeader(NODE_HEADER, this.#core.node);
    const cors = this.#cors(req);
    if (cors === null) {
      // Readable by the refused page, so its client fails at once with the code instead of retrying blind.
      const origin = String(requestHeader(req, 'origin'));
      return writeError(res, wireError('origin_not_allowed', `origin ${origin} is not allowed`), {
        'Access-Control-Allow-Origin': origin,
        Vary: 'Origin',
      });
    }
    const endpoint = ENDPOINTS.get(subpath);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': 'POST',
        'Access-Control-Allow-Headers': 'Content-Type',
        'Access-Control-Max-Age': '7200',
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    if (endpoint === undefined) return writeError(res, wireError('not_found', `no Holdline endpoint at ${subpath}`), cors);
    if (req.method !== 'POST') {
      return writeError(res, wireError('method_not_allowed'), { ...cors, Allow: 'POST, OPTIONS' });
    }
    const type = requestHeader(req, 'content-type');
    if (typeof type !== 'string' || !/^text\/plain\s*(;|$)/i.test(type)) {
      return writeError(res, wireError('unsupported_content_type', `content type must be text/plain, got ${type ?? 'none'}`), cors);
    }
    const body = await readBody(req, endpoint === 'send' ? this.#core.options.maxBatchBytes : CONTROL_BODY_BYTES, this.#core.options.bodyTimeoutMs);

    if (body === null) return; // client gone
    if (body instanceof HoldlineError) {
      // Stop reading an oversized upload: answer and drop the connection.
      return writeError(res, body, { ...cors, Connection: 'close' });
    }

    switch (endpoint) {
      case 'open': {
        const r = decodeOpenRequest(body);
        if (!r.ok) return writeError(res, r.error, cors);
        const opened = await this.#core.open(r.value, req);
        if (!opened.ok) return writeError(res, opened.error, cors);
        return write(res, 200, JSON.stringify(opened.value), RESPONSE_CONTENT_TYPE, cors);
      }
      case 'poll': {
        const r = decodePollRequest(body);
        if (!r.ok) return writeError(res, r.error, cors);
        return this.#poll(res, cors, r.value).catch((e: unknown) => this.#vanished(e, res, cors, r.value, true));
      }
      case 'send': {
        const r = decodeSendEnvelope(body);
        if (!r.ok) return writeError(res, r.error, cors);
        return this.#send(res, cors, r.value).catch((e: unknown) => this.#vanished(e, res, cors, r.value, false));
      }
      case 'close': {
        const r = decodeCloseRequest(body);
        if (!r.ok) return writeError(res, r.error, cors);
        let s = this.#core.authenticateSession(r.value);
        if (s instanceof Promise) s = await s;
        if (!s.ok && s.error.code !== 'session_closed') return writeError(res, s.error, cors);
        if (s.ok) {
          // The client's last ack first: the close event's `unacked` is then exactly what it never got.
          const { ack } = r.value;
          if (ack !== undefined) {
            try {
              await this.#core.applyAck(s.value, ack);
            } catch (e) {
              // Closed or gone meanwhile: the close goes on all the same.
              if (!(e instanceof HoldlineError)) throw e;
            }
          }
          this.#core.clientClose(s.value);
        }
        return write(res, 200, '{}', RESPONSE_CONTENT_TYPE, cors);
      }
    }
  }

  async #poll(res: ServerResponse, cors: Record<string, string>, q: PollRequest): Promise<void> {
    const core = this.#core;
    let s = core.authenticateSession(q);
    if (s instanceof Promise) s = await s;
    if (!s.ok) return failSession(res, cors, s, true);
    const { ack, from } = q;
    const hold = Math.min(q.hold ?? core.options.pollTimeoutMs, core.options.pollTimeoutMs);
    core.seen(s.value, hold);
    // The transport applies the ack once it holds the poll (one store call
    // for the ack and for what is pending), and says if it was refused.
    const applyAck = core.pollAck(s.value, ack, from);
    const taken = await core.polling.take(s.value.sid, s.value.session, res, hold, clockMs(), { from, ws: q.ws, ack, applyAck });
    if (!taken) writeError(res, badAck(ack, from), cors);
  }

  async #send(res: ServerResponse, cors: Record<string, string>, q: SendEnvelope): Promise<void> {
    const core = this.#core;
    let s = core.authenticateSession(q);
    if (s instanceof Promise) s = await s;
    if (!s.ok) return failSession(res, cors, s, false);
    const served = s.value;
    const { maxMessageBytes, maxBatchMessages } = core.options;
    if (q.m.length > maxBatchMessages) {
      return writeError(res, wireError('batch_too_large', `${q.m.length} messages; maxBatchMessages is ${maxBatchMessages}`), cors);
    }
    // Decoded only now, for a known session and a batch of bounded size.
    const decoded = decodePayloads(q.m);
    if (!decoded.ok) return writeError(res, decoded.error, cors);
    const m = decoded.value;
    const { seq } = q;
    for (const [i, msg] of m.entries()) {
      // A string of length n is at most 3n bytes of UTF-8: only long ones need counting.
      const size = typeof msg === 'string'
        ? msg.length * 3 <= maxMessageBytes ? 0 : Buffer.byteLength(msg)
        : isRpc(msg) ? Buffer.byteLength(msg.r) : msg.byteLength;
      if (size > maxMessageBytes) {
        return writeError(res, wireError('message_too_large', `message ${i} is ${size} bytes; maxMessageBytes is ${maxMessageBytes}`), cors);
      }
    }
    core.seen(served);
    let acked = core.applyAck(served, q.ack);
    if (acked instanceof Promise) acked = await acked;
    if (!acked) return writeError(res, badAck(q.ack), cors);
    let v = core.accept(served, seq, m);
    if (v instanceof Promise) v = await v;
    if (!v.ok) {
      return writeError(res, wireError('bad_sequence', `batch starts at ${seq}; the next expected message is ${v.expected}`), cors);
    }
    if (m.length - v.skip > SMALL_BATCH || !served.session) {
      // A large batch (or one its owner elsewhere delivers): the ack goes
      // first, so the client sends its next batch while the application
      // works through this one.
      write(res, 200, `{"ack":${v.ack}}`, RESPONSE_CONTENT_TYPE, writtenHeader(cors, served.session));
      return core.deliver(served, m, v.skip, seq, v.fence);
    }
    // A small one: delivered first, so an immediate reply (an echo) leaves on the poll before this answer.
    core.deliver(served, m, v.skip, seq, v.fence);
    await served.session.committed();
    await core.polling.settled(served.sid);
    return write(res, 200, `{"ack":${v.ack}}`, RESPONSE_CONTENT_TYPE, writtenHeader(cors, served.session));
  }

  /**
   * A session that vanished while its request was under way (closed here or
   * on another node) throws session_unknown: when it left a reason, answer
   * as a request a moment later is told (a poll the close frame, a send
   * 410). Anything else goes on to #handleSafely.
   */
  async #vanished(e: unknown, res: ServerResponse, cors: Record<string, string>, auth: SessionAuth, isPoll: boolean): Promise<void> {
    if (!(e instanceof HoldlineError && e.code === 'session_unknown') || res.headersSent) throw e;
    const s = await Promise.resolve(this.#core.authenticateSession(auth)).catch(() => undefined);
    if (s === undefined || s.ok) throw e;
    failSession(res, cors, s, isPoll);
  }

  gone(poll: PollHandle): boolean {
    const res = poll as ServerResponse;
    // The request's socket, not the response's: a response queued behind
    // another on a pipelined connection has no socket of its own yet.
    return res.writableEnded || res.destroyed || res.req.socket.destroyed;
  }

  respond(poll: PollHandle, body: string | Uint8Array, next?: number): void {
    const res = poll as ServerResponse;
    // Allowed when the poll came (#handle checked it); the same request gives the same answer now.
    const cors = this.#cors(res.req) ?? NO_CORS;
    write(res, 200, body, RESPONSE_CONTENT_TYPE, next === undefined ? cors : { ...cors, [NEXT_HEADER]: String(next) });
    const socket = res.socket;
    // Not all taken by the kernel (the client reads slowly, or not at all):
    // it must finish within writeTimeoutMs, or the connection is dropped.
    if (socket && socket.writableLength > 0) {
      const timer = setTimeout(dropUnread, this.#core.options.writeTimeoutMs, res);
      timer.unref();
      res.once('finish', () => clearTimeout(timer));
      res.once('close', () => clearTimeout(timer));
    }
  }

  unread(poll: PollHandle): boolean {
    const res = poll as ServerResponse;
    return !res.writableFinished && !res.destroyed && (res.socket?.writableLength ?? 0) > 0;
  }

  whenRead(poll: PollHandle, fn: () => void): void {
    const res = poll as ServerResponse;
    res.once('finish', fn);
    res.once('close', fn);
  }

  /** The request's Origin may call (same origin, allowed, or none): the WebSocket endpoint asks too. */
  originAllowed(req: IncomingMessage): boolean {
    return this.#cors(req) !== null;
  }

  /** CORS headers to add, {} for no Origin / same origin, or null to refuse. */
  #cors(req: IncomingMessage): Record<string, string> | null {
    const origin = requestHeader(req, 'origin');
    if (origin === undefined) return NO_CORS;
    const allowed = this.#core.options.allowedOrigins;
    if (allowed === '*' || allowed?.has(origin)) {
      return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': EXPOSED, Vary: 'Origin' };
    }
    return origin === this.#ownOrigin(req) ? NO_CORS : null;
  }

  /**
   * The origin the request was made to, as a browser names it: scheme, host
   * and port. Behind a proxy (`trustProxy`), as X-Forwarded-Proto and
   * X-Forwarded-Host say; else the connection's scheme and the Host header.
   */
  #ownOrigin(req: IncomingMessage): string | undefined {
    const trust = this.#core.options.trustProxy;
    const fwdProto = trust ? firstValue(requestHeader(req, 'x-forwarded-proto')) : undefined;
    const fwdHost = trust ? firstValue(requestHeader(req, 'x-forwarded-host')) : undefined;
    const scheme = fwdProto ?? ((req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http');
    const host = fwdHost ?? requestHeader(req, 'host');
    if (host === undefined || (scheme !== 'http' && scheme !== 'https')) return undefined;
    try {
      // Normalised as a browser's Origin is: lower case, default port dropped.
      return new URL(`${scheme}://${host}`).origin;
    } catch {
      return undefined;
    }
  }
}

