// Host facts and commands: who we run as, where a program lives, installing a
// missing Debian package (root only), and running a command with a bound.

import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CommandFailedError, MiddleboxError } from './errors.js';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long. Default 30 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; rejects with CommandFailedError on non-zero exit or timeout. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: options.env ?? process.env, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        const exitCode = typeof error.code === 'number' ? error.code : null;
        const reason = error.killed
          ? `did not finish within ${timeoutMs} ms`
          : exitCode !== null
            ? `exited with code ${exitCode}`
            : `failed: ${error.message}`;
        reject(new CommandFailedError([command, ...args], { exitCode, stdout, stderr, reason }, { cause: error }));
      },
    );
  });
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds an executable by name in `dirs`, or (when `dirs` is not given) on PATH
 * plus the sbin directories, which a non-root PATH often lacks.
 */
export function findExecutable(name: string, dirs?: readonly string[]): string | undefined {
  const searched = dirs ?? [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
  for (const dir of searched) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export interface EnsureExecutableOptions {
  /** File name of the executable, e.g. `squid` or `basic_ncsa_auth`. */
  name: string;
  /** The Debian package that ships it. */
  debianPackage: string;
  /** Directories to search instead of PATH (for helpers outside PATH). */
  dirs?: readonly string[];
}

// apt/dpkg take a global lock: installs run one after another, and each
// package is attempted once per process.
let aptQueue: Promise<unknown> = Promise.resolve();
const installs = new Map<string, Promise<void>>();

async function aptInstall(debianPackage: string): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): Promise<RunResult> =>
    run('apt-get', ['install', '-y', '--no-install-recommends', debianPackage], { env, timeoutMs: 600_000 });
  try {
    await install();
  } catch {
    // The package lists are often missing on a fresh CI image.
    await run('apt-get', ['update'], { env, timeoutMs: 600_000 });
    await install();
  }
}

function installOnce(debianPackage: string): Promise<void> {
  let pending = installs.get(debianPackage);
  if (pending === undefined) {
    pending = aptQueue.then(() => aptInstall(debianPackage));
    aptQueue = pending.catch(() => undefined);
    installs.set(debianPackage, pending);
  }
  return pending;
}

/**
 * Returns the absolute path of an executable. If it is missing and we run as
 * root, installs its Debian package (`apt-get install -y`, with `apt-get
 * update` on failure); otherwise throws a MiddleboxError naming the package.
 * Never skips silently.
 */
export async function ensureExecutable(options: EnsureExecutableOptions): Promise<string> {
  const { name, debianPackage, dirs } = options;
  const found = findExecutable(name, dirs);
  if (found !== undefined) return found;
  const where = dirs === undefined ? 'PATH or sbin' : dirs.join(', ');
  if (!isRoot()) {
    throw new MiddleboxError(
      'MIDDLEBOX_MISSING_PACKAGE',
      `${name} not found in ${where}: install the Debian package '${debianPackage}' ` +
        `(apt-get install -y ${debianPackage}), or run the tests as root so they install it`,
    );
  }
  try {
    await installOnce(debianPackage);
  } catch (error) {
    throw new MiddleboxError(
      'MIDDLEBOX_MISSING_PACKAGE',
      `${name} not found in ${where} and installing the Debian package '${debianPackage}' failed`,
      { cause: error },
    );
  }
  const installed = findExecutable(name, dirs);
  if (installed === undefined) {
    throw new MiddleboxError(
      'MIDDLEBOX_MISSING_PACKAGE',
      `installed the Debian package '${debianPackage}' but ${name} is still not in ${where}`,
    );
  }
  return installed;
}

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  /** Name of the user's primary group. */
  groupName: string;
}

/** Looks a user up through NSS (`getent`), with its primary group's name. */
export async function lookupUser(name: string): Promise<SystemUser> {
  let passwd: RunResult;
  try {
    passwd = await run('getent', ['passwd', name], { timeoutMs: 5_000 });
  } catch (error) {
    throw new MiddleboxError('MIDDLEBOX_MISSING_PACKAGE', `system user '${name}' does not exist`, { cause: error });
  }
  const fields = passwd.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new MiddleboxError('MIDDLEBOX_COMMAND_FAILED', `cannot parse getent passwd ${name}: ${passwd.stdout.trim()}`);
  }
  const group = await run('getent', ['group', String(gid)], { timeoutMs: 5_000 });
  const groupName = group.stdout.trim().split(':')[0] ?? '';
  if (groupName === '') {
    throw new MiddleboxError('MIDDLEBOX_COMMAND_FAILED', `cannot find the name of group ${gid} (user '${name}')`);
  }
  return { name, uid, gid, groupName };
}
