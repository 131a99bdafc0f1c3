/**
 * The package as a user gets it. From the files git would check out (what
 * `npm install <git url>` builds from), `npm pack` runs `prepack` (clean and
 * build) and makes the tarball; `publint` and `@arethetypeswrong/cli` (ESM
 * and bundler resolution) must find nothing wrong with it. A fresh app in a
 * temporary directory installs the tarball, compiles every ```ts block of
 * README.md verbatim with `tsc --strict` (no skipLibCheck, no @types/ws, no
 * express types unless the example imports express), plus a file importing
 * every export of the package, and runs the README's server and client
 * examples against each other.
 *
 * A second test installs the tree from a git URL (npm runs the `prepare`
 * script of a git dependency, not `prepack`; `prepare` builds only then).
 *
 * It stages its own copy of the sources, so the dist/ that other tests use
 * is never touched. npm installs from its cache when it can (--prefer-offline)
 * and otherwise from the npm registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const BIN = join(ROOT, 'node_modules', '.bin');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program to its end, or kill it after `timeoutMs`. Never rejects: the caller asserts on `code`. */
function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false', ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        done({ code, stdout, stderr });
      },
    );
  });
}

function show(r: Ran): string {
  return `exit ${String(r.code)}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`;
}

/** The ```ts blocks of a markdown text, in order. */
export function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
}

/** Tracked and untracked-but-not-ignored files: what a clone of this tree would hold. */
async function checkoutFiles(): Promise<string[]> {
  const r = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], ROOT, 30_000);
  assert.equal(r.code, 0, show(r));
  return r.stdout.split('\0').filter((f) => f !== '' && !f.startsWith('node_modules') && !f.startsWith('dist/'));
}

/**
 * tsc's errors in the examples and in Holdline's declarations. Errors inside
 * other packages' declarations (ioredis's own .d.ts imports an untyped
 * module) are theirs, and an app with skipLibCheck never sees them.
 */
function ourErrors(r: Ran): string[] {
  const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
  if (r.code !== 0 && errors.length === 0) return [`tsc failed without a diagnostic: ${show(r)}`];
  return errors.filter((l) => !l.startsWith('node_modules/') || l.startsWith('node_modules/holdline/'));
}

