/**
 * Client options, checked once at construction. A bad one throws a
 * HoldlineError with code `invalid_argument` whose message names the option.
 */
import { DEFAULTS, HoldlineError } from '../shared/index.js';
import type { TransportName } from './events.js';
import { MIN_POLL_TIMEOUT_MS } from './limits.js';

/** What the client tells the server about itself at every open: a JSON object (credentials, a bearer token). */
export type AuthData = Record<string, unknown>;

/**
 * The `auth` option: an object, or a function (sync or async) returning one,
 * called again at every open (a reset opens a new session), so that a token
 * can be refreshed.
 */
export type AuthOption = AuthData | (() => AuthData | Promise<AuthData>);

/**
 * Most bytes the `auth` object may take as JSON: it rides in the `/open`
 * body, which a server takes up to 4 KiB of.
 */
export const MAX_AUTH_BYTES = 3072;

/**
 * The `proxy` option (Node): a URL (http://user:pass@proxy:3128,
 * http://DOMAIN%5Cuser:pass@proxy:3128 for NTLM), the same with the
 * credentials apart, or a PAC file (`{ pac: 'http://wpad/proxy.pac' }` or a
 * file path) that picks the proxy for each URL (with the credentials to use
 * at the proxies it names, if any).
 */
export type ProxySetting =
  | string
  | { url: string; username?: string; password?: string; domain?: string }
  | { pac: string; username?: string; password?: string; domain?: string };

export interface HoldlineClientOptions {
  /**
   * Sent in the body of every `/open` (never in the URL, never as a header,
   * so no CORS preflight), for the server's `authenticate(req, auth)` hook:
   * an object, or a function (sync or async) returning one, called again at
   * every open so that a token can be refreshed. At most 3 KiB as JSON.
   */
  auth?: AuthOption;
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
  /** Reuse connections (default true); false opens a new connection per request (Node). */
  keepAlive?: boolean;
  /** Proxy for Node (see ProxySetting); default from HTTP_PROXY/HTTPS_PROXY/NO_PROXY. */
  proxy?: ProxySetting;
  /** Hold to ask the server for (at least 100 ms); it is capped by the server's pollTimeoutMs. Default: the server's. */
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
  /**
   * Transports to use, in order of preference (see client/transport-switcher.ts):
   * ['polling', 'websocket'] (default) starts on polling and moves to a
   * WebSocket when one gets through; ['websocket', 'polling'] tries the
   * WebSocket first; ['polling'] never opens one; ['websocket'] uses nothing
   * else once the session is open. A session always opens over HTTP.
   */
  transports?: readonly TransportName[];
  /**
   * 'session': reload continuity (browsers). The session's credential,
   * positions and unacknowledged messages are kept in sessionStorage when
   * the page is hidden, frozen or unloaded, and connect() on the reloaded
   * page resumes the same session (see client/page-continuity.ts). The token
   * in storage is as exposed as a session cookie readable by script.
   */
  resume?: 'session';
}

export interface ResolvedClientOptions {
  auth: AuthOption | undefined;
  minDelayMs: number;
  maxDelayMs: number;
  keepAlive: boolean;
  proxy: ProxySetting | undefined;
  holdMs: number | undefined;
  pollGraceMs: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxBufferedBytes: number;
  sendTimeoutMs: number;
  transports: readonly TransportName[];
  resume: 'session' | undefined;
}

const KNOWN = new Set([
  'auth', 'reconnect', 'keepAlive', 'proxy', 'holdMs', 'pollGraceMs', 'requestTimeoutMs',
  'connectTimeoutMs', 'maxBufferedBytes', 'sendTimeoutMs', 'transports', 'resume',
]);

/** Options that existed once: naming one throws with a hint rather than as unknown. */
const REMOVED: Readonly<Record<string, string>> = {};

const TRANSPORTS: readonly TransportName[] = ['polling', 'websocket'];

function transports(v: unknown): readonly TransportName[] {
  if (v === undefined) return TRANSPORTS;
  const ok = Array.isArray(v) && v.length > 0 && v.every((t) => t === 'polling' || t === 'websocket') && new Set(v).size === v.length;
  if (!ok) {
    throw invalid(`option "transports" must be a non-empty array of 'polling' and 'websocket' without repeats, in order of preference (e.g. ['polling', 'websocket']), got ${JSON.stringify(v)}`);
  }
  return Object.freeze([...(v as TransportName[])]);
}

/**
 * The `auth` object (or what the `auth` function returned) as the JSON the
 * open body carries; invalid_argument when it is not a JSON object of at most
 * MAX_AUTH_BYTES.
 */
export function authData(v: unknown): string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw invalid(`option "auth" must be an object, or a function returning one (e.g. { token }), got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  }
  let json: string;
  try {
    json = JSON.stringify(v);
  } catch (e) {
    throw invalid(`option "auth" must be JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bytes = new TextEncoder().encode(json).byteLength;
  if (bytes > MAX_AUTH_BYTES) throw invalid(`option "auth" is ${bytes} bytes as JSON; at most ${MAX_AUTH_BYTES} fit in the open request`);
  return json;
}

function resumeOption(v: unknown): 'session' | undefined {
  if (v === undefined || v === 'session') return v;
  throw invalid(`option "resume" must be 'session' (keep the session across a reload) or absent, got ${JSON.stringify(v)}`);
}

function invalid(message: string): HoldlineError {
  return new HoldlineError('invalid_argument', message);
}

