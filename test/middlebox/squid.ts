// A real squid forward proxy for tests: one instance per call, on a free
// loopback port, with its config rendered from test/fixtures/squid.conf.template
// into a private temp dir (config, htpasswd, logs, pid file). It forwards only
// to loopback destinations (see the template). Runs `squid -N` (no daemon, a
// single process) as our child in its own process group. This module says
// how to configure, run and parse squid; the start loop (retries on a taken
// port) and the handle's log reading and stop are daemon.ts's.
//
// Facts (squid 5.7, Debian bookworm):
// - As root squid switches to cache_effective_user (`proxy`) after reading its
//   config and before opening its logs, so the temp dir must be owned by proxy.
// - basic_ncsa_auth lives in /usr/lib/squid (package `squid`) and accepts
//   APR1 (`$apr1$`) hashes, which htpasswd.ts computes.
// - Readiness: cache.log says "Accepting HTTP Socket connections at ...
//   local=127.0.0.1:PORT". We do not probe the port: squid 5 logs every
//   connection closed before a request as an access.log entry.

import { writeFile, chown } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';
import { htpasswdLine } from './htpasswd.js';
import { renderFixture } from './template.js';
import { ensureExecutable, isRoot, lookupUser, type SystemUser } from './system.js';

export interface SquidOptions {
  /** Require Basic proxy auth with these credentials (basic_ncsa_auth + generated htpasswd). */
  auth?: { user: string; password: string };
  /**
   * Require NTLM proxy auth with squid's `ntlm_fake_auth` helper, which runs
   * the Type 1/2/3 handshake but checks no password: any Type 3 passes, as
   * the user it names. `users` limits who squid then lets through (a
   * `proxy_auth` ACL: another user is answered 407 again, which is how a
   * test gets "wrong credentials" out of a helper that checks none).
   */
  ntlm?: { users?: readonly string[] };
  /** Require Digest proxy auth (`digest_file_auth`, MD5: squid 5 has no SHA-256) with these credentials, in a password file written here; a nonce serves 10 requests, then squid calls it stale. */
  digest?: { user: string; password: string };
  /** Allow CONNECT to these ports too (squid's stock rules allow 443 only). */
  connectPorts?: readonly number[];
  /** Refuse (403, ERR_ACCESS_DENIED) requests to this destination port, before any authentication. */
  denyPort?: number;
  /** Cache responses in memory. Default false (`cache deny all`). */
  caching?: boolean;
  /** squid `read_timeout` in whole seconds; a held origin response is cut with 504 ERR_READ_TIMEOUT. Default: squid's 15 min. */
  readTimeoutSec?: number;
  /** Bound on startup. Default 20 s. */
  startTimeoutMs?: number;
}

/** One line of squid's native access log format. */
export interface SquidAccessEntry {
  /** Unix time in milliseconds when the transaction ended. */
  timeMs: number;
  elapsedMs: number;
  client: string;
  /** e.g. TCP_MISS, TCP_MEM_HIT, TCP_DENIED. */
  squidStatus: string;
  /** 0 when no response was sent. */
  httpStatus: number;
  bytes: number;
  method: string;
  url: string;
  /** Authenticated user, or null. */
  user: string | null;
  /** e.g. HIER_DIRECT, HIER_NONE (squid contacted no server). */
  hierarchy: string;
  /** Address squid forwarded to, or null. */
  peer: string | null;
  contentType: string | null;
  raw: string;
}

