/**
 * The library under test: Holdline as shipped. Every bench process (the
 * parent and every child) takes HoldlineServer and HoldlineClient from here,
 * and they come from dist/, the output of `npm run build`, loaded through the
 * package's own `exports` map (`holdline/server`, `holdline/client`: Node
 * resolves a package's own name from inside it), as an application that
 * installed the package loads them. Never the TypeScript sources.
 *
 * Children run plain node on the compiled bench code (agent-bundle.ts); the
 * parent, and tests that use the harness, run under tsx, which compiles .ts
 * files only and hands dist/'s .js files to Node untouched. Either way it is
 * checked here, once per process: the text of each class as loaded must be
 * the text of a file in dist/, so a loader that rewrote the library
 * (esbuild's `__name()` wrappers, stripped comments) would stop the bench
 * rather than be measured.
 *
 * Usage: `const { HoldlineServer } = await loadHoldline();`
 *
 * The types are the sources' (dist/ is compiled from them), so type-checking
 * the bench does not need a build.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as ClientApi from '../../client/index.js';
import type * as ServerApi from '../../server/index.js';
import type * as RedisApi from '../../server/redis.js';
import { DIST, ROOT } from './dist-build.js';

function resolveInDist(specifier: string): string {
  const missing = () => new Error(`${specifier}: dist/ is missing or incomplete: run \`npm run build\` (\`npm run bench\` does)`);
  let url: string;
  try {
    url = import.meta.resolve(specifier);
  } catch (e) {
    throw Object.assign(missing(), { cause: e });
  }
  const file = url.startsWith('file:') ? fileURLToPath(url) : url;
  if (!file.startsWith(DIST + path.sep)) throw new Error(`${specifier} resolves to ${url}, not into dist/: check package.json "exports"`);
  if (!existsSync(file)) throw missing();
  return url;
}

/** Holdline as loaded from dist/, and where from. */
export interface Holdline {
  HoldlineServer: typeof ServerApi.HoldlineServer;
  HoldlineClient: typeof ClientApi.HoldlineClient;
  /** The entry points, relative to the repository: dist/server/index.js, dist/client/index.js. */
  library: { server: string; client: string };
}

/** Throws unless the source text of `cls` as loaded is in one of the .js files under dist/`folder`. */
async function assertLoadedAsBuilt(name: string, cls: abstract new (...args: never[]) => unknown, folder: string): Promise<void> {
  const text = Function.prototype.toString.call(cls);
  const dir = path.join(DIST, folder);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    if ((await readFile(path.join(entry.parentPath, entry.name), 'utf8')).includes(text)) return;
  }
  throw new Error(`the ${name} this process loaded is not the text of any file in dist/${folder}: something (a loader?) rewrote the library under test`);
}

async function load(): Promise<Holdline> {
  const serverUrl = resolveInDist('holdline/server');
  const clientUrl = resolveInDist('holdline/client');
  const server = (await import(serverUrl)) as typeof ServerApi;
  const client = (await import(clientUrl)) as typeof ClientApi;
  await assertLoadedAsBuilt('HoldlineServer', server.HoldlineServer, 'server');
  await assertLoadedAsBuilt('HoldlineClient', client.HoldlineClient, 'client');
  return {
    HoldlineServer: server.HoldlineServer,
    HoldlineClient: client.HoldlineClient,
    library: { server: path.relative(ROOT, fileURLToPath(serverUrl)), client: path.relative(ROOT, fileURLToPath(clientUrl)) },
  };
}

let loading: Promise<Holdline> | undefined;

/**
 * Load Holdline from dist/ (once per process; later calls share the first).
 * Nothing is loaded before the first call, so a process can build dist/
 * first (ensureDist) and load it afterwards. Every bench child calls this as
 * it starts (agent.ts), before it reports ready.
 */
export function loadHoldline(): Promise<Holdline> {
  loading ??= load();
  return loading;
}

async function loadRedis(): Promise<typeof RedisApi.RedisStore> {
  const url = resolveInDist('holdline/redis');
  const redis = (await import(url)) as typeof RedisApi;
  await assertLoadedAsBuilt('RedisStore', redis.RedisStore, 'server');
  return redis.RedisStore;
}

let loadingRedis: Promise<typeof RedisApi.RedisStore> | undefined;

/**
 * RedisStore from dist/ (`holdline/redis`, checked like the others), loaded
 * on first use only: it imports ioredis, which a child that never uses Redis
 * does not need to load.
 */
export function loadRedisStore(): Promise<typeof RedisApi.RedisStore> {
  loadingRedis ??= loadRedis();
  return loadingRedis;
}

export type HoldlineServer = ServerApi.HoldlineServer;
export type HoldlineClient = ClientApi.HoldlineClient;
export type Session = ServerApi.Session;
