// The browser bundles contain nothing Node-only: checked on esbuild's metafile
// (every input it read) and on the output text. Builds in memory (no files
// written), a fraction of a second.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { BROWSER_BUNDLES, buildBrowser, nodeOnlyInputs, type BuiltBundle } from '../scripts/build-browser.js';

describe('browser bundles', () => {
  let bundles: BuiltBundle[] = [];

  before(async () => {
    bundles = await buildBrowser({ write: false });
  });

  it('builds every bundle', () => {
    assert.deepEqual(bundles.map((b) => b.name).sort(), Object.keys(BROWSER_BUNDLES).sort());
  });

  it('reads the browser entry and platform, and no Node-only input', () => {
    for (const b of bundles) {
      assert.ok(b.inputs.includes('client/browser.ts'), `${b.name} is built from client/browser.ts`);
      assert.ok(b.inputs.includes('client/platform.browser.ts'), `${b.name} uses the fetch platform`);
      assert.deepEqual(nodeOnlyInputs(b.inputs), [], `${b.name} has Node-only inputs`);
    }
  });

  it('bundles the tab channel only into holdline-tabs.js', () => {
    const byName = new Map(bundles.map((b) => [b.name, b]));
    assert.ok(byName.get('holdline-tabs.js')?.inputs.includes('client/tab-channel.ts'));
    assert.ok(!byName.get('holdline.js')?.inputs.includes('client/tab-channel.ts'));
  });

  it('is one self-contained ESM file with a source map, importing nothing', () => {
    for (const b of bundles) {
      const outputs = Object.entries(b.metafile.outputs);
      const js = outputs.filter(([f]) => f.endsWith('.js'));
      assert.equal(js.length, 1, `${b.name}: one JS output (no chunks)`);
      assert.ok(outputs.some(([f]) => f.endsWith('.js.map')), `${b.name}: a source map`);
      const [entry] = js;
      assert.ok(entry);
      const [, out] = entry;
      assert.deepEqual(out.imports, [], `${b.name} imports ${JSON.stringify(out.imports)}`);
      assert.ok(out.exports.length > 0, `${b.name} exports something`);
    }
  });

  it('has no require() and no node: specifier in its text', () => {
    for (const b of bundles) {
      assert.ok(b.code !== undefined && b.code.length > 1000, `${b.name}: output text`);
      assert.doesNotMatch(b.code, /\brequire\s*\(/, `${b.name} calls require()`);
      assert.doesNotMatch(b.code, /["'`]node:/, `${b.name} names a node: module`);
      assert.doesNotMatch(b.code, /undici/, `${b.name} mentions undici`);
    }
  });

  it('flags what a browser bundle must not contain', () => {
    const flagged = nodeOnlyInputs([
      'node:http',
      'node_modules/undici/index.js',
      'client/platform.node.ts',
      'client/index.ts',
      'server/session.ts',
      'client/browser.ts',
      'shared/codec.ts',
      'node_modules/nanoid/index.browser.js',
    ]);
    assert.deepEqual(flagged, ['node:http', 'node_modules/undici/index.js', 'client/platform.node.ts', 'client/index.ts', 'server/session.ts']);
  });
});
