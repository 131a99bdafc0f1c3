/**
 * One POST through undici's dispatch(), with a handler of our own (see
 * Exchange), and what it needs: the lanes and targets it is sent on, the
 * deadline watch, and how its failures become HoldlineErrors.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';
import { HoldlineError, REQUEST_CONTENT_TYPE } from '../../shared/index.js';
import type { HeadListener, HttpAnswer, ResponseHead } from '../platform.js';
import { proxyAuthError } from './proxy-config.js';
import type { LaneDispatcher } from './proxy-dispatcher.js';

/**
 * The error codes of a connection lost under a request: the peer closed it
 * (undici's SocketError, "other side closed"), reset it, or it broke while the
 * request was being written. Not our own abort or deadline, not a refused or
 * timed-out connect (nothing to gain from trying again at once).
 */
const CONNECTION_LOST = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export function isConnectionLost(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = err.code;
  return typeof code === 'string' && CONNECTION_LOST.has(code);
}

/** As a flat list: undici takes it as it is (an object costs an Object.keys() per request). */
export const REQUEST_HEADERS = ['content-type', REQUEST_CONTENT_TYPE];

/** The send lane's dispatcher, and the poll lane's two. */
export interface Lanes {
  send: LaneDispatcher;
  polls: [LaneDispatcher, LaneDispatcher];
}

/** A URL split the way undici's dispatch() takes it, with its dispatchers, cached: a client posts to four URLs. */
export interface Target {
  url: string;
  origin: string;
  path: string;
  lanes: Lanes;
}

export function toRequestError(e: unknown, url: string, signal: AbortSignal): HoldlineError {
  if (e instanceof HoldlineError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new HoldlineError(signal.aborted ? 'timeout' : 'network_error', `POST ${url} failed: ${message}`, { cause: e });
}

/**
 * The exchanges in flight on each deadline signal. A client reuses one signal
 * per lane until it fires, so one 'abort' listener per signal does instead of
 * an addEventListener/removeEventListener pair per request (EventTarget's are
 * costly: a client process with a thousand clients polls thousands of times a
 * second).
 */
const inFlight = new WeakMap<AbortSignal, Set<Exchange>>();

function watch(signal: AbortSignal, exchange: Exchange): void {
  let set = inFlight.get(signal);
  if (!set) {
    const watched = (set = new Set());
    inFlight.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        for (const e of watched) e.abort();
        watched.clear();
      },
      { once: true },
    );
  }
  set.add(exchange);
}

/** Polls in flight on each of the poll lane's two dispatchers. */
export type PollSlots = [number, number];

/**
 * One exchange through undici's dispatch(), with a handler of our own that
 * collects the body: undici's request() adds a stream, a promise chain and a
 * text decoder per request (measured: ~90 us more client CPU per 110 KB poll
 * answer on the bench machine). It also sends its request once more when the
 * connection is lost before its answer's head is in (see the top of this file).
 */
export class Exchange implements Dispatcher.DispatchHandler, ResponseHead {
  readonly #resolve: (a: HttpAnswer) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: AbortSignal;
  readonly #listener: HeadListener | undefined;
  readonly #target: Target;
  readonly #dispatcher: LaneDispatcher;
  readonly #body: string;
  readonly #reset: boolean;
  readonly #maxBodyBytes: number;
  #bodyBytes = 0;
  /** The poll slot it holds (a count in `#slots`), or -1 (a send). */
  readonly #slot: 0 | 1 | -1;
  readonly #slots: PollSlots;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  /** An answer's head (a 1xx too) is in, the first undici reports: from then on a lost connection is an error, not a reason to send again. */
  #answered = false;
  #resent = false;
  #status = 0;
  #chunks: Buffer[] = [];
  /** The listener started another request: let it go out before we settle (see onResponseEnd). */
  #yield = false;
  #settled = false;

