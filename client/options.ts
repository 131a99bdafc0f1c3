/** Client options, checked once at construction with messages naming the option. */
import { DEFAULTS } from '../shared/index.js';

export interface HoldlineClientOptions {
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
  transports?: Array<'polling'>;
  /** Reuse connections (default true); false opens a new connection per request (Node). */
  keepAlive?: boolean;
  /** Proxy URL for Node, e.g. http://user:pass@proxy:3128; default from HTTP_PROXY/HTTPS_PROXY/NO_PROXY. */
  proxy?: string;
  /** Hold to ask the server for; it is capped by the server's pollTimeoutMs. Default: the server's. */
  holdMs?: number;
  /** A poll gets holdMs + pollGraceMs before the client gives up on it and replaces it. */
  pollGraceMs?: number;
  /** Deadline for open, send and close requests. */
  requestTimeoutMs?: number;
  /** connect() rejects with `timeout` when no session could be opened for this long. */
  connectTimeoutMs?: number;
  /** Unacknowledged bytes before send() waits. */
  maxBufferedBytes?: number;
  /** How long send() waits for room before it rejects with `queue_full`. */
  sendTimeoutMs?: number;
}

export interface ResolvedClientOptions {
  minDelayMs: number;
  maxDelayMs: number;
  transports: Array<'polling'>;
  keepAlive: boolean;
  proxy: string | undefined;
  holdMs: number | undefined;
  pollGraceMs: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxBufferedBytes: number;
  sendTimeoutMs: number;
}

const KNOWN = new Set([
  'reconnect', 'transports', 'keepAlive', 'proxy', 'holdMs', 'pollGraceMs', 'requestTimeoutMs',
  'connectTimeoutMs', 'maxBufferedBytes', 'sendTimeoutMs',
]);

function int(name: string, v: unknown, def: number, min = 0): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new TypeError(`option "${name}" must be an integer >= ${min}, got ${JSON.stringify(v)} (${typeof v})`);
  }
  return v;
}

export function resolveClientOptions(o: HoldlineClientOptions = {}): ResolvedClientOptions {
  if (typeof o !== 'object' || o === null) throw new TypeError('HoldlineClient options must be an object');
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new TypeError(`unknown HoldlineClient option "${k}"`);
  const r = o.reconnect ?? {};
  const minDelayMs = int('reconnect.minDelayMs', r.minDelayMs, DEFAULTS.reconnectMinDelayMs, 1);
  const maxDelayMs = int('reconnect.maxDelayMs', r.maxDelayMs, Math.max(DEFAULTS.reconnectMaxDelayMs, minDelayMs), 1);
  if (maxDelayMs < minDelayMs) {
    throw new RangeError(`option "reconnect.maxDelayMs" (${maxDelayMs}) must be >= reconnect.minDelayMs (${minDelayMs})`);
  }
  const transports = o.transports ?? ['polling'];
  if (!Array.isArray(transports) || transports.length === 0 || transports.some((t) => t !== 'polling')) {
    throw new TypeError(`option "transports" must be a non-empty array of 'polling', got ${JSON.stringify(transports)}`);
  }
  if (o.keepAlive !== undefined && typeof o.keepAlive !== 'boolean') {
    throw new TypeError(`option "keepAlive" must be a boolean, got ${typeof o.keepAlive}`);
  }
  if (o.proxy !== undefined) {
    try {
      new URL(o.proxy);
    } catch {
      throw new TypeError(`option "proxy" must be a URL such as http://user:pass@host:3128, got ${JSON.stringify(o.proxy)}`);
    }
  }
  return {
    minDelayMs,
    maxDelayMs,
    transports,
    keepAlive: o.keepAlive ?? true,
    proxy: o.proxy,
    holdMs: o.holdMs === undefined ? undefined : int('holdMs', o.holdMs, 0),
    pollGraceMs: int('pollGraceMs', o.pollGraceMs, DEFAULTS.pollGraceMs, 1),
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs, 15_000, 1),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, 30_000, 1),
    maxBufferedBytes: int('maxBufferedBytes', o.maxBufferedBytes, DEFAULTS.maxQueuedBytes, 1),
    sendTimeoutMs: int('sendTimeoutMs', o.sendTimeoutMs, DEFAULTS.sendTimeoutClientMs),
  };
}

/** The base URL of a Holdline server, absolute (relative to the page in browsers), without a trailing slash. */
export function resolveBaseUrl(url: string, who: string): string {
  let u: URL;
  try {
    u = new URL(url, typeof location === 'undefined' ? undefined : location.href);
  } catch {
    throw new TypeError(`${who}: url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TypeError(`${who}: url must be http: or https:, got ${u.protocol}`);
  }
  return u.href.replace(/\/+$/, '');
}
