/**
 * What the early-poll tests (`*.test.ts` in this folder) share: raw poll
 * answers and errors read as such, waiting, a client that records what it
 * receives and every sign of trouble, payloads and ways to send them, and the
 * server-side tap.
 *
 * The server side is observed without changing what it does: a 'request'
 * listener added after attach() sees each request and its response object; it
 * records the body by watching 'data' events (both the synchronous read() path
 * and the streaming path emit them) and the answer by wrapping writeHead/end.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldlineClient, type HoldlineError, type ResetEvent } from '../../client/index.js';
import type { Session } from '../../server/index.js';
import { NEXT_HEADER, type CloseReason, type Payload } from '../../shared/index.js';
import type { RunningHoldline } from '../helpers/holdline.js';
import type { RawResponse, RawSession } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

export { assertError, assertExactlyOnce } from '../helpers/assertions.js';
export { waitFor };

export const json = (v: unknown) => JSON.stringify(v);
export const fast = { reconnect: { minDelayMs: 5, maxDelayMs: 50 } };

export function sessionOf(hl: RunningHoldline, s: RawSession): Session {
  const session = hl.server.session(s.sid);
  assert.ok(session, 'the raw session exists on the server');
  return session;
}

export interface PollAnswer {
  status: number;
  /** The Holdline-Next header, as a number; undefined when absent. */
  next: number | undefined;
  seq: number;
  m: unknown[];
}

export function answerOf(res: RawResponse): PollAnswer {
  assert.equal(res.status, 200, res.text);
  const header = res.headers[NEXT_HEADER.toLowerCase()];
  const body = JSON.parse(res.text) as { seq: number; m: unknown[] };
  return { status: res.status, next: header === undefined ? undefined : Number(header), seq: body.seq, m: body.m };
}


// ---- server-side observation ----

/** One request seen by the tap, with its answer once written. */
export interface Tapped {
  path: string;
  /** Order of arrival (across every path). */
  index: number;
  req: IncomingMessage;
  res: ServerResponse;
  /** The request body as the server read it (complete once the server acted on it). */
  body(): string;
  /** Set when the answer is written. */
  answer?: { status: number; headers: Record<string, unknown>; body: string; cut: boolean };
}

export interface TapOptions {
  /** Change an answer's headers (in place) before they are written. */
  rewrite?: (t: Tapped, status: number, headers: Record<string, unknown>) => void;
  /** Decide, as the answer is about to be written, to send only part of its body and then drop the connection. */
  cut?: (t: Tapped, status: number, headers: Record<string, unknown>, body: string) => boolean;
  /** Called when the answer is about to be written (before `cut`). */
  onAnswer?: (t: Tapped) => void;
}

/**
 * Watch every Holdline request on `http` (must be called after attach()).
 * Nothing about the request or the response changes unless `cut` says so.
 */
export function tap(http: Server, options: TapOptions = {}): Tapped[] {
  const seen: Tapped[] = [];
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/^.*\//, '/');
    const t: Tapped = { path, index: seen.length, req, res, body: () => Buffer.concat(chunks).toString('utf8') };
    seen.push(t);
    // Both req.read() and flowing mode emit 'data' for every chunk they hand out.
    const emit = req.emit;
    req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'data') chunks.push(Buffer.from(args[0] as Buffer));
      return emit.call(this, event, ...args);
    } as IncomingMessage['emit'];
    let status = 0;
    let headers: Record<string, unknown> = {};
    const writeHead = res.writeHead as (...a: unknown[]) => ServerResponse;
    (res as unknown as { writeHead: (...a: unknown[]) => ServerResponse }).writeHead = function (this: ServerResponse, ...a: unknown[]) {
      status = a[0] as number;
      const at = a.findIndex((x, i) => i > 0 && typeof x === 'object' && x !== null);
      const h = a[at];
      // The server passes headers as a flat list [name, value, ...]: seen here as an object.
      headers = Array.isArray(h) ? Object.fromEntries(Array.from({ length: h.length / 2 }, (_, i) => [h[2 * i], h[2 * i + 1]])) : ((h ?? {}) as Record<string, unknown>);
      options.rewrite?.(t, status, headers);
      if (Array.isArray(h)) a[at] = Object.entries(headers).flat();
      return writeHead.apply(this, a);
    };
    const end = res.end as (...a: unknown[]) => ServerResponse;
    (res as unknown as { end: (...a: unknown[]) => ServerResponse }).end = function (this: ServerResponse, ...a: unknown[]) {
      const chunk = a[0];
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      t.answer = { status, headers, body: text, cut: false };
      options.onAnswer?.(t);
      if (text.length > 0 && options.cut?.(t, status, headers, text)) {
        t.answer.cut = true;
        const bytes = Buffer.from(text, 'utf8');
        // Headers and half the body reach the client; then the connection ends short of Content-Length.
        this.write(bytes.subarray(0, bytes.length >> 1), () => this.socket?.destroy());
        return this;
      }
      return end.apply(this, a);
    };
  });
  return seen;
}

export interface PollSeen {
  ack: number;
  from: number | undefined;
}

/** The poll requests the server received, in order of arrival, as it decoded them. */
export function polls(seen: Tapped[]): PollSeen[] {
  return seen
    .filter((t) => t.path === '/poll')
    .map((t) => {
      const o = JSON.parse(t.body()) as { ack: number; from?: number };
      return { ack: o.ack, from: o.from };
    });
}


/** A client that records what it receives and every sign of trouble. */
export function recordingClient(url: string, options: ConstructorParameters<typeof HoldlineClient>[1] = fast) {
  // Early polls are polling's: the client stays on it.
  const client = new HoldlineClient(url, { transports: ['polling'], ...options });
  const got: string[] = [];
  const events: string[] = [];
  client.on('message', (d: Payload) => got.push(typeof d === 'string' ? d : `binary:${d.byteLength}`));
  client.on('error', (e: HoldlineError) => events.push(`error ${e.code}: ${e.message}`));
  client.on('reset', (e: ResetEvent) => events.push(`reset ${e.reason.code}`));
  client.on('close', (r: CloseReason) => events.push(`close ${r.code}`));
  return { client, got, events };
}

export const payload100 = (i: number) => `${String(i).padStart(6, '0')}:${'p'.repeat(93)}`; // 100 bytes

/** Send `messages` in bursts of `size` (so that batches are full and answers large), a pause between bursts. */
export async function sendInBursts(s: Session, messages: string[], size: number): Promise<void> {
  for (let i = 0; i < messages.length; i += size) {
    await Promise.all(messages.slice(i, i + size).map((m) => s.send(m)));
    await sleep(5);
  }
}

/** Once the session's first poll is held, the server sends `expected` at once; returns the session once it opened. */
export function sendOnFirstPoll(hl: RunningHoldline, expected: string[]): () => Session | undefined {
  let session: Session | undefined;
  hl.server.once('session', (s: Session) => {
    session = s;
    void (async () => {
      await waitFor(() => s.holdingPoll, 5_000, () => 'the first poll');
      await Promise.all(expected.map((m) => s.send(m)));
    })();
  });
  return () => session;
}
