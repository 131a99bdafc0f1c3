/**
 * docs/API.md, the hand-kept API reference, names every export of every
 * entry point in package.json (listed by the TypeScript compiler, types
 * included): an export added without a line in the reference fails here.
 * `npm run docs` prints the same check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryPoints, exportedNames, sections, undocumented } from '../scripts/api-docs.js';

test('docs/API.md names every export of every entry point', { timeout: 120_000 }, async () => {
  const names = await exportedNames();
  assert.deepEqual([...names.keys()], [...(await entryPoints()).keys()], 'every entry point is read');
  assert.ok((names.get('holdline/server') ?? []).includes('HoldlineServer'), 'the compiler sees the exports');
  assert.deepEqual(Object.fromEntries(await undocumented()), {}, 'exports missing from docs/API.md (npm run docs lists them)');
});

test('the check fails for an export the reference leaves out', { timeout: 120_000 }, async () => {
  const doc = '## `holdline/server`\n`HoldlineServer` only\n## `holdline/browser`\nSame exports as `holdline/server`\n';
  const missing = await undocumented(doc);
  assert.ok(missing.get('holdline/server')?.includes('Session'), 'Session is missing');
  assert.ok(!missing.get('holdline/server')?.includes('HoldlineServer'), 'HoldlineServer is named');
  assert.ok(missing.get('holdline/browser')?.includes('HoldlineClient'), 'an alias section is checked against its target');
  assert.deepEqual(missing.get('holdline/redis'), ['RedisStore', 'RedisStoreOptions'], 'a missing section lacks everything');
  assert.equal(sections(doc).size, 2);
});
