/**
 * Issue 2, item 6: the client in client/ is one module for browser and Node.
 * Only the platform files (client/platform.node.ts and its parts in
 * client/node/) may import Node-only code; everything the browser
 * entry reaches must be free of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const NODE_ONLY_ENTRY = new Set(['client/platform.node.ts', 'client/index.ts']);
const NODE_PACKAGES = new Set(['undici', 'ws', 'express', ...builtinModules]);

function imports(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].flatMap(([, spec]) => (spec === undefined ? [] : [spec]));
}

function isNodeOnly(spec: string): boolean {
  const slash = spec.indexOf('/');
  return spec.startsWith('node:') || NODE_PACKAGES.has(slash < 0 ? spec : spec.slice(0, slash));
}

/** Every file reachable from `entry` through relative imports. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const resolved = join(file, '..', spec).replace(/\.js$/, '.ts');
      walk(resolved);
    }
  };
  walk(entry);
  return seen;
}

test('no Node-only import in client/ or shared/ outside the Node platform files', () => {
  const files = [
    ...readdirSync(join(ROOT, 'client')).map((f) => `client/${f}`),
    ...readdirSync(join(ROOT, 'shared')).map((f) => `shared/${f}`),
  ].filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !NODE_ONLY_ENTRY.has(f));
  assert.ok(files.length > 5);
  const offenders = files.flatMap((f) => imports(f).filter(isNodeOnly).map((s) => `${f} imports ${s}`));
  assert.deepEqual(offenders, []);
});

test('the browser entry and the Node entry share the same client core', () => {
  const browser = reachable('client/browser.ts');
  const node = reachable('client/index.ts');
  assert.ok(browser.has('client/holdline-client.ts') && node.has('client/holdline-client.ts'));
  assert.ok(!browser.has('client/platform.node.ts'), 'the browser entry never reaches the Node platform');
  assert.deepEqual([...browser].filter((f) => f.startsWith('client/node/')), [], 'nor its parts in client/node/');
  const nodeOnly = [...browser].flatMap((f) => imports(f).filter(isNodeOnly).map((s) => `${f} imports ${s}`));
  assert.deepEqual(nodeOnly, []);
});
