// A real nginx reverse proxy / load balancer for tests: one instance per call,
// on a free loopback port, config rendered from
// test/fixtures/nginx.conf.template into a private temp dir that also holds
// its pid file, logs and temp paths. Runs in the foreground (`daemon off;
// master_process on;`) as our child; its workers share its process group, so
// stop() reaches them too. This module says how to configure, run and parse
// nginx; the start loop (retries on a taken port) and the handle's log reading
// and stop are daemon.ts's.
//
// Facts (nginx-light 1.22, Debian bookworm):
// - Compiled-in paths point at /var/lib/nginx and /var/log/nginx; `-p`, `-e`
//   and the *_temp_path directives in the template keep it out of them.
// - As root the worker runs as `nobody:nogroup` (the template's `user`), and
//   needs the temp dir: the starter chowns it.
// - Readiness: the pid file is written after the listening socket is bound;
//   then a TCP connect to the port succeeds (nginx logs nothing for it).

import { writeFile } from 'node:fs/promises';
import { connect, isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';
import { readFileOrEmpty } from './process.js';
import { ensureExecutable, isRoot, lookupUser, type SystemUser } from './system.js';
import { renderFixture } from './template.js';

export interface NginxUpstream {
  /** A loopback host: 127.x.y.z, localhost or ::1. */
  host: string;
  port: number;
}

export interface NginxOptions {
  /** Servers to balance across, round robin, no stickiness. At least one. */
  upstreams: readonly NginxUpstream[];
  /** `proxy_buffering`. Default true (nginx's default). */
  proxyBuffering?: boolean;
  /** `proxy_read_timeout` in whole seconds. Default 30. On an upgraded (WebSocket) connection nginx closes it after this long without a byte from the upstream. */
  proxyReadTimeoutSec?: number;
  /**
   * Pass WebSocket upgrades: `proxy_set_header Upgrade $http_upgrade` and
   * `Connection $connection_upgrade` (a `map` giving "upgrade", or "" for a
   * plain request so upstream keep-alive still works). Default false: nginx
   * drops the hop-by-hop Upgrade header, so an upgrade reaches the upstream
   * as a plain GET.
   */
  webSocketUpgrade?: boolean;
  /** The `location` that proxies to the upstreams. Default `/`. */
  locationPath?: string;
  /** Bound on startup. Default 20 s. */
  startTimeoutMs?: number;
}

/** One access log line (the template's JSON `holdline` format). */
export interface NginxAccessEntry {
  time: string;
  remote: string;
  method: string;
  uri: string;
  status: number;
  bytes: number;
  requestTime: number;
  /** `host:port` of the upstream(s) tried, comma separated; null if none. */
  upstream: string | null;
  upstreamStatus: string | null;
}

export interface NginxProxy {
  /** Pid of the nginx (master) process, leader of its process group. */
  readonly pid: number;
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The instance's temp dir (removed by stop()). */
  readonly dir: string;
  /** Parsed access log so far (after stop(): as it was at stop). */
  accessLog(): Promise<NginxAccessEntry[]>;
  /** Waits (bounded) for an access log entry; nginx logs a request when it completes. */
  waitForAccessEntry(predicate: (entry: NginxAccessEntry) => boolean, timeoutMs?: number): Promise<NginxAccessEntry>;
  /** Waits (bounded) until at least `count` entries match; returns every match. */
  waitForAccessEntries(predicate: (entry: NginxAccessEntry) => boolean, count: number, timeoutMs?: number): Promise<NginxAccessEntry[]>;
  /** error.log so far (after stop(): as it was at stop). */
  errorLog(): Promise<string>;
  /** Fast shutdown (SIGTERM), waits for master and workers to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const WORKER_USER = 'nobody';

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

function validateOptions(options: NginxOptions): void {
  const { upstreams, proxyBuffering, proxyReadTimeoutSec, webSocketUpgrade, locationPath, startTimeoutMs } = options;
  if (!Array.isArray(upstreams) || upstreams.length === 0) {
    throw new TypeError('options.upstreams must be a non-empty array of { host, port }');
  }
  upstreams.forEach((upstream, index) => {
    if (typeof upstream.host !== 'string' || !isLoopbackHost(upstream.host)) {
      throw new TypeError(
        `options.upstreams[${index}].host must be a loopback host (127.x.y.z, localhost, ::1), got ${JSON.stringify(upstream.host)}`,
      );
    }
    if (!Number.isInteger(upstream.port) || upstream.port < 1 || upstream.port > 65535) {
      throw new TypeError(`options.upstreams[${index}].port must be an integer in 1..65535, got ${String(upstream.port)}`);
    }
  });
  if (proxyBuffering !== undefined && typeof proxyBuffering !== 'boolean') {
    throw new TypeError(`options.proxyBuffering must be a boolean, got ${typeof proxyBuffering}`);
  }
  if (webSocketUpgrade !== undefined && typeof webSocketUpgrade !== 'boolean') {
    throw new TypeError(`options.webSocketUpgrade must be a boolean, got ${typeof webSocketUpgrade}`);
  }
  if (proxyReadTimeoutSec !== undefined && (!Number.isInteger(proxyReadTimeoutSec) || proxyReadTimeoutSec < 1)) {
    throw new TypeError(`options.proxyReadTimeoutSec must be a positive integer (seconds), got ${String(proxyReadTimeoutSec)}`);
  }
  if (locationPath !== undefined && (typeof locationPath !== 'string' || !/^\/[A-Za-z0-9._~/-]*$/.test(locationPath))) {
    throw new TypeError(`options.locationPath must be a path like "/holdline/", got ${JSON.stringify(locationPath)}`);
  }
  if (startTimeoutMs !== undefined && (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0)) {
    throw new TypeError(`options.startTimeoutMs must be a positive number, got ${String(startTimeoutMs)}`);
  }
}

export function parseNginxAccessLog(text: string): NginxAccessEntry[] {
  const entries: NginxAccessEntry[] = [];
  // Only complete lines: the last one may still be being written.
  for (const line of text.split('\n').slice(0, -1)) {
    if (line.trim() === '') continue;
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null) continue;
    const field = (name: string): unknown => (value as Record<string, unknown>)[name];
    const str = (name: string): string => String(field(name) ?? '');
    const orNull = (name: string): string | null => (str(name) === '' || str(name) === '-' ? null : str(name));
    entries.push({
      time: str('time'),
      remote: str('remote'),
      method: str('method'),
      uri: str('uri'),
      status: Number(field('status')),
      bytes: Number(field('bytes')),
      requestTime: Number(field('requestTime')),
      upstream: orNull('upstream'),
      upstreamStatus: orNull('upstreamStatus'),
    });
  }
  return entries;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function writeConfig(dir: string, port: number, options: NginxOptions, user: SystemUser | undefined): Promise<string> {
  const servers = options.upstreams
    .map(({ host, port: upstreamPort }) => `        server ${isIPv6(host) ? `[${host}]` : host}:${upstreamPort};`)
    .join('\n');
  const config = await renderFixture('nginx.conf.template', {
    USER: user === undefined ? '# (not root: workers run as the current user)' : `user ${user.name} ${user.groupName};`,
    DIR: dir,
    PORT: String(port),
    UPSTREAM_SERVERS: servers,
    LOCATION_PATH: options.locationPath ?? '/',
    PROXY_BUFFERING: options.proxyBuffering === false ? 'off' : 'on',
    PROXY_READ_TIMEOUT: String(options.proxyReadTimeoutSec ?? 30),
    UPGRADE_MAP:
      options.webSocketUpgrade === true
        ? `map $http_upgrade $connection_upgrade {\n        default upgrade;\n        '' "";\n    }`
        : '# (no WebSocket upgrades: see webSocketUpgrade)',
    CONNECTION_HEADERS:
      options.webSocketUpgrade === true
        ? 'proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;'
        : 'proxy_set_header Connection "";',
  });
  const configFile = join(dir, 'nginx.conf');
  await writeFile(configFile, config, { mode: 0o644 });
  return configFile;
}

/** Starts nginx and resolves once it accepts connections. */
export async function startNginx(options: NginxOptions): Promise<NginxProxy> {
  validateOptions(options);
  const nginx = await ensureExecutable({ name: 'nginx', debianPackage: 'nginx-light' });
  const user = isRoot() ? await lookupUser(WORKER_USER) : undefined;
  const { daemonLog, ...handle } = await startDaemon({
    name: 'nginx',
    tempDirPrefix: 'holdline-nginx-',
    owner: user,
    logFile: 'error.log',
    startTimeoutMs: options.startTimeoutMs,
    readyIntervalMs: 50,
    async configure(dir, port) {
      const configFile = await writeConfig(dir, port, options, user);
      return {
        command: nginx,
        args: ['-p', dir, '-c', configFile, '-e', join(dir, 'error.log'), '-g', 'daemon off; master_process on;'],
      };
    },
    // The pid file is written once the socket is bound; then connecting works.
    isReady: async ({ proc, dir, port }) =>
      (await readFileOrEmpty(join(dir, 'nginx.pid'))).trim() === String(proc.pid) && (await canConnect(port)),
    parseAccessLog: parseNginxAccessLog,
  });
  return { ...handle, errorLog: daemonLog };
}
