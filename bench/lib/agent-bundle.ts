/**
 * Bench children run plain `node`, without tsx. The parent compiles the
 * child entry (agent.ts, with the workloads and helpers it imports) into one
 * ES module with esbuild, once per parent process, and starts every child on
 * it. Packages (undici, engine.io, ws) stay imports, resolved from the
 * repository's node_modules; Holdline is not in the bundle at all: the child
 * loads it from dist/ when it starts (holdline-dist.ts). So a child runs
 * Node, the bench's own code compiled, and the shipped build, and nothing
 * else: no loader hooks, no TypeScript compiled on the fly.
 *
 * The bundle goes to .tmp/bench/ in the repository (git-ignored), named by a
 * hash of its text: inside the package, so that `holdline/server` resolves
 * through the package's own exports from there; written whole and renamed
 * into place, so that two processes bundling at once (two test files) never
 * see half a file.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './dist-build.js';

const AGENT_SOURCE = fileURLToPath(new URL('./agent.ts', import.meta.url));
const OUT_DIR = path.join(ROOT, '.tmp', 'bench');

async function bundle(): Promise<string> {
  // Imported here, not at the top: this module is in the bundle too (the
  // workloads import the harness), and children never bundle.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [AGENT_SOURCE],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // package.json says "sideEffects": false (true of the library); agent.ts
    // imports the workloads for their side effect, registering their roles.
    ignoreAnnotations: true,
    outfile: path.join(OUT_DIR, 'agent.mjs'),
    write: false,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out || result.outputFiles.length !== 1) throw new Error(`esbuild made ${result.outputFiles.length} files of ${AGENT_SOURCE}, expected one`);
  const file = path.join(OUT_DIR, `agent-${createHash('sha256').update(out.contents).digest('hex').slice(0, 16)}.mjs`);
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await mkdir(OUT_DIR, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, out.contents);
    await rename(tmp, file);
  }
  return file;
}

let bundling: Promise<string> | undefined;

/** The child entry, compiled (once per process): the file to start `node` on. */
export function agentEntry(): Promise<string> {
  bundling ??= bundle();
  return bundling;
}
