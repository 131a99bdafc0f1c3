// Child processes that cannot outlive the tests: each middlebox runs in its
// own process group, stop() signals the leader, waits for it, then makes sure
// no live member of the group is left (helpers, nginx workers). A process
// 'exit' hook kills whatever a crashed test left running.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, chown } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MiddleboxError } from './errors.js';

// ---------------------------------------------------------------------------
// Exit hooks

const exitHooks = new Set<() => void>();
let exitHookInstalled = false;

function runExitHooks(): void {
  // Last registered first, like nested cleanups: processes before their dirs
  // and namespaces.
  for (const hook of [...exitHooks].reverse()) {
    exitHooks.delete(hook);
    try {
      hook();
    } catch {
      // Best effort: the process is going away.
    }
  }
}

/**
 * Registers a synchronous, best-effort cleanup for when the test process exits
 * without having cleaned up: on 'exit', and on SIGINT/SIGTERM/SIGHUP (our
 * children live in their own process groups, so a Ctrl-C does not reach
 * them). Returns a function that unregisters it.
 */
export function onProcessExit(hook: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', runExitHooks);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        runExitHooks();
        // With no other listener left, the default action is back: die of
        // the signal as the process would have without this hook.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    }
  }
  exitHooks.add(hook);
  return () => {
    exitHooks.delete(hook);
  };
}

// ---------------------------------------------------------------------------
// Waiting

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What we are waiting for, for the timeout message. */
  what: string;
  /** Extra detail for the timeout message (e.g. a log tail), computed on failure. */
  detail?: () => Promise<string> | string;
}

/** Polls `check` until it returns a value other than undefined, bounded by `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 50;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      const detail = options.detail === undefined ? '' : await options.detail();
      throw new MiddleboxError(
        'MIDDLEBOX_WAIT_TIMEOUT',
        `timed out after ${options.timeoutMs} ms waiting for ${options.what}` + (detail === '' ? '' : `\n${detail}`),
      );
    }
    await sleep(intervalMs);
  }
}

/** Resolves with `promise`'s value, or undefined after `ms`; the timer never outlives the race. */
export async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const controller = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: controller.signal }).then(
        () => undefined,
        () => undefined,
      ),
    ]);
  } finally {
    controller.abort();
  }
}

/**
 * Resolves with `promise`'s value, or throws MIDDLEBOX_WAIT_TIMEOUT naming
 * `what` after `ms`: for a test hook's steps, which node:test (20) does not
 * bound, so a step that never settles would hold the whole file until the
 * runner's file timeout, with no word of which step it was.
 */
export async function bounded<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  const settled = await withinMs(
    promise.then((value) => ({ value })),
    ms,
  );
  if (settled === undefined) throw new MiddleboxError('MIDDLEBOX_WAIT_TIMEOUT', `${what} did not finish within ${ms} ms`);
  return settled.value;
}

// ---------------------------------------------------------------------------
// Ports and directories

/**
 * Asks the kernel for a free TCP port on 127.0.0.1 (bind port 0, read it,
 * close). Another process may take it before ours binds it: starters retry
 * when the program reports the address in use.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        if (port === 0) reject(new MiddleboxError('MIDDLEBOX_START_FAILED', 'could not get a free port'));
        else resolve(port);
      });
    });
  });
}

/**
 * Creates a private temp dir under os.tmpdir(). If `owner` is given (uid/gid),
 * the dir is chowned to it, for programs that drop root privileges.
 */
export async function makeTempDir(prefix: string, owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function removeDirSync(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Reads a file, or '' if it does not exist (yet). */
export async function readFileOrEmpty(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return '';
    throw error;
  }
}

/** The last `lines` lines of a text, for error messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------
// Process groups

/** Pids of live (non-zombie) processes whose process group is `pgid`, from /proc. */
async function liveGroupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parens.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

// ---------------------------------------------------------------------------
// Managed processes

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Settles when the leader process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** True once the leader has exited. */
  hasExited(): boolean;
  /** Captured stdout (the last 256 KiB). */
  stdout(): string;
  /** Captured stderr (the last 256 KiB). */
  stderr(): string;
  /** Waits (bounded) until captured stdout matches `pattern`; fails early if the process exits. */
  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /**
   * Stops the process group: `signal` to the leader, SIGKILL to the group
   * after `graceMs`, then waits until no live member is left. Idempotent.
   */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitStatus>;
}

