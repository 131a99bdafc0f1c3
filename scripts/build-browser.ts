/**
 * Browser bundles of the client, for `<script type="module">` without a bundler:
 *
 *   dist/browser/holdline.js       HoldlineClient (client/browser.ts)
 *   dist/browser/holdline-tabs.js  HoldlineClient + HoldlineTabClient (client/tab-channel.ts)
 *
 * Each is one self-contained ESM file (no chunks to fetch), minified, with a
 * source map beside it (sources embedded, so it works from node_modules) and a
 * `.d.ts` that re-exports the types tsc wrote to dist/client/ (the package's
 * `holdline/browser` and `holdline/browser/tabs` exports). `platform: 'browser'` makes esbuild resolve packages
 * by their `browser` conditions; the metafile lists every input, and
 * `nodeOnlyInputs()` names any that must not be there (undici, `node:`
 * built-ins, the Node platform file), which e2e/bundle.test.ts checks.
 *
 * Run: `tsx scripts/build-browser.ts` (prints the sizes). The demo server calls
 * `ensureBrowserBundle()` on start, so `npm start` works on a fresh clone.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BROWSER_DIST = join(ROOT, 'dist', 'browser');

/** Output file name -> entry source, relative to the repository root. */
export const BROWSER_BUNDLES = {
  'holdline.js': ['client/browser.ts'],
  'holdline-tabs.js': ['client/browser.ts', 'client/tab-channel.ts'],
} as const satisfies Record<string, readonly string[]>;

export type BundleName = keyof typeof BROWSER_BUNDLES;

export interface BuildBrowserOptions {
  /** Directory to write into. Default dist/browser. */
  outdir?: string;
  /** false: build in memory only (tests). Default true. */
  write?: boolean;
  /** Default true. */
  minify?: boolean;
}

export interface BuiltBundle {
  name: BundleName;
  file: string;
  bytes: number;
  /** Every input esbuild read, as paths relative to the repository root (node_modules included). */
  inputs: string[];
  metafile: Metafile;
  /** The bundle's text, when built with `write: false`. */
  code: string | undefined;
}

/** Build one bundle. Entries are re-exported from a virtual module, so each output is a single file. */
export async function buildBrowserBundle(name: BundleName, options: BuildBrowserOptions = {}): Promise<BuiltBundle> {
  const outdir = options.outdir ?? BROWSER_DIST;
  const file = join(outdir, name);
  const entries = BROWSER_BUNDLES[name];
  const result = await build({
    stdin: {
      contents: entries.map((e) => `export * from ${JSON.stringify(`./${e}`)};`).join('\n'),
      resolveDir: ROOT,
      sourcefile: `holdline-browser-entry:${name}`,
      loader: 'ts',
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: options.minify ?? true,
    sourcemap: true,
    sourcesContent: true,
    legalComments: 'eof',
    metafile: true,
    write: options.write ?? true,
    outfile: file,
    absWorkingDir: ROOT,
    logLevel: 'silent',
  });
  if (options.write ?? true) await writeFile(file.replace(/\.js$/, '.d.ts'), bundleTypes(outdir, entries));
  const output = Object.entries(result.metafile.outputs).find(([out]) => out.endsWith('.js'));
  return {
    name,
    file,
    bytes: output?.[1].bytes ?? 0,
    inputs: Object.keys(result.metafile.inputs),
    metafile: result.metafile,
    code: result.outputFiles?.find((f) => f.path.endsWith('.js'))?.text,
  };
}

/** The bundle's declarations: re-exports of what tsc wrote for its entries under dist/. */
export function bundleTypes(outdir: string, entries: readonly string[]): string {
  const lines = entries.map((e) => {
    let from = relative(outdir, join(ROOT, 'dist', e.replace(/\.ts$/, '.js'))).split('\\').join('/');
    if (!from.startsWith('.')) from = `./${from}`;
    return `export * from ${JSON.stringify(from)};`;
  });
  return `// The declarations of ${entries.join(' and ')}, which this bundle exports (scripts/build-browser.ts).\n${lines.join('\n')}\n`;
}

/** Build every browser bundle. */
export async function buildBrowser(options: BuildBrowserOptions = {}): Promise<BuiltBundle[]> {
  const names = Object.keys(BROWSER_BUNDLES) as BundleName[];
  return Promise.all(names.map((n) => buildBrowserBundle(n, options)));
}

/** Inputs that have no business in a browser bundle. */
export function nodeOnlyInputs(inputs: readonly string[]): string[] {
  return inputs.filter(
    (i) =>
      i.startsWith('node:') ||
      /(^|\/)node_modules\/undici\//.test(i) ||
      /(^|\/)node_modules\/@types\/node\//.test(i) ||
      /(^|\/)client\/(platform\.node|http1-connection|index)\.ts$/.test(i) ||
      /(^|\/)client\/node\//.test(i) ||
      /(^|\/)server\//.test(i),
  );
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Build the bundles when one is missing or older than a source it was built
 * from (client/, shared/). Cheap when they are fresh: a few stats.
 * Returns true when it built.
 */
export async function ensureBrowserBundle(options: BuildBrowserOptions = {}): Promise<boolean> {
  const outdir = options.outdir ?? BROWSER_DIST;
  const outputs = await Promise.all(Object.keys(BROWSER_BUNDLES).map((n) => mtime(join(outdir, n))));
  if (outputs.every((m) => m !== undefined)) {
    const oldest = Math.min(...(outputs as number[]));
    let newest = 0;
    for (const dir of ['client', 'shared']) {
      for (const f of await readdir(join(ROOT, dir), { recursive: true })) {
        if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
        newest = Math.max(newest, (await mtime(join(ROOT, dir, f))) ?? 0);
      }
    }
    if (newest <= oldest) return false;
  }
  await buildBrowser({ ...options, write: true });
  return true;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const built = await buildBrowser();
  for (const b of built) {
    const bad = nodeOnlyInputs(b.inputs);
    console.log(`${relative(ROOT, b.file)}  ${(b.bytes / 1024).toFixed(1)} KiB  (${b.inputs.length} inputs)`);
    if (bad.length > 0) {
      console.error(`  Node-only inputs in ${b.name}: ${bad.join(', ')}`);
      process.exitCode = 1;
    }
  }
}
