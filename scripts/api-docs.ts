/**
 * The API reference (docs/API.md) is kept by hand; this checks it against
 * the package. For every entry point in package.json `exports`, the
 * TypeScript compiler lists what the entry exports (values and types), and
 * the section of docs/API.md headed with the entry's name (`## holdline/server`)
 * must name each of them in backticks. A section may instead say
 * "Same exports as `holdline/<other>`" (a bundle of another entry).
 *
 * Run: `npm run docs` prints each entry's exports and what the reference
 * lacks (exit code 1 when something is missing); test/api-docs.test.ts runs
 * the same check in `npm test`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const API_DOC = join(ROOT, 'docs', 'API.md');

/** The source file behind a built path: ./dist/server/index.d.ts -> server/index.ts. */
function sourceOf(built: string): string {
  return built.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts').replace(/\.js$/, '.ts');
}

/** Bundles name no source of their own: their .d.ts re-exports these (scripts/build-browser.ts). */
const BUNDLE_SOURCES: Record<string, readonly string[]> = {
  'browser/holdline.ts': ['client/browser.ts'],
  'browser/holdline-tabs.ts': ['client/browser.ts', 'client/tab-channel.ts'],
};

/** Package entry ('holdline/server') -> the source files it exports from. */
export async function entryPoints(): Promise<Map<string, string[]>> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
  const out = new Map<string, string[]>();
  for (const [key, value] of Object.entries(pkg.exports)) {
    if (key === './package.json') continue;
    const types = typeof value === 'string' ? value : (value as Record<string, unknown>)['types'];
    if (typeof types !== 'string') continue;
    const src = sourceOf(types);
    out.set(`${pkg.name}${key.slice(1)}`, [...(BUNDLE_SOURCES[src] ?? [src])]);
  }
  return out;
}

/** Entry -> the names it exports, sorted. */
export async function exportedNames(): Promise<Map<string, string[]>> {
  const entries = await entryPoints();
  const files = [...new Set([...entries.values()].flat())].map((f) => join(ROOT, f));
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();
  const out = new Map<string, string[]>();
  for (const [entry, sources] of entries) {
    const names = new Set<string>();
    for (const s of sources) {
      const file = program.getSourceFile(join(ROOT, s));
      const symbol = file === undefined ? undefined : checker.getSymbolAtLocation(file);
      if (symbol === undefined) throw new Error(`${entry}: cannot read the exports of ${s}`);
      for (const e of checker.getExportsOfModule(symbol)) names.add(e.getName());
    }
    out.set(entry, [...names].sort());
  }
  return out;
}

/** The text of each `## <entry>` section of the reference. */
export function sections(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = markdown.split(/^## /m).slice(1);
  for (const p of parts) {
    const nl = p.indexOf('\n');
    const title = p.slice(0, nl).replace(/`/g, '').trim();
    out.set(title, p.slice(nl + 1));
  }
  return out;
}

/** Entry -> exported names its section of the reference does not name. Missing sections list every export. */
export async function undocumented(markdown?: string): Promise<Map<string, string[]>> {
  const doc = sections(markdown ?? (await readFile(API_DOC, 'utf8')));
  const out = new Map<string, string[]>();
  for (const [entry, names] of await exportedNames()) {
    let text = doc.get(entry) ?? '';
    const same = /Same exports as `([^`]+)`/.exec(text);
    if (same?.[1] !== undefined) text = doc.get(same[1]) ?? '';
    const missing = names.filter((n) => !text.includes(`\`${n}\``) && !text.includes(`\`${n}(`) && !text.includes(`\`${n}<`));
    if (missing.length > 0) out.set(entry, missing);
  }
  return out;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const all = await exportedNames();
  const missing = await undocumented();
  for (const [entry, names] of all) {
    const lacking = missing.get(entry) ?? [];
    console.log(`${entry}: ${names.length} exports${lacking.length > 0 ? `; not in docs/API.md: ${lacking.join(', ')}` : ', all documented'}`);
  }
  if (missing.size > 0) process.exitCode = 1;
}
