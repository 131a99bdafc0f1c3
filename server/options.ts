/**
 * Server options: destructured and checked once, at construction, with
 * messages that name the option, the value and its type.
 */
import type { IncomingMessage } from 'node:http';
import { DEFAULTS, ENVELOPE_OVERHEAD, HoldlineError } from '../shared/index.js';
import { MemoryStore } from './memory-store.js';
import type { SessionStore } from './store.js';

/** The key opens are counted under, per client (default: its address). */
export type ClientKeyHook = (req: IncomingMessage) => string;

/**
 * Decides whether a request may open a session, and who it is: `req` is the
 * `/open` request (headers, cookies), `auth` the client's `auth` option as
 * sent in its body (undefined when it sent none). Return `false` (or
 * nothing, or null) to refuse (`403 unauthorized`); `true` to accept
 * (`session.data` is undefined); anything else to accept with that as
 * `session.data`. A thrown error or a rejected promise refuses too (and is
 * reported through the server's `error` event). With a shared store the data
 * is kept as JSON, so that every node has it: keep it to what JSON carries.
 */
export type AuthenticateHook<Data = unknown> = (
  req: IncomingMessage,
  auth: Readonly<Record<string, unknown>> | undefined,
) => Data | boolean | null | undefined | Promise<Data | boolean | null | undefined>;

export type Transport = 'polling' | 'websocket';

export interface HoldlineServerOptions<Data = unknown> {
  /** Transports offered (polling always is: a session starts on it). Default both. */
  transports?: Transport[];
  /** Longest a poll is held before an empty answer (the heartbeat). Keep it below every proxy's read timeout. */
  pollTimeoutMs?: number;
  /** A session nobody has polled for this long is closed (`idle_timeout`). */
  sessionIdleTimeoutMs?: number;
  maxMessageBytes?: number;
  /** Largest request body, and the most message bytes one poll response carries. */
  maxBatchBytes?: number;
  /** Most messages one request or poll answer carries (bounds the work one request costs). */
  maxBatchMessages?: number;
  /** Unacknowledged bytes queued per session before `send()` waits (each message counted with 64 bytes of overhead). */
  maxQueuedBytes?: number;
  /** Unacknowledged bytes across all sessions of this server: past it, `send()` rejects at once with `queue_full`. */
  maxTotalQueuedBytes?: number;
  maxSessions?: number;
  /**
   * Opens one client may make per minute (a token bucket): one client cannot
   * fill maxSessions (sessions expire after sessionIdleTimeoutMs, so this
   * bounds what one client holds). Clients behind one NAT or proxy share an
   * address: raise it, or key clients otherwise with `clientKey`.
   */
  maxOpensPerMinute?: number;
  /** The key a client's opens are counted under. Default: the connection's address (with trustProxy, X-Forwarded-For's first). */
  clientKey?: ClientKeyHook;
  /** How long a `send()` waits for queue room before it rejects with `queue_full`. */
  sendTimeoutMs?: number;
  /** A poll answer the client has not read within this long has its connection dropped. */
  writeTimeoutMs?: number;
  /** A request body not complete within this long is answered 408 `request_timeout` and its connection closed. */
  bodyTimeoutMs?: number;
  /**
   * Where session state lives. Default: a MemoryStore of this server's own
   * (one node). Servers given one shared store are nodes of one cluster:
   * any of them serves any request of any session.
   */
  store?: SessionStore;
  /** This node's id in the store (default: random). */
  nodeId?: string;
  /**
   * A node that has not renewed its heartbeat for this long loses its sessions to the next node that serves them;
   * a node that cannot reach its store for this long fences itself (drops its WebSockets and held polls, gives its sessions up).
   */
  ownerLeaseMs?: number;
  authenticate?: AuthenticateHook<Data>;
  /** Origins allowed to call cross-origin; '*' allows any. Same-origin needs nothing. */
  allowedOrigins?: readonly string[] | '*';
  /**
   * Behind a reverse proxy that sets X-Forwarded-Proto and X-Forwarded-Host:
   * judge same-origin requests by those. Off by default (anyone can send
   * them to a server reached directly).
   */
  trustProxy?: boolean;
  /** Name the node that answered in a `Holdline-Node` response header (for operators behind a load balancer, and tests). */
  nodeHeader?: boolean;
}

