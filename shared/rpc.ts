/**
 * Calls with replies, both ways: one small class used by the client and by
 * each server session. It numbers the requests this end makes, matches the
 * replies, runs the application's request listeners for the requests the
 * other end makes and sends their replies. Frames go out through the end's
 * own reliable stream (`send` hook), so a request and its reply survive lost
 * requests and reconnects, and the stream's dedupe delivers each once: a
 * request's listener runs once, its reply settles it once.
 *
 * Outcomes, never a hang: a reply (resolve); an error reply (`request_failed`,
 * the other side's code in `replyCode`); no reply within `timeoutMs`
 * (`timeout`); the signal aborts (`aborted`); the session is lost or closed
 * (`session_lost`, or why it closed). On the answering side, a request with
 * no listener, or whose listener throws or rejects, gets an error reply
 * (`no_handler`, `handler_error`).
 */
import { HoldlineError } from './errors.js';
import { isPayload, type Payload, type RpcWire } from './payload.js';
import type { OutboxEntry } from './outbox.js';
import { decodeFrame, encodeErrorReply, encodeReply, encodeRequest } from './rpc-codec.js';

/** How long a request waits for its reply by default. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface RequestOptions {
  /** Reject with `timeout` when no reply came within this long (default 30 s). */
  timeoutMs?: number;
  /** Reject with `aborted` when this aborts (the other side may still run its listener). */
  signal?: AbortSignal;
}

/**
 * The second argument of a `request` listener: call it once with the reply
 * (a string or Uint8Array), or with an Error (its `code`, a string, goes to
 * the requester as `replyCode`; default `handler_error`). Later calls are
 * ignored. A listener may instead return the reply, or a promise of it.
 */
export type Reply<T extends Payload = Payload> = (result: T | Error) => void;

/** A `request` listener. */
export type RequestListener<In extends Payload = Payload, Out extends Payload = Payload> = (data: In, reply: Reply<Out>) => unknown;

export interface RpcHooks {
  /** Queue a frame on this end's reliable stream. */
  send(entry: OutboxEntry): Promise<void>;
  /** The application's request listeners, in order. */
  listeners(): readonly RequestListener[];
  /** An error nobody else will see (a reply that could not be sent). */
  report(err: unknown): void;
}

interface Pending {
  resolve(data: Payload): void;
  reject(err: HoldlineError): void;
}

/** Why a reply could not be sent that is nobody's fault: its session (or the whole end) is over. */
const ENDED: ReadonlySet<string> = new Set(['session_closed', 'session_lost', 'client_closed', 'server_closed']);

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'handler_error';
}

export class RpcPeer {
  readonly #hooks: RpcHooks;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(hooks: RpcHooks) {
    this.#hooks = hooks;
  }

  /** Requests sent and not yet settled. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Send a request; resolves with the other side's reply. `refuse` is the error for an end that cannot send now. */
  request(data: Payload, options: RequestOptions | undefined, refuse?: HoldlineError): Promise<Payload> {
    if (!isPayload(data)) return Promise.reject(new HoldlineError('invalid_argument', `request() takes a string or Uint8Array, got ${typeof data}`));
    const o = options ?? {};
    if (typeof o !== 'object') return Promise.reject(new HoldlineError('invalid_argument', 'request() options must be an object such as { timeoutMs: 5000 }'));
    const timeoutMs = o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
      return Promise.reject(new HoldlineError('invalid_argument', `option "timeoutMs" must be an integer from 1 to 2147483647, got ${String(timeoutMs)}`));
    }
    const { signal } = o;
    if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof signal.addEventListener === 'function')) {
      return Promise.reject(new HoldlineError('invalid_argument', 'option "signal" must be an AbortSignal'));
    }
    if (refuse) return Promise.reject(refuse);
    if (signal?.aborted) return Promise.reject(new HoldlineError('aborted', 'the request was aborted before it was sent', { cause: signal.reason }));
    const id = this.#nextId++;
    return new Promise<Payload>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const onAbort = () => {
        done();
        reject(new HoldlineError('aborted', `request ${id} was aborted`, { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        done();
        reject(new HoldlineError('timeout', `no reply to request ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (d) => (done(), resolve(d)),
        reject: (e) => (done(), reject(e)),
      });
      this.#hooks.send(encodeRequest(id, data)).catch((e: unknown) => {
        this.#pending.get(id)?.reject(e instanceof HoldlineError ? e : new HoldlineError('internal_error', String(e), { cause: e }));
      });
    });
  }

  /** Every pending request fails with `error` (the session was lost or closed). */
  failAll(error: HoldlineError): void {
    for (const p of [...this.#pending.values()]) p.reject(error);
  }

  /** A frame came off the stream (once: the stream dedupes). */
  receive(w: RpcWire): void {
    const f = decodeFrame(w);
    if (f === undefined) return this.#hooks.report(new HoldlineError('bad_response', 'a request/reply frame that is not one'));
    switch (f.kind) {
      case 'reply':
        return this.#pending.get(f.id)?.resolve(f.data);
      case 'error':
        return this.#pending.get(f.id)?.reject(new HoldlineError('request_failed', `the other side answered request ${f.id} with ${f.code}: ${f.message}`, { replyCode: f.code }));
      case 'unsupported':
        if (f.request && f.id !== undefined) this.#answer(f.id, encodeErrorReply(f.id, 'unsupported_version', 'this end speaks request frames of version 1'));
        return;
      case 'request':
        return this.#run(f.id, f.data);
    }
  }

  /** Run the listeners for request `id`: the first reply (given, returned, or an error) goes back, once. */
  #run(id: number, data: Payload): void {
    let replied = false;
    const reply: Reply = (result) => {
      if (replied) return;
      replied = true;
      if (result instanceof Error) return this.#answer(id, encodeErrorReply(id, errorCode(result), result.message));
      if (!isPayload(result)) return this.#answer(id, encodeErrorReply(id, 'handler_error', `the reply must be a string or Uint8Array, got ${typeof result}`));
      this.#answer(id, encodeReply(id, result));
    };
    const listeners = this.#hooks.listeners();
    if (listeners.length === 0) return this.#answer(id, encodeErrorReply(id, 'no_handler', 'nobody listens for requests on this end'));
    const failed = (e: unknown) => reply(e instanceof Error ? e : new Error(String(e)));
    for (const fn of listeners) {
      let r: unknown;
      try {
        r = fn(data, reply);
      } catch (e) {
        failed(e);
        continue;
      }
      if (typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function') {
        (r as PromiseLike<unknown>).then((v) => v !== undefined && reply(v as Payload), failed);
      } else if (r !== undefined) {
        reply(r as Payload);
      }
    }
  }

  #answer(id: number, frame: OutboxEntry): void {
    this.#hooks.send(frame).catch((e: unknown) => {
      // The session ended first: the requester learns that on its side (session_lost, or why it closed).
      if (e instanceof HoldlineError && ENDED.has(e.code)) return;
      this.#hooks.report(new HoldlineError('request_failed', `the reply to request ${id} could not be sent: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    });
  }
}
