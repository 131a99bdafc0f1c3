/**
 * The client's reaction to every failure, in one place: a table from error
 * code to what the client does, the codes a bare HTTP status stands for when
 * the body is not ours (a proxy's or a middlebox's page), and what each close
 * frame means. PROTOCOL.md's "Errors" table says the same in words; the test
 * test/protocol-doc.test.ts holds the two together, code by code.
 */
import { decodeErrorBody } from './codec.js';
import { HoldlineError, isWireErrorCode, type CloseCode, type ErrorCode, type WireErrorCode } from './errors.js';

export type Reaction =
  /** A retry may fix it: the same request again after a back-off delay. */
  | 'retry'
  /** The session cannot go on: open a new one and tell the application (`reset`, with what was lost). */
  | 'new_session'
  /** The session was closed on purpose: stop, and report why (`close`). */
  | 'stop'
  /** No retry can fix it: close the client with this error. */
  | 'fatal'
  /**
   * The body's size was refused (by something on the path, or a message in
   * it by the server): the same messages again, in smaller batches. A message
   * refused alone is dropped and reported (`error`, message_too_large).
   */
  | 'smaller_batches';

/** What the client does when the server answers with each wire error code. */
export const WIRE_REACTIONS: { readonly [C in WireErrorCode]: Reaction } = {
  // Our own request was wrong (a bug on one end): the session's state is in doubt.
  malformed_request: 'new_session',
  bad_encoding: 'new_session',
  bad_ack: 'new_session',
  bad_sequence: 'new_session',
  // send() refuses a message over the open answer's maxMessageBytes first
  // (and a message queued before the limits were known, once they are). One
  // the server refuses all the same is found by sending smaller batches;
  // refused alone, it can never pass: it is dropped and reported, and the
  // stream goes on (the server accepted nothing of a refused batch).
  message_too_large: 'smaller_batches',
  unsupported_version: 'fatal',
  unauthorized: 'fatal',
  origin_not_allowed: 'fatal',
  bad_credential: 'new_session',
  session_unknown: 'new_session',
  not_found: 'fatal',
  method_not_allowed: 'fatal',
  session_closed: 'stop',
  batch_too_large: 'smaller_batches',
  // A body that trickled in too slowly (a congested link): the same request again, after a pause.
  request_timeout: 'retry',
  unsupported_content_type: 'fatal',
  too_many_sessions: 'retry',
  server_closing: 'retry',
  internal_error: 'retry',
};

/** Client-side codes a request can fail with (the requester's), and their reactions. */
const LOCAL_REACTIONS: Partial<Record<ErrorCode, Reaction>> = {
  network_error: 'retry',
  timeout: 'retry',
  bad_response: 'retry',
  proxy_auth_required: 'fatal',
  // The proxy's ACL or its link to the server: nothing the client can fix, but it may pass later (a server back up, a rule changed).
  proxy_refused: 'retry',
};

/**
 * The code a non-2xx status stands for when its body is not a Holdline error
 * body. Any other status is `bad_response`: retry with back-off.
 */
export const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  403: 'bad_credential',
  404: 'session_unknown',
  407: 'proxy_auth_required',
  410: 'session_closed',
  413: 'batch_too_large',
};

/**
 * STATUS_CODES for an answer to `/open`: there is no session yet that could
 * be unknown, so a bare 404 (an HTML page from the host framework) means the
 * URL names no Holdline server: `not_found`, fatal, at once.
 */
export const OPEN_STATUS_CODES: Readonly<Record<number, ErrorCode>> = { ...STATUS_CODES, 404: 'not_found' };

/** What the client does with each close frame the server sends (a close code it does not know: stop). */
export const CLOSE_REACTIONS: { readonly [C in CloseCode]: Reaction } = {
  server_closed: 'stop',
  client_closed: 'stop',
  idle_timeout: 'new_session',
  server_shutdown: 'new_session',
  session_unknown: 'new_session',
  transport_error: 'stop',
};

/** The reaction to an error with this code (a code without an entry: retry with back-off). */
export function reactionOf(code: ErrorCode): Reaction {
  return isWireErrorCode(code) ? WIRE_REACTIONS[code] : (LOCAL_REACTIONS[code] ?? 'retry');
}

/** The reaction to a close frame's code, which comes off the wire as any string. */
export function closeReactionOf(code: string): Reaction {
  return Object.prototype.hasOwnProperty.call(CLOSE_REACTIONS, code) ? CLOSE_REACTIONS[code as CloseCode] : 'stop';
}

/**
 * The error a non-2xx answer stands for. Its body is read only when it is a
 * Holdline error body (a middlebox may have replaced it); otherwise the status
 * decides (`statusCodes`: STATUS_CODES, or OPEN_STATUS_CODES for an open). A code this version does not know is `bad_response`,
 * with the code as received in `wireCode`.
 */
export function answerError(status: number, body: string, statusCodes: Readonly<Record<number, ErrorCode>> = STATUS_CODES): HoldlineError {
  const wire = decodeErrorBody(body);
  if (wire === undefined) {
    const code = statusCodes[status] ?? 'bad_response';
    const hint = code === 'not_found' ? ': no Holdline server at this URL (is the path the one the server is mounted at?)' : '';
    return new HoldlineError(code, `HTTP ${status}${hint}`, { status });
  }
  if (isWireErrorCode(wire.code)) return new HoldlineError(wire.code, wire.message, { status });
  return new HoldlineError('bad_response', `HTTP ${status}, unknown error code ${JSON.stringify(wire.code)}: ${wire.message}`, { status, wireCode: wire.code });
}