/** Copy what a clone of this tree would hold to `dir`. */
async function stageTree(dir: string): Promise<string> {
  for (const f of await checkoutFiles()) {
    await mkdir(dirname(join(dir, f)), { recursive: true });
    await cp(join(ROOT, f), join(dir, f));
  }
  return dir;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((done) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        done(true);
      });
      s.on('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

test('the README has a server and a client example, and every ```ts block is a whole module', async () => {
  const blocks = tsBlocks(await readFile(join(ROOT, 'README.md'), 'utf8'));
  assert.ok(blocks.some((b) => b.includes('.listen(') && b.includes("from 'holdline/server'")), 'a server example');
  assert.ok(blocks.some((b) => b.includes("from 'holdline/client'")), 'a client example');
  for (const b of blocks) assert.match(b, /^import /m, `a block without imports is a fragment:\n${b}`);
});

test('npm pack ships a package that publint and attw pass, installs in a fresh app, and runs the README examples', { timeout: 600_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'holdline-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));

  // 1. A clean copy of the tree (as a git clone would have it), with this repository's node_modules to build with.
  const stage = await stageTree(join(work, 'stage'));
  await symlink(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir');

  // 2. npm pack: prepack builds.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], stage, 300_000);
  assert.equal(packed.code, 0, show(packed));
  const info = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
  assert.ok(info);
  const tarball = join(work, info.filename);
  const files = info.files.map((f) => f.path);
  for (const f of ['LICENSE', 'README.md', 'PROTOCOL.md', 'package.json', 'dist/server/index.js', 'dist/client/index.js', 'dist/browser/holdline.js', 'dist/browser/holdline.d.ts', 'dist/browser/holdline-tabs.d.ts']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.deepEqual(files.filter((f) => /\.test\.|^(test|e2e|bench|scripts)\//.test(f)), [], 'no tests or tools');
  assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources: the maps embed them');

  // Source maps carry their sources.
  const map = JSON.parse(await readFile(join(stage, 'dist', 'server', 'session.js.map'), 'utf8')) as { sourcesContent?: unknown[] };
  assert.ok(Array.isArray(map.sourcesContent) && typeof map.sourcesContent[0] === 'string', 'tsc maps embed the sources');
  const bundleMap = JSON.parse(await readFile(join(stage, 'dist', 'browser', 'holdline.js.map'), 'utf8')) as { sources: unknown[]; sourcesContent?: unknown[] };
  assert.equal(bundleMap.sourcesContent?.length, bundleMap.sources.length, 'the bundle map embeds every source');

  // 3. The tarball as the linters see it.
  const publint = await run(join(BIN, 'publint'), ['run', tarball, '--strict'], work, 120_000);
  assert.equal(publint.code, 0, show(publint));
  assert.doesNotMatch(publint.stdout, /warning|error|suggestion/i, show(publint));
  const attw = await run(join(BIN, 'attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-emoji'], work, 120_000);
  assert.equal(attw.code, 0, show(attw));

  // 4. A fresh app installs it, with what the README's examples import.
  const app = join(work, 'app');
  await mkdir(join(app, 'src'), { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const installed = await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, 'express@^5', '@types/express@^5', '@types/node@^20', 'ioredis@^6', 'prom-client@^15'],
    app,
    300_000,
  );
  assert.equal(installed.code, 0, show(installed));
  const pkg = JSON.parse(await readFile(join(app, 'node_modules', 'holdline', 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>;
    dependencies: Record<string, string>;
  };
  assert.equal(pkg.dependencies['express'], undefined, 'express is not a dependency');
  // Its declarations never import express (an app on Express 4, or on none, needs no @types/express).
  const declarations = (await readdir(join(app, 'node_modules', 'holdline', 'dist'), { recursive: true })).filter((f) => f.endsWith('.d.ts'));
  assert.ok(declarations.length > 10);
  for (const f of declarations) {
    const text = await readFile(join(app, 'node_modules', 'holdline', 'dist', f), 'utf8');
    assert.doesNotMatch(text, /from ['"]express['"]|import\(['"]express['"]\)/, `${f} imports express`);
  }
  const installedDeps = await readdir(join(app, 'node_modules'));
  assert.ok(!installedDeps.includes('@types/ws'), 'no @types/ws: the app compiles without it');

  // 5. Compile the README's examples verbatim, and an import of every export, with tsc --strict.
  const blocks = tsBlocks(await readFile(join(stage, 'README.md'), 'utf8'));
  const names: string[] = [];
  for (const [i, b] of blocks.entries()) {
    // Runnable: the server example, and client examples aimed at it (through PORT); the others are compiled only.
    const name = b.includes('.listen(') ? `server-${i}` : b.includes('new HoldlineClient(') && b.includes('process.env.PORT') ? `client-${i}` : `example-${i}`;
    names.push(name);
    await writeFile(join(app, 'src', `${name}.ts`), b);
  }
  const entries = Object.keys(pkg.exports).filter((e) => e !== './package.json');
  await writeFile(
    join(app, 'src', 'all-exports.ts'),
    entries.map((e, i) => `import * as e${i} from ${JSON.stringify(`holdline${e.slice(1)}`)};\nconsole.log(Object.keys(e${i}).length);`).join('\n') + '\n',
  );
  await writeFile(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        types: ['node'],
        skipLibCheck: false,
        outDir: 'out',
        rootDir: 'src',
      },
      include: ['src'],
    }),
  );
  const tsc = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], app, 180_000);
  assert.deepEqual(ourErrors(tsc), [], show(tsc));
  // The same with bundler resolution (Vite, webpack, esbuild users).
  const bundler = await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--noEmit', '--module', 'ESNext', '--moduleResolution', 'Bundler'], app, 180_000);
  assert.deepEqual(ourErrors(bundler), [], show(bundler));

  // 6. Run them: the server example, then the client example against it.
  const server = names.find((n) => n.startsWith('server-'));
  const clients = names.filter((n) => n.startsWith('client-'));
  assert.ok(server !== undefined && clients.length > 0);
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '' };
  const child = spawn(process.execPath, [join(app, 'out', `${server}.js`)], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverOut = '';
  child.stdout.on('data', (d: Buffer) => (serverOut += d.toString()));
  child.stderr.on('data', (d: Buffer) => (serverOut += d.toString()));
  const exited = new Promise((ok) => child.once('exit', ok));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await waitForPort(port, 20_000);
  for (const c of clients) {
    const ran = await run(process.execPath, [join(app, 'out', `${c}.js`)], app, 30_000, env);
    assert.equal(ran.code, 0, `${c}: ${show(ran)}\nserver: ${serverOut}`);
    assert.match(ran.stdout, /echo: hello/, `${c} printed the reply`);
  }
  const all = await run(process.execPath, [join(app, 'out', 'all-exports.js')], app, 30_000, env);
  // The browser bundles load in Node too (they use fetch and WebSocket globals only when used).
  assert.equal(all.code, 0, show(all));
});

test('npm install from a git URL builds the package (prepare) and it loads', { timeout: 900_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'holdline-git-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const repo = await stageTree(join(work, 'repo'));
  const git = ['-c', 'user.email=test@holdline.invalid', '-c', 'user.name=test', '-c', 'commit.gpgsign=false'];
  for (const args of [['init', '-q'], ['add', '-A'], [...git, 'commit', '-qm', 'snapshot']]) {
    const r = await run('git', args, repo, 60_000);
    assert.equal(r.code, 0, show(r));
  }
  const app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // npm clones it, installs its dependencies (dev ones too) and runs its prepare script, which builds.
  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `git+file://${repo}`], app, 600_000);
  assert.equal(installed.code, 0, show(installed));
  const loaded = await run(
    process.execPath,
    ['--input-type=module', '-e', "const s = await import('holdline/server'); const c = await import('holdline/client'); console.log(typeof s.HoldlineServer, typeof c.HoldlineClient);"],
    app,
    30_000,
  );
  assert.equal(loaded.code, 0, show(loaded));
  assert.equal(loaded.stdout.trim(), 'function function');
  const files = await readdir(join(app, 'node_modules', 'holdline', 'dist', 'browser'));
  assert.ok(files.includes('holdline.js') && files.includes('holdline.d.ts'), files.join(', '));
});
