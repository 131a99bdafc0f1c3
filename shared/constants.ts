/** Wire protocol version. Sent by the client on open; the server refuses others. */
export const PROTOCOL_VERSION = 1;

/** Paths below the mount point, one per protocol role. */
export const PATHS = {
  open: '/open',
  poll: '/poll',
  send: '/send',
  close: '/close',
} as const;

/** Below the mount point: the WebSocket endpoint (GET with Upgrade: websocket). See PROTOCOL.md, "WebSocket". */
export const WS_PATH = '/ws';

/** The only request content type: a CORS "simple" type, so polls never need a preflight. */
export const REQUEST_CONTENT_TYPE = 'text/plain;charset=UTF-8';
export const RESPONSE_CONTENT_TYPE = 'text/plain; charset=utf-8';
export const ERROR_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Defaults shared by server and client; every one is an option somewhere. */
export const DEFAULTS = {
  pollTimeoutMs: 25_000,
  sessionIdleTimeoutMs: 60_000,
  maxMessageBytes: 1024 * 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  /** Messages per batch, either way: bounds the work one request costs (a binary message costs a base64 decode). */
  maxBatchMessages: 10_000,
  maxQueuedBytes: 8 * 1024 * 1024,
  maxSessions: 100_000,
  sendTimeoutMs: 30_000,
  pollGraceMs: 5_000,
  sendTimeoutClientMs: 30_000,
  reconnectMinDelayMs: 250,
  reconnectMaxDelayMs: 10_000,
} as const;

/**
 * Response header on a poll answer whose body is large (EARLY_POLL_BYTES or
 * more): the sequence number just past its batch. A client may send its next
 * poll as soon as it reads the header, with `from` set to this value, instead
 * of after reading the body, so the server writes the next batch while the
 * client is still taking in this one.
 */
export const NEXT_HEADER = 'Holdline-Next';
export const EARLY_POLL_BYTES = 16 * 1024;
/**
 * Response header on a send answer: the number of the last server-to-client
 * message the server has written to the client (in a poll answer or on a
 * WebSocket). A client whose poll never brought that far knows the poll died
 * on its way (a NAT forgot its mapping) and replaces it at once.
 */
export const WRITTEN_HEADER = 'Holdline-Written';
/**
 * The longest a server holds an early poll (one whose `from` is past the
 * client's ack + 1) when nothing is pending: its answer is what prompts the
 * client's next poll, which carries the ack of the batch before it.
 */
export const EARLY_HOLD_MS = 100;

/** Smallest hold the client's adaptive hold asks for; a poll that dies older than this counts as a cut. */
export const MIN_HOLD_MS = 1_000;
