// A real redis-server for tests: one instance per call, our child, on a free
// loopback port, with its config on the command line and a private temp dir
// as its working dir (no persistence: `save ""`, no AOF). Never the machine's
// own Redis (6379 or any other): the port is picked free for this instance.
// The start loop (temp dir, port, spawn, wait until ready, retry on a port
// taken in the meantime) and stop are daemon.ts's.
//
// Facts (redis-server 7.0, Debian bookworm):
// - Ready: it answers PING with +PONG once the socket is bound and the
//   (empty) dataset loaded.
// - A taken port: it logs "Address already in use" and exits.
// - As root it runs as root (it does not drop privileges); harmless here.

import { connect } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';
import { ensureExecutable } from './system.js';

export interface RedisServerOptions {
  /** Bound on startup. Default 20 s. */
  startTimeoutMs?: number;
  /**
   * This port rather than a free one: to start Redis again where clients look
   * for it (the port must be ours: one a Redis of ours had, stopped just
   * before). Fails when it is taken.
   */
  port?: number;
  /** More redis-server arguments, after ours (`--cluster-enabled yes`, ...). */
  args?: readonly string[];
}

export interface RedisServer {
  /** Pid of redis-server, leader of its process group. */
  readonly pid: number;
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** The instance's temp dir (removed by stop()). */
  readonly dir: string;
  /** redis.log so far (after stop(): as it was at stop). */
  log(): Promise<string>;
  /** SIGTERM (redis-server shuts down, saving nothing), waits for it to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** One PING over a fresh connection: true when the answer is +PONG. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Starts a redis-server of our own and resolves once it answers PING. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const { startTimeoutMs, port, args = [] } = options;
  if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65_535)) {
    throw new TypeError(`options.port must be a TCP port number, got ${String(port)}`);
  }
  if (startTimeoutMs !== undefined && (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0)) {
    throw new TypeError(`options.startTimeoutMs must be a positive number, got ${String(startTimeoutMs)}`);
  }
  const redisServer = await ensureExecutable({ name: 'redis-server', debianPackage: 'redis-server' });
  const { daemonLog, ...handle } = await startDaemon({
    name: 'redis-server',
    tempDirPrefix: 'holdline-redis-',
    owner: undefined,
    logFile: 'redis.log',
    startTimeoutMs,
    readyIntervalMs: 25,
    port,
    configure(dir, port) {
      return Promise.resolve({
        command: redisServer,
        args: [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--protected-mode', 'yes',
          '--save', '',
          '--appendonly', 'no',
          '--daemonize', 'no',
          '--dir', dir,
          '--logfile', join(dir, 'redis.log'),
          '--databases', '1',
          ...args,
        ],
      });
    },
    isReady: ({ port }) => answersPing(port),
    parseAccessLog: () => [],
  });
  return {
    pid: handle.pid,
    port: handle.port,
    url: `redis://127.0.0.1:${handle.port}`,
    dir: handle.dir,
    log: daemonLog,
    stop: handle.stop,
  };
}

export interface RedisSentinel {
  readonly pid: number;
  readonly port: number;
  /** The name the sentinel monitors its master under. */
  readonly masterName: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A Redis Sentinel of our own (redis-server in sentinel mode, its config
 * file in a private temp dir, which Sentinel rewrites), on a free loopback
 * port, monitoring `master` as `masterName` with a quorum of one.
 */
export async function startSentinel(master: RedisServer, masterName = 'holdline'): Promise<RedisSentinel> {
  const redisServer = await ensureExecutable({ name: 'redis-server', debianPackage: 'redis-server' });
  const { daemonLog, ...handle } = await startDaemon({
    name: 'redis-sentinel',
    tempDirPrefix: 'holdline-sentinel-',
    owner: undefined,
    logFile: 'sentinel.log',
    startTimeoutMs: undefined,
    readyIntervalMs: 25,
    async configure(dir, port) {
      const conf = join(dir, 'sentinel.conf');
      await writeFile(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'daemonize no',
          `dir ${dir}`,
          `logfile ${join(dir, 'sentinel.log')}`,
          'sentinel resolve-hostnames no',
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
          `sentinel down-after-milliseconds ${masterName} 5000`,
          '',
        ].join('\n'),
      );
      return { command: redisServer, args: [conf, '--sentinel'] };
    },
    isReady: ({ port }) => answersPing(port),
    parseAccessLog: () => [],
  });
  return { pid: handle.pid, port: handle.port, masterName, log: daemonLog, stop: handle.stop };
}
