// What squid.ts and nginx.ts have in common: a daemon started for a test as
// our child, on a free loopback port, with a private temp dir for its config,
// logs and pid file. startDaemon() runs the start loop (temp dir, port,
// config, spawn, wait until ready; retry on a port someone else took in the
// meantime; clean up on any failure) and returns a handle that reads the
// daemon's access log and its own log (squid cache.log, nginx error.log),
// keeps both as they were at stop(), and stops it once.
//
// Each daemon's module says how to configure and run it (`configure`), how to
// tell it is ready (`isReady`) and how to parse its access log, and maps the
// handle onto its own public interface.

import { join } from 'node:path';
import { MiddleboxError } from './errors.js';
import {
  bounded,
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

/** Tries with a fresh port when the daemon reports the address in use. */
const START_ATTEMPTS = 3;
const DEFAULT_START_TIMEOUT_MS = 20_000;
const DEFAULT_ACCESS_WAIT_MS = 5_000;
const STOP_GRACE_MS = 10_000;
/** Bound on each phase of stop(); the group's exit takes at most ~17 s (grace, SIGKILL, helpers). */
const STOP_PHASE_MS = 30_000;
const ACCESS_LOG = 'access.log';

/** What the starter checks readiness with, on each poll. */
export interface ReadyContext {
  proc: ManagedProcess;
  dir: string;
  port: number;
  /** The daemon's own log (`logFile`) as it is now. */
  log: string;
}

export interface DaemonSpec<Entry> {
  /** Program name for messages: `squid`, `nginx`. */
  name: string;
  /** Prefix of the temp dir's name under os.tmpdir(). */
  tempDirPrefix: string;
  /** Owner to chown the temp dir to (the user a root daemon drops to), if any. */
  owner: { uid: number; gid: number } | undefined;
  /** The daemon's own log in the temp dir (not the access log): `cache.log`, `error.log`. */
  logFile: string;
  /** Bound on startup. Default 20 s. */
  startTimeoutMs: number | undefined;
  /** How often to check readiness while starting. */
  readyIntervalMs: number;
  /** This port rather than a free one picked for it (a restart where clients look): no retry when it is taken. */
  port?: number | undefined;
  /** Writes the config for `port` into `dir`; returns the command line to run (with `dir` as its cwd). */
  configure(dir: string, port: number): Promise<{ command: string; args: readonly string[] }>;
  /** True once the daemon accepts connections on `port`. */
  isReady(context: ReadyContext): Promise<boolean> | boolean;
  /** Parses `access.log` in the temp dir. */
  parseAccessLog(text: string): Entry[];
}

/** A started daemon; each daemon's module exposes it under its own interface. */
export interface DaemonHandle<Entry> {
  /** Pid of the daemon's (master) process, leader of its process group. */
  readonly pid: number;
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The instance's temp dir (removed by stop()). */
  readonly dir: string;
  /** Parsed access log so far (after stop(): as it was at stop). */
  accessLog(): Promise<Entry[]>;
  /** Waits (bounded, default 5 s) for an access log entry. */
  waitForAccessEntry(predicate: (entry: Entry) => boolean, timeoutMs?: number): Promise<Entry>;
  /**
   * Waits (bounded, default 5 s) until at least `count` entries match, and
   * returns every match. The daemon logs a transaction after its answer, so a
   * log read right after an answer may miss the last line.
   */
  waitForAccessEntries(predicate: (entry: Entry) => boolean, count: number, timeoutMs?: number): Promise<Entry[]>;
  /** The daemon's own log so far (after stop(): as it was at stop). */
  daemonLog(): Promise<string>;
  /** SIGTERM, waits for the whole process group to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

type StartOutcome = 'ready' | 'port-taken';

async function waitUntilReady<Entry>(
  spec: DaemonSpec<Entry>,
  proc: ManagedProcess,
  dir: string,
  port: number,
): Promise<StartOutcome> {
  const logFile = join(dir, spec.logFile);
  const details = async (): Promise<string> =>
    `${spec.logFile} (tail):\n${tail(await readFileOrEmpty(logFile))}\nstderr (tail):\n${tail(proc.stderr())}`;
  return waitFor<StartOutcome>(
    async () => {
      const log = await readFileOrEmpty(logFile);
      if (await spec.isReady({ proc, dir, port, log })) return 'ready';
      if (/Address already in use/.test(log + proc.stderr())) return 'port-taken';
      if (proc.hasExited()) {
        const status = await proc.exited;
        throw new MiddleboxError(
          'MIDDLEBOX_START_FAILED',
          `${spec.name} exited while starting (code ${status.code}, signal ${status.signal})\n${await details()}`,
        );
      }
      return undefined;
    },
    {
      timeoutMs: spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      intervalMs: spec.readyIntervalMs,
      what: `${spec.name} to accept connections on 127.0.0.1:${port}`,
      detail: details,
    },
  ).catch((error: unknown) => {
    if (error instanceof MiddleboxError && error.code === 'MIDDLEBOX_WAIT_TIMEOUT') {
      throw new MiddleboxError('MIDDLEBOX_START_TIMEOUT', error.message, { cause: error });
    }
    throw error;
  });
}

/** Starts the daemon and resolves once it accepts connections. */
export async function startDaemon<Entry>(spec: DaemonSpec<Entry>): Promise<DaemonHandle<Entry>> {
  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir(spec.tempDirPrefix, spec.owner);
    const unregisterDir = onProcessExit(() => removeDirSync(dir));
    let proc: ManagedProcess | undefined;
    try {
      const port = spec.port ?? (await findFreePort());
      const { command, args } = await spec.configure(dir, port);
      proc = spawnManaged({ name: `${spec.name} on port ${port}`, command, args, cwd: dir });
      if ((await waitUntilReady(spec, proc, dir, port)) === 'port-taken') {
        if (attempt >= START_ATTEMPTS || spec.port !== undefined) {
          throw new MiddleboxError('MIDDLEBOX_START_FAILED', `${spec.name}: port taken by another process ${attempt} times`);
        }
        await proc.stop();
        await removeDir(dir);
        unregisterDir();
        continue;
      }
      return makeHandle(spec, proc, dir, port, unregisterDir);
    } catch (error) {
      await proc?.stop().catch(() => undefined);
      await removeDir(dir);
      unregisterDir();
      throw error;
    }
  }
}

function makeHandle<Entry>(
  spec: DaemonSpec<Entry>,
  proc: ManagedProcess,
  dir: string,
  port: number,
  unregisterDir: () => void,
): DaemonHandle<Entry> {
  const accessLogFile = join(dir, ACCESS_LOG);
  const daemonLogFile = join(dir, spec.logFile);
  let finalLogs: { access: string; daemon: string } | undefined;
  let stopping: Promise<void> | undefined;

  const readAccess = async (): Promise<string> => finalLogs?.access ?? (await readFileOrEmpty(accessLogFile));
  const accessLog = async (): Promise<Entry[]> => spec.parseAccessLog(await readAccess());
  /** Waits (bounded) until `check` finds what it wants in the access log; fails with the log's tail. */
  const waitForLog = <T>(check: (log: Entry[]) => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    waitFor(async () => check(await accessLog()), { timeoutMs, what, detail: async () => `${ACCESS_LOG}:\n${tail(await readAccess())}` });

  return {
    pid: proc.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    accessLog,
    waitForAccessEntry(predicate, timeoutMs = DEFAULT_ACCESS_WAIT_MS) {
      return waitForLog((log) => log.find(predicate), `a matching ${spec.name} access log entry`, timeoutMs);
    },
    waitForAccessEntries(predicate, count, timeoutMs = DEFAULT_ACCESS_WAIT_MS) {
      return waitForLog(
        (log) => {
          const matches = log.filter(predicate);
          return matches.length >= count ? matches : undefined;
        },
        `${count} matching ${spec.name} access log entries`,
        timeoutMs,
      );
    },
    async daemonLog() {
      return finalLogs?.daemon ?? (await readFileOrEmpty(daemonLogFile));
    },
    stop() {
      stopping ??= (async () => {
        // Each phase is bounded and named, so a stop that does not return
        // says where it stuck.
        try {
          // SIGTERM: squid's shutdown, nginx's fast shutdown (SIGQUIT would
          // wait for held long polls).
          await bounded(`${spec.name}: its process group's exit`, proc.stop({ signal: 'SIGTERM', graceMs: STOP_GRACE_MS }), STOP_PHASE_MS);
        } finally {
          const logs = Promise.all([readFileOrEmpty(accessLogFile), readFileOrEmpty(daemonLogFile)]);
          const [access, daemon] = await bounded(`${spec.name}: reading its logs at stop`, logs, STOP_PHASE_MS);
          finalLogs = { access, daemon };
          await bounded(`${spec.name}: removing its temp dir ${dir}`, removeDir(dir), STOP_PHASE_MS);
          unregisterDir();
        }
      })();
      return stopping;
    },
  };
}