  constructor(
    target: Target,
    dispatcher: LaneDispatcher,
    body: string,
    reset: boolean,
    maxBodyBytes: number,
    signal: AbortSignal,
    listener: HeadListener | undefined,
    slots: PollSlots,
    slot: 0 | 1 | -1,
    resolve: (a: HttpAnswer) => void,
    reject: (e: unknown) => void,
  ) {
    this.#target = target;
    this.#dispatcher = dispatcher;
    this.#body = body;
    this.#reset = reset;
    this.#maxBodyBytes = maxBodyBytes;
    this.#signal = signal;
    this.#listener = listener;
    this.#slots = slots;
    this.#slot = slot;
    this.#resolve = resolve;
    this.#reject = reject;
    if (slot !== -1) slots[slot]++;
    watch(signal, this);
  }

  /** Hands the request to its dispatcher (again, for a resend). */
  start(): void {
    const t = this.#target;
    try {
      this.#dispatcher.dispatch({ origin: t.origin, path: t.path, method: 'POST', body: this.#body, headers: REQUEST_HEADERS, reset: this.#reset }, this);
    } catch (e) {
      this.#fail(e);
    }
  }

  /** The deadline fired (or the client closed). */
  abort(): void {
    this.#controller?.abort(this.#signal.reason);
    this.#fail(this.#signal.reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#settled) controller.abort(this.#signal.reason ?? new Error('aborted'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.#answered = true;
    if (status < 200) return; // 1xx: the real answer follows
    this.#status = status;
    this.#headers = headers;
    const length = Number(this.header('content-length') ?? NaN);
    if (length > this.#maxBodyBytes) return this.#tooLarge(controller, `Content-Length ${length}`);
    this.#yield = this.#listener?.onHead(this) === true;
  }

  /** The answer is over maxBodyBytes: fail with bad_response and abort, which drops the connection. */
  #tooLarge(controller: Dispatcher.DispatchController, seen: string): void {
    const err = new HoldlineError('bad_response', `the answer to POST ${this.#target.url} is larger than ${this.#maxBodyBytes} bytes (${seen}): not read`);
    this.#chunks = [];
    this.#fail(err);
    controller.abort(err);
  }

  get status(): number {
    return this.#status;
  }

  header(name: string): string | undefined {
    const v = this.#headers?.[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes > this.#maxBodyBytes) return this.#tooLarge(controller, `${this.#bodyBytes} bytes so far`);
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    if (this.#status === 407) return this.#fail(proxyAuthError('407'));
    const chunks = this.#chunks;
    let body = '';
    if (chunks.length === 1) body = String(chunks[0]);
    else if (chunks.length > 1) {
      // Decoded piece by piece rather than joined first: no copy of the body as bytes.
      const decoder = new StringDecoder('utf8');
      for (const c of chunks) body += decoder.write(c);
      body += decoder.end();
    }
    const answer = { status: this.#status, body };
    // undici writes a request on a reused socket one event-loop turn later
    // (setImmediate: it first checks the idle socket). If the listener started
    // one there, let that turn pass before the caller works on this answer.
    if (this.#yield) setImmediate(() => this.#done(answer));
    else this.#done(answer);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (!this.#resent && !this.#answered && !this.#settled && !this.#signal.aborted && isConnectionLost(err)) {
      this.#resent = true;
      this.#controller = undefined;
      // Out of undici's error path first: it is still failing the queue of the lost connection.
      queueMicrotask(() => {
        if (!this.#settled) this.start();
      });
      return;
    }
    this.#fail(err);
  }

  #done(answer: HttpAnswer): void {
    if (this.#settle()) this.#resolve(answer);
  }

  #fail(err: unknown): void {
    if (this.#settle()) this.#reject(toRequestError(err, this.#target.url, this.#signal));
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    inFlight.get(this.#signal)?.delete(this);
    if (this.#slot !== -1) this.#slots[this.#slot]--;
    return true;
  }
}