function int(name: string, v: unknown, def: number, min = 0): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`option "${name}" must be an integer >= ${min}, got ${JSON.stringify(v)} (${typeof v})`);
  }
  return v;
}

const PROXY_FIELDS = new Set(['url', 'username', 'password', 'domain']);
const PAC_FIELDS = new Set(['pac', 'username', 'password', 'domain']);

function proxySetting(v: unknown): ProxySetting {
  const bad = (why: string): HoldlineError =>
    invalid(`option "proxy" must be a URL such as http://user:pass@host:3128, { url, username, password, domain } or { pac: URL or file }: ${why}`);
  const url = (u: unknown): string => {
    if (typeof u !== 'string') throw bad(`got ${JSON.stringify(u)}`);
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw bad(`${JSON.stringify(u)} is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`${JSON.stringify(u)} is not http: or https:`);
    return u;
  };
  if (typeof v === 'string') return url(v);
  if (typeof v !== 'object' || v === null) throw bad(`got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const known = 'pac' in o ? PAC_FIELDS : PROXY_FIELDS;
  for (const k of Object.keys(o)) if (!known.has(k)) throw bad(`unknown field "${k}"`);
  const creds: { username?: string; password?: string; domain?: string } = {};
  for (const k of ['username', 'password', 'domain'] as const) {
    const f = o[k];
    if (f === undefined) continue;
    if (typeof f !== 'string') throw bad(`field "${k}" must be a string`);
    creds[k] = f;
  }
  if ('pac' in o) {
    if (typeof o.pac !== 'string' || o.pac === '') throw bad('{ pac } takes a non-empty string, a URL or a file path');
    return { pac: o.pac, ...creds };
  }
  return { url: url(o.url), ...creds };
}

export function resolveClientOptions(o: HoldlineClientOptions = {}): ResolvedClientOptions {
  if (typeof o !== 'object' || o === null) throw invalid('HoldlineClient options must be an object');
  // Unknown names first: a typo is the likelier mistake, and its message is the one to see.
  const keys = Object.keys(o);
  for (const k of keys) if (!KNOWN.has(k) && !Object.hasOwn(REMOVED, k)) throw invalid(`unknown HoldlineClient option "${k}"`);
  for (const k of keys) if (Object.hasOwn(REMOVED, k)) throw invalid(`option "${k}" was removed: ${REMOVED[k]}`);
  if (o.reconnect !== undefined && (typeof o.reconnect !== 'object' || o.reconnect === null)) {
    throw invalid(`option "reconnect" must be an object such as { minDelayMs: 250, maxDelayMs: 10000 }, got ${JSON.stringify(o.reconnect)}`);
  }
  const r = o.reconnect ?? {};
  const minDelayMs = int('reconnect.minDelayMs', r.minDelayMs, DEFAULTS.reconnectMinDelayMs, 1);
  const maxDelayMs = int('reconnect.maxDelayMs', r.maxDelayMs, Math.max(DEFAULTS.reconnectMaxDelayMs, minDelayMs), 1);
  if (maxDelayMs < minDelayMs) {
    throw invalid(`option "reconnect.maxDelayMs" (${maxDelayMs}) must be >= reconnect.minDelayMs (${minDelayMs})`);
  }
  if (o.keepAlive !== undefined && typeof o.keepAlive !== 'boolean') {
    throw invalid(`option "keepAlive" must be a boolean, got ${typeof o.keepAlive}`);
  }
  const proxy = o.proxy === undefined ? undefined : proxySetting(o.proxy);
  if (o.auth !== undefined && typeof o.auth !== 'function') authData(o.auth);
  return {
    auth: o.auth,
    minDelayMs,
    maxDelayMs,
    keepAlive: o.keepAlive ?? true,
    proxy,
    holdMs: o.holdMs === undefined ? undefined : int('holdMs', o.holdMs, 0, MIN_POLL_TIMEOUT_MS),
    pollGraceMs: int('pollGraceMs', o.pollGraceMs, DEFAULTS.pollGraceMs, 1),
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs, 15_000, 1),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, 30_000, 1),
    maxBufferedBytes: int('maxBufferedBytes', o.maxBufferedBytes, DEFAULTS.maxQueuedBytes, 1),
    sendTimeoutMs: int('sendTimeoutMs', o.sendTimeoutMs, DEFAULTS.sendTimeoutClientMs),
    transports: transports(o.transports),
    resume: resumeOption(o.resume),
  };
}

/**
 * The base URL of a Holdline server, absolute (relative to the page in
 * browsers), without a trailing slash on its path and without a fragment.
 * A query string is kept: it goes on every request (endpointUrl).
 */
export function resolveBaseUrl(url: string, who: string): string {
  let u: URL;
  try {
    u = new URL(url, typeof location === 'undefined' ? undefined : location.href);
  } catch {
    throw invalid(`${who}: url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw invalid(`${who}: url must be http: or https:, got ${u.protocol}`);
  }
  u.hash = '';
  if (u.search === '') return u.href.replace(/\/+$/, '');
  u.pathname = u.pathname.replace(/\/+$/, '');
  return u.href;
}

/**
 * The URL of the endpoint `path` (e.g. '/open') below a base URL made by
 * resolveBaseUrl: the path goes before the base URL's query string, which
 * every request keeps.
 */
export function endpointUrl(base: string, path: string): string {
  const q = base.indexOf('?');
  return q < 0 ? base + path : base.slice(0, q).replace(/\/+$/, '') + path + base.slice(q);
}