export interface SquidProxy {
  /** Pid of the squid (master) process, leader of its process group. */
  readonly pid: number;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, for an HTTP client's proxy setting. */
  readonly url: string;
  /** The instance's temp dir (removed by stop()). */
  readonly dir: string;
  /** Parsed access log so far (after stop(): as it was at stop). */
  accessLog(): Promise<SquidAccessEntry[]>;
  /** Waits (bounded) for an access log entry; squid logs a transaction after its response. */
  waitForAccessEntry(predicate: (entry: SquidAccessEntry) => boolean, timeoutMs?: number): Promise<SquidAccessEntry>;
  /** Waits (bounded) until at least `count` entries match; returns every match. */
  waitForAccessEntries(predicate: (entry: SquidAccessEntry) => boolean, count: number, timeoutMs?: number): Promise<SquidAccessEntry[]>;
  /** cache.log so far (after stop(): as it was at stop). */
  cacheLog(): Promise<string>;
  /** Stops squid, waits for it and its helpers to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Where Debian and other distributions put squid's auth helpers. */
const HELPER_DIRS = ['/usr/lib/squid', '/usr/lib64/squid', '/usr/libexec/squid', '/usr/lib/squid3'];
const EFFECTIVE_USER = 'proxy';

/** `Proxy-Authorization` header value for Basic auth. */
export function basicProxyAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

function validateOptions(options: SquidOptions): void {
  const { auth, caching, readTimeoutSec, startTimeoutMs } = options;
  if (auth !== undefined) {
    if (typeof auth.user !== 'string' || !/^[A-Za-z0-9._-]+$/.test(auth.user)) {
      throw new TypeError(`options.auth.user must be a non-empty string of [A-Za-z0-9._-], got ${JSON.stringify(auth.user)}`);
    }
    if (typeof auth.password !== 'string' || auth.password === '' || /[\r\n]/.test(auth.password)) {
      throw new TypeError('options.auth.password must be a non-empty single-line string');
    }
  }
  if (caching !== undefined && typeof caching !== 'boolean') {
    throw new TypeError(`options.caching must be a boolean, got ${typeof caching}`);
  }
  if (readTimeoutSec !== undefined && (!Number.isInteger(readTimeoutSec) || readTimeoutSec < 1)) {
    throw new TypeError(`options.readTimeoutSec must be a positive integer (seconds), got ${String(readTimeoutSec)}`);
  }
  if (startTimeoutMs !== undefined && (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0)) {
    throw new TypeError(`options.startTimeoutMs must be a positive number, got ${String(startTimeoutMs)}`);
  }
}

export function parseSquidAccessLog(text: string): SquidAccessEntry[] {
  const entries: SquidAccessEntry[] = [];
  // Only complete lines: the last one may still be being written.
  for (const raw of text.split('\n').slice(0, -1)) {
    const fields = raw.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [time, elapsed, client, codeStatus, bytes, method, url, user, hierPeer, type] = fields as [
      string, string, string, string, string, string, string, string, string, string,
    ];
    const [squidStatus = '', httpStatus = '0'] = codeStatus.split('/');
    const slash = hierPeer.indexOf('/');
    const hierarchy = slash === -1 ? hierPeer : hierPeer.slice(0, slash);
    const peer = slash === -1 ? '-' : hierPeer.slice(slash + 1);
    entries.push({
      timeMs: Math.round(Number(time) * 1000),
      elapsedMs: Number(elapsed),
      client,
      squidStatus,
      httpStatus: Number(httpStatus),
      bytes: Number(bytes),
      method,
      url,
      user: user === '-' ? null : decodeURIComponent(user),
      hierarchy,
      peer: peer === '-' ? null : peer,
      contentType: type === '-' ? null : type,
      raw,
    });
  }
  return entries;
}

interface Prepared {
  squid: string;
  helper: string | undefined;
  ntlmHelper: string | undefined;
  digestHelper: string | undefined;
  user: SystemUser | undefined;
}

async function prepare(options: SquidOptions): Promise<Prepared> {
  const squid = await ensureExecutable({ name: 'squid', debianPackage: 'squid' });
  const helper =
    options.auth === undefined
      ? undefined
      : await ensureExecutable({ name: 'basic_ncsa_auth', debianPackage: 'squid', dirs: HELPER_DIRS });
  const ntlmHelper = options.ntlm === undefined ? undefined : await ensureExecutable({ name: 'ntlm_fake_auth', debianPackage: 'squid', dirs: HELPER_DIRS });
  const digestHelper = options.digest === undefined ? undefined : await ensureExecutable({ name: 'digest_file_auth', debianPackage: 'squid', dirs: HELPER_DIRS });
  const user = isRoot() ? await lookupUser(EFFECTIVE_USER) : undefined;
  return { squid, helper, ntlmHelper, digestHelper, user };
}

async function writeConfig(dir: string, port: number, options: SquidOptions, prepared: Prepared): Promise<string> {
  let auth = '# (no authentication)';
  let authAccess = '# (no authentication)';
  if (options.auth !== undefined && prepared.helper !== undefined) {
    const passwdFile = join(dir, 'passwd');
    await writeFile(passwdFile, `${htpasswdLine(options.auth.user, options.auth.password)}\n`, { mode: 0o640 });
    if (prepared.user !== undefined) await chown(passwdFile, prepared.user.uid, prepared.user.gid);
    auth = [
      `auth_param basic program ${prepared.helper} ${passwdFile}`,
      'auth_param basic children 2 startup=0 idle=1',
      'auth_param basic realm holdline-test',
      'auth_param basic credentialsttl 1 minute',
      'acl holdline_authenticated proxy_auth REQUIRED',
    ].join('\n');
    authAccess = 'http_access deny !holdline_authenticated';
  }
  if (options.ntlm !== undefined && prepared.ntlmHelper !== undefined) {
    const users = options.ntlm.users;
    auth = [
      `auth_param ntlm program ${prepared.ntlmHelper}`,
      'auth_param ntlm children 2 startup=0 idle=1',
      'auth_param ntlm keep_alive on',
      `acl holdline_authenticated proxy_auth ${users === undefined ? 'REQUIRED' : users.join(' ')}`,
    ].join('\n');
    authAccess = 'http_access deny !holdline_authenticated';
  }
  if (options.digest !== undefined && prepared.digestHelper !== undefined) {
    const passwdFile = join(dir, 'digest-passwd');
    await writeFile(passwdFile, `${options.digest.user}:${options.digest.password}\n`, { mode: 0o640 });
    if (prepared.user !== undefined) await chown(passwdFile, prepared.user.uid, prepared.user.gid);
    auth = [
      `auth_param digest program ${prepared.digestHelper} ${passwdFile}`,
      'auth_param digest children 2 startup=0 idle=1',
      'auth_param digest realm holdline-test',
      'auth_param digest nonce_max_count 10',
      'acl holdline_authenticated proxy_auth REQUIRED',
    ].join('\n');
    authAccess = 'http_access deny !holdline_authenticated';
  }
  if (options.connectPorts !== undefined && options.connectPorts.length > 0) {
    // More values for the stock SSL_ports ACL (acl lines of one name add up).
    auth = `acl SSL_ports port ${options.connectPorts.join(' ')}\n${auth}`;
  }
  if (options.denyPort !== undefined) {
    authAccess = `acl holdline_refused port ${options.denyPort}\nhttp_access deny holdline_refused\n${authAccess}`;
  }
  const config = await renderFixture('squid.conf.template', {
    PORT: String(port),
    DIR: dir,
    EFFECTIVE_USER:
      prepared.user === undefined ? '# (not root: runs as the current user)' : `cache_effective_user ${prepared.user.name}`,
    AUTH: auth,
    AUTH_ACCESS: authAccess,
    CACHING: options.caching === true ? 'memory_cache_mode always\ncache allow all' : 'cache deny all',
    READ_TIMEOUT:
      options.readTimeoutSec === undefined
        ? '# read_timeout: squid default'
        : `read_timeout ${options.readTimeoutSec} seconds`,
  });
  const configFile = join(dir, 'squid.conf');
  await writeFile(configFile, config, { mode: 0o644 });
  return configFile;
}

/** Starts squid and resolves once it accepts connections. */
export async function startSquid(options: SquidOptions = {}): Promise<SquidProxy> {
  validateOptions(options);
  const prepared = await prepare(options);
  const { daemonLog, ...handle } = await startDaemon({
    name: 'squid',
    tempDirPrefix: 'holdline-squid-',
    owner: prepared.user,
    logFile: 'cache.log',
    startTimeoutMs: options.startTimeoutMs,
    readyIntervalMs: 100,
    async configure(dir, port) {
      const configFile = await writeConfig(dir, port, options, prepared);
      // -N: no daemon, one process; -n: a service name of our own, so
      // nothing (shared memory names, etc.) collides with another squid.
      return {
        command: prepared.squid,
        args: ['-N', '-f', configFile, '-n', `holdline${randomBytes(4).toString('hex')}`],
      };
    },
    isReady: ({ port, log }) =>
      new RegExp(`Accepting HTTP Socket connections at .*local=127\\.0\\.0\\.1:${port}\\b`).test(log),
    parseAccessLog: parseSquidAccessLog,
  });
  return { ...handle, cacheLog: daemonLog };
}