export interface ResolvedOptions {
  transports: Transport[];
  pollTimeoutMs: number;
  sessionIdleTimeoutMs: number;
  maxMessageBytes: number;
  maxBatchBytes: number;
  maxBatchMessages: number;
  maxQueuedBytes: number;
  maxTotalQueuedBytes: number;
  maxSessions: number;
  maxOpensPerMinute: number;
  clientKey: ClientKeyHook | undefined;
  sendTimeoutMs: number;
  writeTimeoutMs: number;
  bodyTimeoutMs: number;
  store: SessionStore;
  /** The store was given (shared with other nodes), not made by this server. */
  sharedStore: boolean;
  nodeId: string | undefined;
  ownerLeaseMs: number;
  authenticate: AuthenticateHook | undefined;
  allowedOrigins: ReadonlySet<string> | '*' | undefined;
  trustProxy: boolean;
  nodeHeader: boolean;
  /** Period of the one timer that ends holds and expires idle sessions. */
  tickMs: number;
}

function describe(v: unknown): string {
  return `${JSON.stringify(v) ?? String(v)} (${v === null ? 'null' : typeof v})`;
}

/** Every option error: `invalid_argument`, the message naming the option. */
function invalid(message: string): HoldlineError {
  return new HoldlineError('invalid_argument', message);
}

function positiveInt(name: string, v: unknown, def: number, min = 1): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`option "${name}" must be an integer >= ${min}, got ${describe(v)}`);
  }
  return v;
}

/**
 * The shortest hold a server may grant: below it an idle client spins (a
 * hold of 0 made one poll 14,700 times a second). Clients take at least
 * this much too (client/limits.ts).
 */
export const MIN_POLL_TIMEOUT_MS = 100;

const KNOWN = new Set([
  'transports', 'pollTimeoutMs', 'sessionIdleTimeoutMs', 'maxMessageBytes', 'maxBatchBytes', 'maxBatchMessages',
  'maxQueuedBytes', 'maxTotalQueuedBytes', 'maxSessions', 'maxOpensPerMinute', 'clientKey', 'sendTimeoutMs', 'writeTimeoutMs', 'bodyTimeoutMs', 'store', 'nodeId', 'ownerLeaseMs', 'authenticate', 'allowedOrigins', 'trustProxy', 'nodeHeader',
]);

