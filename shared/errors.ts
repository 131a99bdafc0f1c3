/**
 * The error taxonomy. Every failure Holdline reports has a stable string `code`
 * from this table; wire errors also carry the HTTP status they travel with.
 * On the wire: status + `{"error":{"code","message"}}`.
 */
export const WIRE_ERRORS = {
  malformed_request: { status: 400, text: 'the request body is not a valid Holdline envelope' },
  bad_encoding: { status: 400, text: 'invalid UTF-8, or a binary message with a bad tag or bad base64' },
  bad_ack: { status: 400, text: 'the ack names messages that were never sent' },
  unsupported_version: { status: 400, text: 'the client speaks a protocol version this server does not' },
  unauthorized: { status: 403, text: 'the authentication hook refused to open a session' },
  origin_not_allowed: { status: 403, text: 'the request Origin is not on the allow-list' },
  bad_credential: { status: 403, text: 'the session token is missing or wrong' },
  session_unknown: { status: 404, text: 'no such session: it expired, was closed, or the server restarted' },
  not_found: { status: 404, text: 'no such Holdline endpoint' },
  session_closed: { status: 410, text: 'the session was closed; the body says why' },
  method_not_allowed: { status: 405, text: 'Holdline endpoints take POST only' },
  bad_sequence: { status: 409, text: 'the batch skips sequence numbers (it starts past the next expected one)' },
  message_too_large: { status: 413, text: 'a message is larger than maxMessageBytes' },
  batch_too_large: { status: 413, text: 'the request body is larger than maxBatchBytes' },
  unsupported_content_type: { status: 415, text: 'requests must be sent as text/plain' },
  request_timeout: { status: 408, text: 'the request body did not arrive in time' },
  too_many_sessions: { status: 503, text: 'the server is at maxSessions' },
  server_closing: { status: 503, text: 'the server is shutting down' },
  internal_error: { status: 500, text: 'the server failed unexpectedly' },
} as const;

export type WireErrorCode = keyof typeof WIRE_ERRORS;

/** Codes that only ever arise on one end, never on the wire. */
export type LocalErrorCode =
  | 'queue_full'
  | 'network_error'
  | 'timeout'
  | 'bad_response'
  | 'proxy_auth_required'
  /** A proxy refused the destination (its ACL's 403, a 502 when it could not connect); the message names the proxy. */
  | 'proxy_refused'
  | 'client_closed'
  /** send() or request() after the server closed the session (close frame `server_closed`). */
  | 'server_closed'
  | 'session_lost'
  | 'invalid_state'
  | 'invalid_argument'
  /** An application listener threw or rejected; the error is its `cause`. */
  | 'listener_error'
  /** request(): the other side answered with an error; its code is `replyCode`. */
  | 'request_failed'
  /** request(): its AbortSignal aborted. */
  | 'aborted';

export type ErrorCode = WireErrorCode | LocalErrorCode;

const BRAND = Symbol.for('holdline.error');

export interface HoldlineErrorOptions {
  status?: number | undefined;
  cause?: unknown;
  /** The code an error body carried when it is not one of ours (see `wireCode`). */
  wireCode?: string | undefined;
  /** For `request_failed`: the code the other side's reply gave. */
  replyCode?: string | undefined;
}

/**
 * Base class for every error Holdline raises. `code` is stable; `status` is set
 * for wire errors. An error body whose code this version does not know becomes
 * `bad_response`, with the code as received in `wireCode`.
 */
export class HoldlineError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  /** The raw code of an error body that is not in WIRE_ERRORS (then `code` is `bad_response`). */
  readonly wireCode: string | undefined;
  /**
   * For `request_failed`: the code of the other side's error reply
   * (`no_handler`, `handler_error`, `unsupported_version`, or the `code` of
   * the Error its listener replied or threw with).
   */
  readonly replyCode: string | undefined;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options?: HoldlineErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoldlineError';
    this.code = code;
    this.status = options?.status ?? (isWireErrorCode(code) ? WIRE_ERRORS[code].status : undefined);
    this.wireCode = options?.wireCode;
    this.replyCode = options?.replyCode;
  }

  /** `instanceof` that also works across duplicate installs of the package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  toWire(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isWireErrorCode(code: string): code is WireErrorCode {
  return Object.prototype.hasOwnProperty.call(WIRE_ERRORS, code);
}

/** A wire error with its table status. */
export function wireError(code: WireErrorCode, message?: string): HoldlineError {
  return new HoldlineError(code, message ?? WIRE_ERRORS[code].text, { status: WIRE_ERRORS[code].status });
}

/** Why a session ended: sent in close frames and given to `close` listeners on both ends. */
export type CloseCode =
  | 'client_closed'
  | 'server_closed'
  | 'idle_timeout'
  | 'server_shutdown'
  | 'session_unknown'
  | 'transport_error';

export interface CloseReason {
  code: CloseCode;
  message: string;
}
