// A real nginx reverse proxy / load balancer for tests: one instance per call,
// on a free loopback port, config rendered from
// test/fixtures/nginx.conf.template into a private temp dir that also holds
// its pid file, logs and temp paths. Runs in the foreground (`daemon off;
// master_process on;`) as our child; its workers share its process group, so
// stop() reaches them too.
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
import { MiddleboxError } from './errors.js';
import {
  findFreePort,
  makeTempDir,
  onProcessExit,
  readFileOrEmpty,
  removeDir,
  removeDirSync,
  spawnManaged,
  tail,
  waitFor,
  type ManagedProcess,
} from './process.js';
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
  /** `proxy_read_timeout` in whole seconds. Default 30. */
  proxyReadTimeoutSec?: number;
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
  /** error.log so far (after stop(): as it was at stop). */
  errorLog(): Promise<string>;
  /** Fast shutdown (SIGTERM), waits for master and workers to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const WORKER_USER = 'nobody';
const START_ATTEMPTS = 3;

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

function validateOptions(options: NginxOptions): void {
  const { upstreams, proxyBuffering, proxyReadTimeoutSec, locationPath, startTimeoutMs } = options;
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
  });
  const configFile = join(dir, 'nginx.conf');
  await writeFile(configFile, config, { mode: 0o644 });
  return configFile;
}

type StartOutcome = { kind: 'ready' } | { kind: 'port-taken' };

async function waitUntilReady(proc: ManagedProcess, dir: string, port: number, timeoutMs: number): Promise<StartOutcome> {
  const errorLogFile = join(dir, 'error.log');
  const pidFile = join(dir, 'nginx.pid');
  const details = async (): Promise<string> =>
    `error.log (tail):\n${tail(await readFileOrEmpty(errorLogFile))}\nstderr (tail):\n${tail(proc.stderr())}`;
  return waitFor<StartOutcome>(
    async () => {
      const errors = (await readFileOrEmpty(errorLogFile)) + proc.stderr();
      if (/Address already in use/.test(errors)) return { kind: 'port-taken' };
      if (proc.hasExited()) {
        const status = await proc.exited;
        throw new MiddleboxError(
          'MIDDLEBOX_START_FAILED',
          `nginx exited while starting (code ${status.code}, signal ${status.signal})\n${await details()}`,
        );
      }
      const pid = (await readFileOrEmpty(pidFile)).trim();
      if (pid !== String(proc.pid)) return undefined;
      return (await canConnect(port)) ? { kind: 'ready' } : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `nginx to accept connections on 127.0.0.1:${port}`, detail: details },
  ).catch((error: unknown) => {
    if (error instanceof MiddleboxError && error.code === 'MIDDLEBOX_WAIT_TIMEOUT') {
      throw new MiddleboxError('MIDDLEBOX_START_TIMEOUT', error.message, { cause: error });
    }
    throw error;
  });
}

/** Starts nginx and resolves once it accepts connections. */
export async function startNginx(options: NginxOptions): Promise<NginxProxy> {
  validateOptions(options);
  const nginx = await ensureExecutable({ name: 'nginx', debianPackage: 'nginx-light' });
  const user = isRoot() ? await lookupUser(WORKER_USER) : undefined;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;

  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir('holdline-nginx-', user);
    const unregisterDir = onProcessExit(() => removeDirSync(dir));
    let proc: ManagedProcess | undefined;
    try {
      const port = await findFreePort();
      const configFile = await writeConfig(dir, port, options, user);
      proc = spawnManaged({
        name: `nginx on port ${port}`,
        command: nginx,
        args: ['-p', dir, '-c', configFile, '-e', join(dir, 'error.log'), '-g', 'daemon off; master_process on;'],
        cwd: dir,
      });
      const outcome = await waitUntilReady(proc, dir, port, startTimeoutMs);
      if (outcome.kind === 'port-taken') {
        if (attempt >= START_ATTEMPTS) {
          throw new MiddleboxError('MIDDLEBOX_START_FAILED', `nginx: port taken by another process ${attempt} times`);
        }
        await proc.stop();
        await removeDir(dir);
        unregisterDir();
        continue;
      }
      return makeHandle(proc, dir, port, unregisterDir);
    } catch (error) {
      await proc?.stop().catch(() => undefined);
      await removeDir(dir);
      unregisterDir();
      throw error;
    }
  }
}

function makeHandle(proc: ManagedProcess, dir: string, port: number, unregisterDir: () => void): NginxProxy {
  const accessLogFile = join(dir, 'access.log');
  const errorLogFile = join(dir, 'error.log');
  let finalLogs: { access: string; error: string } | undefined;
  let stopping: Promise<void> | undefined;

  const readAccess = async (): Promise<string> => finalLogs?.access ?? (await readFileOrEmpty(accessLogFile));
  const accessLog = async (): Promise<NginxAccessEntry[]> => parseNginxAccessLog(await readAccess());

  return {
    pid: proc.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    accessLog,
    waitForAccessEntry(predicate, timeoutMs = 5_000) {
      return waitFor(async () => (await accessLog()).find(predicate), {
        timeoutMs,
        what: 'a matching nginx access log entry',
        detail: async () => `access.log:\n${tail(await readAccess())}`,
      });
    },
    async errorLog() {
      return finalLogs?.error ?? (await readFileOrEmpty(errorLogFile));
    },
    stop() {
      stopping ??= (async () => {
        try {
          // SIGTERM is nginx's fast shutdown; SIGQUIT would wait for held long polls.
          await proc.stop({ signal: 'SIGTERM', graceMs: 10_000 });
        } finally {
          finalLogs = { access: await readFileOrEmpty(accessLogFile), error: await readFileOrEmpty(errorLogFile) };
          await removeDir(dir);
          unregisterDir();
        }
      })();
      return stopping;
    },
  };
}