export interface SpawnManagedOptions {
  /** Name used in messages. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string | undefined;
  /** Default: this process's environment. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Signal stop() sends first. Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
}

const OUTPUT_LIMIT = 256 * 1024;

/** Spawns a process as the leader of a new process group, capturing its output. */
export function spawnManaged(options: SpawnManagedOptions): ManagedProcess {
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so stop() can reach helpers and workers
  });
  child.once('error', () => {
    // Reported below (pid undefined) or through `exited`; never unhandled.
  });
  if (child.pid === undefined) {
    // spawn failed (ENOENT etc.); the 'error' event carries why.
    throw new MiddleboxError('MIDDLEBOX_START_FAILED', `could not spawn ${options.command} for ${options.name}`);
  }
  const pid: number = child.pid;

  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out = (out + chunk).slice(-OUTPUT_LIMIT);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err = (err + chunk).slice(-OUTPUT_LIMIT);
  });

  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
    child.once('error', () => {
      // An 'error' without 'exit' means the process never ran.
      if (child.exitCode === null && child.signalCode === null && exitStatus === undefined) {
        exitStatus = { code: null, signal: null };
        resolve(exitStatus);
      }
    });
  });

  const unregisterExitHook = onProcessExit(() => {
    killGroup(pid, 'SIGKILL');
  });

  let stopping: Promise<ExitStatus> | undefined;

  async function stopGroup(signal: NodeJS.Signals, graceMs: number): Promise<ExitStatus> {
    if (exitStatus === undefined) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
      const graceful = await withinMs(exited, graceMs);
      if (graceful === undefined) {
        killGroup(pid, 'SIGKILL');
        const killed = await withinMs(exited, 5_000);
        if (killed === undefined) {
          throw new MiddleboxError('MIDDLEBOX_STOP_TIMEOUT', `${options.name} (pid ${pid}) survived SIGKILL for 5 s`);
        }
      }
    }
    // The leader is gone; its helpers/workers get a moment to follow, then SIGKILL.
    const deadline = Date.now() + 2_000;
    while ((await liveGroupMembers(pid)).length > 0 && Date.now() < deadline) await sleep(50);
    if ((await liveGroupMembers(pid)).length > 0) {
      killGroup(pid, 'SIGKILL');
      const killDeadline = Date.now() + 5_000;
      while ((await liveGroupMembers(pid)).length > 0 && Date.now() < killDeadline) await sleep(50);
      const left = await liveGroupMembers(pid);
      if (left.length > 0) {
        throw new MiddleboxError(
          'MIDDLEBOX_STOP_TIMEOUT',
          `${options.name}: processes ${left.join(', ')} of group ${pid} survived SIGKILL for 5 s`,
        );
      }
    }
    unregisterExitHook();
    return await exited;
  }

  return {
    name: options.name,
    pid,
    child,
    exited,
    hasExited: () => exitStatus !== undefined,
    stdout: () => out,
    stderr: () => err,
    async waitForStdout(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
      return waitFor(
        () => {
          const match = out.match(pattern);
          if (match !== null) return match;
          if (exitStatus !== undefined) {
            throw new MiddleboxError(
              'MIDDLEBOX_START_FAILED',
              `${options.name} exited (code ${exitStatus.code}, signal ${exitStatus.signal}) before printing ${pattern}` +
                `\nstdout:\n${tail(out)}\nstderr:\n${tail(err)}`,
            );
          }
          return undefined;
        },
        { timeoutMs, what: `${options.name} to print ${pattern}`, detail: () => `stdout:\n${tail(out)}\nstderr:\n${tail(err)}` },
      );
    },
    stop(stopOptions = {}): Promise<ExitStatus> {
      stopping ??= stopGroup(stopOptions.signal ?? options.stopSignal ?? 'SIGTERM', stopOptions.graceMs ?? 10_000);
      return stopping;
    },
  };
}
