/**
 * A redis-server of the bench's own, for the Redis section (workloads/redis.ts):
 * our child, on a free loopback port (never the machine's own Redis, 6379 or
 * any other), with its config on the command line and a private temp dir as
 * its working dir, no persistence (`save ""`, no AOF). The start loop is the
 * one of test/middlebox/redis.ts and daemon.ts, copied rather than imported
 * (the bench does not load test code): temp dir, free port, spawn, wait until
 * it answers PING, and start again on a fresh port when another process took
 * the port in between ("Address already in use").
 *
 * The parent talks to it with a few plain RESP commands (INFO, FLUSHALL,
 * CONFIG RESETSTAT) over a fresh socket each: no Redis client library in the
 * parent. The server children use ioredis, through Holdline's RedisStore.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface BenchRedis {
  readonly pid: number;
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s), remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const SEARCH = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function findRedisServer(): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''), ...SEARCH];
  for (const dir of dirs) {
    const file = path.join(dir, 'redis-server');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error('redis-server not found on PATH or in sbin: the Redis section needs it (`npm run system-deps` installs the Debian package redis-server)');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port === 0 ? reject(new Error('could not get a free port')) : resolve(port)));
    });
  });
}

/** A RESP reply, as far as the bench needs: simple strings, errors, integers, bulk strings. */
type Reply = { ok: true; value: string } | { ok: false; error: string };

function parseReply(buf: string): Reply | undefined {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return undefined;
  const head = buf.slice(1, eol);
  switch (buf[0]) {
    case '+':
    case ':':
      return { ok: true, value: head };
    case '-':
      return { ok: false, error: head };
    case '$': {
      const len = Number(head);
      if (len < 0) return { ok: true, value: '' };
      const body = Buffer.from(buf.slice(eol + 2), 'utf8');
      if (body.length < len + 2) return undefined;
      return { ok: true, value: body.subarray(0, len).toString('utf8') };
    }
    default:
      return { ok: false, error: `unexpected reply ${JSON.stringify(buf.slice(0, 40))}` };
  }
}

/** One command over a fresh connection; resolves with its reply (rejects on an error reply or after `timeoutMs`). */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (r: Reply | Error) => {
      socket.destroy();
      if (r instanceof Error) reject(r);
      else if (r.ok) resolve(r.value);
      else reject(new Error(`redis ${args[0] ?? ''}: ${r.error}`));
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`redis ${args[0] ?? ''}: no answer within ${timeoutMs} ms`)));
    socket.once('error', (e) => done(e));
    socket.once('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      data += chunk;
      const r = parseReply(data);
      if (r) done(r);
    });
  });
}

/** `INFO section` as a map of field to value. */
export async function redisInfo(port: number, section: string): Promise<Map<string, string>> {
  const text = await redisCommand(port, ['INFO', section]);
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** Calls per command from `INFO commandstats` (`cmdstat_evalsha:calls=12,...` → evalsha: 12). */
export async function commandCalls(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [k, v] of await redisInfo(port, 'commandstats')) {
    const m = /(?:^|,)calls=(\d+)/.exec(v);
    if (k.startsWith('cmdstat_') && m) out[k.slice('cmdstat_'.length)] = Number(m[1]);
  }
  return out;
}

/** CPU seconds redis-server has used (user + system, all its threads), from `INFO cpu`. */
export async function redisCpuSeconds(port: number): Promise<number> {
  const info = await redisInfo(port, 'cpu');
  return Number(info.get('used_cpu_user') ?? NaN) + Number(info.get('used_cpu_sys') ?? NaN);
}

function answersPing(port: number): Promise<boolean> {
  return redisCommand(port, ['PING'], 1_000).then(
    (r) => r === 'PONG',
    () => false,
  );
}

const live = new Set<ChildProcess>();
let hooked = false;
function killLeftovers(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Start a redis-server of our own; resolves once it answers PING. */
export async function startBenchRedis(startTimeoutMs = 20_000): Promise<BenchRedis> {
  const command = findRedisServer();
  if (!hooked) {
    hooked = true;
    process.on('exit', killLeftovers);
  }
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'holdline-bench-redis-'));
    const removeDir = () => rmSync(dir, { recursive: true, force: true });
    process.on('exit', removeDir);
    const port = await freePort();
    const logFile = path.join(dir, 'redis.log');
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--logfile', logFile, '--databases', '1'];
    const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4_000)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let gone = false;
    void exited.then(() => {
      gone = true;
      live.delete(child);
    });
    const stop = async (): Promise<void> => {
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
      process.off('exit', removeDir);
    };
    const deadline = performance.now() + startTimeoutMs;
    let outcome: 'ready' | 'port-taken' | undefined;
    while (outcome === undefined) {
      if (await answersPing(port)) outcome = 'ready';
      else {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        if (/Address already in use/.test(log + stderr)) outcome = 'port-taken';
        else if (gone || performance.now() > deadline) {
          await stop();
          throw new Error(`redis-server on port ${port} ${gone ? 'exited while starting' : `did not answer PING within ${startTimeoutMs} ms`}:\n${(log + stderr).slice(-2_000)}`);
        } else await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    if (outcome === 'port-taken') {
      await stop();
      if (attempt >= 3) throw new Error(`redis-server: port taken by another process ${attempt} times`);
      continue;
    }
    let stopping: Promise<void> | undefined;
    return {
      pid: child.pid ?? 0,
      port,
      url: `redis://127.0.0.1:${port}`,
      stop: () => (stopping ??= stop()),
    };
  }
}
