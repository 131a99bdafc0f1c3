/**
 * The bench measures the shipped build: dist/, as `npm run build` makes it.
 * `npm run bench` builds first; a process that runs the bench (or a test that
 * needs dist/) some other way calls ensureDist(), which runs `npm run build`
 * when dist/ is missing or older than a source it is compiled from, and does
 * nothing otherwise.
 *
 * "Older" is decided per file: every source the build compiles
 * (tsconfig.build.json's `include` folders, without tests, declaration files
 * and its plain-path `exclude` entries) must have its dist/ .js file, written
 * no earlier than the source was last changed. tsc rewrites every output on
 * each build, so one changed source makes dist/ stale.
 *
 * Two processes that need a build at once (two test files) take turns
 * through a lock directory; the second finds dist/ fresh and does nothing.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository: the nearest folder up from this module with tsconfig.build.json (this module also runs bundled, from .tmp/bench/). */
export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const DIST = path.join(ROOT, 'dist');
const BUILD_CONFIG = path.join(ROOT, 'tsconfig.build.json');

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'tsconfig.build.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsconfig.build.json above ${from}`);
  }
}

interface BuildConfig {
  include?: string[];
  exclude?: string[];
}

async function mtimeMs(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
}

async function sourcesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    if (entry.name.endsWith('.test.ts') || entry.name.endsWith('.d.ts')) continue;
    out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

const TMP_KEY = createHash('sha256').update(ROOT).digest('hex').slice(0, 12);
const LOCK = path.join(os.tmpdir(), `holdline-build-${TMP_KEY}.lock`);
/**
 * Written when `npm run build` fails. tsc emits even when it reports errors,
 * so after a failed build dist/ is newer than every source and would pass
 * for fresh; this marker, newer than dist/, says it is not.
 */
const FAILED = path.join(os.tmpdir(), `holdline-build-${TMP_KEY}.failed`);

/** Why dist/ needs a build ("dist/server/session.js is older than server/session.ts"), or undefined when it is fresh. */
export async function distStaleness(): Promise<string | undefined> {
  const failedAt = await mtimeMs(FAILED);
  const entry = await mtimeMs(path.join(DIST, 'server', 'index.js'));
  if (failedAt !== undefined && (entry === undefined || failedAt >= entry)) return 'the last `npm run build` failed';
  const config = JSON.parse(await readFile(BUILD_CONFIG, 'utf8')) as BuildConfig;
  const excluded = new Set((config.exclude ?? []).filter((e) => !e.includes('*')).map((e) => path.join(ROOT, e)));
  const configTime = Math.max((await mtimeMs(BUILD_CONFIG)) ?? 0, (await mtimeMs(path.join(ROOT, 'tsconfig.json'))) ?? 0);
  for (const folder of config.include ?? []) {
    for (const source of await sourcesUnder(path.join(ROOT, folder))) {
      if (excluded.has(source)) continue;
      const rel = path.relative(ROOT, source);
      const out = path.join(DIST, rel.replace(/\.ts$/, '.js'));
      const built = await mtimeMs(out);
      if (built === undefined) return `${path.relative(ROOT, out)} is missing`;
      const changed = await mtimeMs(source);
      if (changed !== undefined && changed > built) return `${path.relative(ROOT, out)} is older than ${rel}`;
      if (configTime > built) return `${path.relative(ROOT, out)} is older than the tsconfig files`;
    }
  }
  return undefined;
}

function npmRunBuild(): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its output goes to our stderr: the bench's stdout is its table.
    const child = spawn('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`npm run build failed (${signal ?? `exit code ${code}`}): the bench measures dist/ and cannot run without it`));
    });
  });
}

/** A lock older than this is left over from a build that was killed. */
const STALE_LOCK_MS = 10 * 60_000;

async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const since = await mtimeMs(LOCK);
      if (since !== undefined && Date.now() - since > STALE_LOCK_MS) await rmdir(LOCK).catch(() => undefined);
      else if (performance.now() > deadline) throw new Error(`another build has held ${LOCK} for too long`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(LOCK).catch(() => undefined);
  }
}

/**
 * Make sure dist/ is built from the current sources: runs `npm run build`
 * when it is not (and says why on stderr). Returns whether it built.
 */
export async function ensureDist(): Promise<boolean> {
  if ((await distStaleness()) === undefined) return false;
  return withBuildLock(async () => {
    const why = await distStaleness();
    if (why === undefined) return false; // built by whoever held the lock
    process.stderr.write(`bench: building dist/ (npm run build): ${why}\n`);
    try {
      await npmRunBuild();
    } catch (e) {
      await writeFile(FAILED, `${new Date().toISOString()}\n`);
      throw e;
    }
    await rm(FAILED, { force: true });
    // A source changed while tsc ran (someone is editing): what was built is measured, and said so.
    const still = await distStaleness();
    if (still !== undefined) process.stderr.write(`bench: warning: a source changed during the build: ${still}\n`);
    return true;
  });
}