export function resolveOptions<Data>(options: HoldlineServerOptions<Data> = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid(`HoldlineServer options must be an object, got ${describe(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw invalid(`unknown HoldlineServer option "${k}"`);
  }
  const pollTimeoutMs = positiveInt('pollTimeoutMs', options.pollTimeoutMs, DEFAULTS.pollTimeoutMs, MIN_POLL_TIMEOUT_MS);
  const sessionIdleTimeoutMs = positiveInt('sessionIdleTimeoutMs', options.sessionIdleTimeoutMs, DEFAULTS.sessionIdleTimeoutMs, 10);
  const maxMessageBytes = positiveInt('maxMessageBytes', options.maxMessageBytes, DEFAULTS.maxMessageBytes);
  const maxBatchBytes = positiveInt('maxBatchBytes', options.maxBatchBytes, DEFAULTS.maxBatchBytes);
  const maxBatchMessages = positiveInt('maxBatchMessages', options.maxBatchMessages, DEFAULTS.maxBatchMessages);
  const maxQueuedBytes = positiveInt('maxQueuedBytes', options.maxQueuedBytes, DEFAULTS.maxQueuedBytes);
  const maxTotalQueuedBytes = positiveInt('maxTotalQueuedBytes', options.maxTotalQueuedBytes, 1024 * 1024 * 1024);
  const maxOpensPerMinute = positiveInt('maxOpensPerMinute', options.maxOpensPerMinute, 10_000);
  if (options.clientKey !== undefined && typeof options.clientKey !== 'function') {
    throw invalid(`option "clientKey" must be a function, got ${describe(options.clientKey)}`);
  }
  const maxSessions = positiveInt('maxSessions', options.maxSessions, DEFAULTS.maxSessions);
  const sendTimeoutMs = positiveInt('sendTimeoutMs', options.sendTimeoutMs, DEFAULTS.sendTimeoutMs, 0);
  const writeTimeoutMs = positiveInt('writeTimeoutMs', options.writeTimeoutMs, 30_000, 100);
  const bodyTimeoutMs = positiveInt('bodyTimeoutMs', options.bodyTimeoutMs, 10_000, 100);

  // A largest message, base64-encoded (4/3) inside an envelope, must fit in a batch.
  const minBatch = Math.ceil((maxMessageBytes * 4) / 3) + ENVELOPE_OVERHEAD + 16;
  if (maxBatchBytes < minBatch) {
    throw invalid(
      `option "maxBatchBytes" (${maxBatchBytes}) must be at least ${minBatch} so that one message of maxMessageBytes (${maxMessageBytes}) fits in a batch`,
    );
  }
  if (maxQueuedBytes < maxMessageBytes) {
    throw invalid(`option "maxQueuedBytes" (${maxQueuedBytes}) must be >= maxMessageBytes (${maxMessageBytes})`);
  }

  const store = options.store === undefined ? new MemoryStore() : options.store;
  if (typeof store !== 'object' || store === null || typeof store.enqueue !== 'function') {
    throw invalid(`option "store" must implement SessionStore, got ${describe(store)}`);
  }
  const nodeId = options.nodeId;
  if (nodeId !== undefined && (typeof nodeId !== 'string' || !/^[\w.:-]{1,64}$/.test(nodeId))) {
    throw invalid(`option "nodeId" must be 1-64 characters of A-Z a-z 0-9 _ . : -, got ${describe(nodeId)}`);
  }
  const ownerLeaseMs = positiveInt('ownerLeaseMs', options.ownerLeaseMs, 10_000, 300);
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw invalid(`option "authenticate" must be a function, got ${describe(options.authenticate)}`);
  }

  let allowedOrigins: ResolvedOptions['allowedOrigins'];
  const ao = options.allowedOrigins;
  if (ao === '*') allowedOrigins = '*';
  else if (ao === undefined) allowedOrigins = undefined;
  else if (Array.isArray(ao) && ao.every((o) => typeof o === 'string')) allowedOrigins = new Set(ao);
  else throw invalid(`option "allowedOrigins" must be '*' or an array of origin strings, got ${describe(ao)}`);

  const transports = options.transports === undefined ? (['polling', 'websocket'] as Transport[]) : options.transports;
  if (!Array.isArray(transports) || !transports.includes('polling') || transports.some((t) => t !== 'polling' && t !== 'websocket')) {
    throw invalid(`option "transports" must be an array of 'polling' and 'websocket' with 'polling' in it, got ${describe(transports)}`);
  }
  const trustProxy = options.trustProxy === undefined ? false : options.trustProxy;
  if (typeof trustProxy !== 'boolean') throw invalid(`option "trustProxy" must be a boolean, got ${describe(trustProxy)}`);

  const nodeHeader = options.nodeHeader === undefined ? false : options.nodeHeader;
  if (typeof nodeHeader !== 'boolean') throw invalid(`option "nodeHeader" must be a boolean, got ${describe(nodeHeader)}`);

  const tickMs = Math.max(10, Math.min(500, Math.floor(Math.min(pollTimeoutMs, sessionIdleTimeoutMs) / 10)));

  return {
    transports,
    pollTimeoutMs, sessionIdleTimeoutMs, maxMessageBytes, maxBatchBytes, maxBatchMessages, maxQueuedBytes, maxTotalQueuedBytes,
    maxSessions, maxOpensPerMinute, clientKey: options.clientKey, sendTimeoutMs, writeTimeoutMs, bodyTimeoutMs, store, sharedStore: options.store !== undefined, nodeId, ownerLeaseMs,
    // Data is the application's type for what the hook returns: the server keeps it as it is.
    authenticate: options.authenticate as AuthenticateHook | undefined, allowedOrigins, trustProxy, nodeHeader, tickMs,
  };
}
