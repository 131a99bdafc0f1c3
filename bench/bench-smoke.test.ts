/**
 * `npm test` runs the benchmark in smoke mode (a few seconds): it must
 * finish, and write results that are well-formed with both libraries present
 * in every workload, measured on the shipped build (dist/, built first when
 * stale). It says nothing about speed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDist } from './lib/dist-build.js';
import { validateResults } from './lib/results.js';

const RUN = fileURLToPath(new URL('./run.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function runSmoke(out: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, RUN, '--smoke', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench --smoke did not finish within 300 s\n${stderr}`));
    }, 300_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('bench --smoke completes and writes well-formed results for both libraries, on dist/', { timeout: 420_000 }, async () => {
  // Outside the smoke run's own deadline: a build on a busy 2-core machine can
  // take a while. (The run itself is about 50 s on an idle 2-core VM, half of
  // it the Holdline-only sections, ackpaced and redis; 300 s is for one busy
  // enough to take 5 s to start each child process.)
  await ensureDist();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdline-bench-'));
  after(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'smoke.json');

  const { code, stdout, stderr } = await runSmoke(out);
  assert.equal(code, 0, `bench --smoke exited with ${code}\n${stderr}\n${stdout}`);

  const doc: unknown = JSON.parse(await readFile(out, 'utf8'));
  assert.deepEqual(validateResults(doc), [], 'results are complete');
  const results = doc as { meta: { smoke: boolean; library: { server: string; client: string } }; targets: unknown[] };
  assert.equal(results.meta.smoke, true);
  assert.deepEqual([results.meta.library.server, results.meta.library.client], ['dist/server/index.js', 'dist/client/index.js'], 'the children ran the shipped build');
  assert.ok(results.targets.length >= 5, 'every target is evaluated');
  for (const lib of ['Holdline', 'Engine.IO']) assert.match(stdout, new RegExp(lib.replace('.', '\\.')), `the table shows ${lib}`);
  assert.match(stdout, /\| Floor: raw held poll \(no protocol\), echo p50, ms +\| [0-9.]+ /, 'the polling echo is shown with its floor, measured in the same turns');
  assert.match(stdout, /Ack-paced, Holdline/, 'the ack-paced table is printed');
  assert.match(stdout, /Redis section, Holdline \(redis-server /, 'the Redis table is printed, with the redis-server the bench started');
  // The Redis fan-out runs with its clients on each transport, every broadcast delivered on both stores.
  const fanout = (doc as { redis: { fanout: Record<string, Record<'redis' | 'memory', { ok: boolean; value?: { transport?: string; deliveredRatio: number } }>> } }).redis.fanout;
  for (const [key, transport] of [['20', 'polling'], ['20 websocket', 'websocket']] as const) {
    for (const store of ['redis', 'memory'] as const) {
      const run = fanout[key]?.[store];
      assert.ok(run?.ok === true && run.value, `the Redis section's fan-out "${key}" ran on the ${store} store`);
      assert.equal(run.value.transport, transport, `fan-out "${key}" on the ${store} store: its clients' transport`);
      assert.equal(run.value.deliveredRatio, 1, `fan-out "${key}" on the ${store} store delivered every message`);
    }
  }
  assert.match(stdout, /one raw Redis round trip \(ioredis EVALSHA\), paced alike: p50 \/ p99, ms +\| \d+\.\d+ \/ \d+\.\d+/, 'the Redis table has the raw round trip, measured');
  assert.match(stdout, /the echo's extra time with Redis \(p50\), in raw round trips +\| -?\d+\.\d\d/, "the Redis table relates the echo's extra time to it");
  assert.match(stdout, /Fan-out 20 sessions @ 100 ms, clients on polling/, 'the Redis table has the fan-out on polling');
  assert.match(stdout, /Fan-out 20 sessions @ 100 ms, clients on WebSocket/, 'the Redis table has the fan-out on WebSocket');
  assert.match(stdout, /\| WebSocket +\| Holdline +\| raw ws +\| Engine\.IO \(websocket\)/, 'the WebSocket table is printed, Holdline against raw ws and Engine.IO');
  assert.match(stdout, /(PASS|MISS) +WebSocket: echo RTT p50 <= 1\.3x raw ws/, 'the WebSocket targets are judged');
});

test('results missing a library, with a failed workload, or not measured on dist/ are rejected', () => {
  const library = { server: 'dist/server/index.js', client: 'dist/client/index.js', builtAt: '2025-01-01T00:00:00.000Z' };
  const meta = { node: 'v20', library, versions: {}, config: { workloads: ['throughput'], fanout: { sizes: [] } } };
  const dir = { msgPerSec: 1, mbPerSec: 1, serverCpuPct: 1, clientCpuPct: 1 };
  const ok = { ok: true, value: { s2c: dir, c2s: dir } };
  const table = '| Holdline | Engine.IO |';
  assert.deepEqual(validateResults({ meta, throughput: { holdline: ok, 'engine.io': ok }, targets: [], table }), []);
  assert.match(validateResults({ meta, throughput: { holdline: ok }, targets: [], table }).join('\n'), /engine\.io: missing/);
  const wsMeta = { ...meta, config: { workloads: ['websocket'], fanout: { sizes: [] } } };
  assert.match(validateResults({ meta: wsMeta, targets: [], table }).join('\n'), /websocket: missing/);
  const wsPart = { holdline: ok, ws: ok, 'engine.io': ok };
  assert.match(validateResults({ meta: wsMeta, websocket: { throughput: wsPart, latency: { holdline: ok }, idle: {} }, targets: [], table }).join('\n'), /websocket\.latency\.ws: missing/);
  const latMeta = { ...meta, config: { workloads: ['latency'], fanout: { sizes: [] } } };
  const echo = { ok: true, value: { echo: { latency: { p50: 1, p99: 2 } }, push: { latency: { p50: 1, p99: 2 } } } };
  assert.deepEqual(validateResults({ meta: latMeta, latency: { holdline: echo, 'engine.io': echo }, latencyFloor: echo, targets: [], table }), []);
  assert.match(validateResults({ meta: latMeta, latency: { holdline: echo, 'engine.io': echo }, targets: [], table }).join('\n'), /latencyFloor: missing/);
  const failed = { ok: false, error: 'timed out' };
  assert.match(validateResults({ meta, throughput: { holdline: ok, 'engine.io': failed }, targets: [], table }).join('\n'), /failed: timed out/);
  const nan = { ok: true, value: { s2c: { ...dir, msgPerSec: null }, c2s: dir } };
  assert.match(validateResults({ meta, throughput: { holdline: nan, 'engine.io': ok }, targets: [], table }).join('\n'), /finite number/);
  assert.deepEqual(validateResults('nope'), ['results: not a JSON object']);
  const fromSources = { ...meta, library: { ...library, server: 'server/index.ts' } };
  assert.match(validateResults({ meta: fromSources, throughput: { holdline: ok, 'engine.io': ok }, targets: [], table }).join('\n'), /not the shipped build/);
});
