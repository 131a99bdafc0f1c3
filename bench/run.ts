/**
 * `npm run bench`: Holdline and Engine.IO through the same workloads, in one
 * run, each in fresh child processes. Holdline is the shipped build, dist/
 * (`npm run bench` builds it first; see lib/holdline-dist.ts). Prints a table with both libraries,
 * their ratio and a pass/miss per target, and writes the JSON results
 * (default bench/results/latest.json). `--smoke` does a tiny run; `--help`.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseConfig, USAGE, type BenchConfig } from './lib/config.js';
import { ensureDist, ROOT } from './lib/dist-build.js';
import { Agent, installExitHooks, setChildNodeArgs, type ProcessInfo } from './lib/harness.js';
import { evaluateTargets, renderTable, renderTargets } from './lib/report.js';
import { renderWebSocketTable, websocketTargets } from './lib/report-websocket.js';
import { validateResults, type BenchResults, type Meta } from './lib/results.js';
import { runBaseline } from './workloads/baseline.js';
import { runFanout } from './workloads/fanout.js';
import { runLatency } from './workloads/latency.js';
import { runLoss } from './workloads/loss.js';
import { runThroughput } from './workloads/throughput.js';
import { runAckPaced } from './workloads/ackpaced.js';
import { runRedis } from './workloads/redis.js';
import { runWebSocket } from './workloads/websocket.js';

const require = createRequire(import.meta.url);

async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const root = path.dirname(require.resolve('../package.json'));
  out.holdline = (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  for (const name of ['engine.io', 'engine.io-client', 'undici', 'ws']) {
    const pkg = JSON.parse(await readFile(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    out[name] = pkg.version;
  }
  return out;
}

/** Jiffies of the whole machine from /proc/stat: [steal, total], or undefined off Linux. */
async function cpuTimes(): Promise<[number, number] | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return [f[7] ?? 0, f.slice(0, 8).reduce((a, b) => a + b, 0)];
  } catch {
    return undefined;
  }
}

async function meta(cfg: BenchConfig, startedAt: Date, durationMs: number, probe: ProcessInfo | undefined, stealPct: number | undefined): Promise<Meta> {
  const { out: _out, cpuProfDir: _prof, ...config } = cfg;
  if (!probe) throw new Error('no facts from the probe child');
  const builtAt = (await stat(path.join(ROOT, probe.library.server))).mtime.toISOString();
  return {
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(durationMs),
    smoke: cfg.smoke,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      nofile: probe.nofile,
      stealPct,
    },
    node: process.version,
    library: { ...probe.library, builtAt },
    versions: await versions(),
    config,
  };
}

async function runBench(cfg: BenchConfig): Promise<BenchResults> {
  installExitHooks();
  const prof = cfg.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cfg.cpuProfDir)}`];
  if (cfg.cpuProfDir) await mkdir(cfg.cpuProfDir, { recursive: true });
  setChildNodeArgs([...prof, ...cfg.nodeFlags]);
  // Children inherit the environment: the Holdline adapter reads its window mode from it.
  process.env.HOLDLINE_BENCH_WINDOW = cfg.holdlineWindow;
  process.env.EIO_BENCH_COMPRESSION = cfg.eioCompression ? '1' : '0';
  const startedAt = new Date();
  const t0 = performance.now();
  const cpu0 = await cpuTimes();
  process.stderr.write(`holdline bench (${cfg.smoke ? 'smoke' : 'full'}): ${cfg.workloads.join(', ')}\n`);
  // One throwaway child to learn the open-files limit children get, and which Holdline they load.
  const probe = await Agent.spawn({ name: 'probe' });
  const facts = probe.info;
  await probe.kill();

  const partial: Omit<BenchResults, 'targets' | 'table' | 'meta'> = {};
  const wants = (w: BenchConfig['workloads'][number]) => cfg.workloads.includes(w);
  if (wants('baseline')) partial.baseline = await runBaseline(cfg);
  if (wants('throughput')) partial.throughput = await runThroughput(cfg);
  if (wants('latency')) {
    const { perLib, floor } = await runLatency(cfg);
    partial.latency = perLib;
    partial.latencyFloor = floor;
  }
  if (wants('fanout')) partial.fanout = await runFanout(cfg);
  if (wants('loss')) partial.loss = await runLoss(cfg);
  if (wants('ackpaced')) partial.ackpaced = await runAckPaced(cfg);
  if (wants('redis')) partial.redis = await runRedis(cfg);
  if (wants('websocket')) partial.websocket = await runWebSocket(cfg);

  const cpu1 = await cpuTimes();
  const stealPct = cpu0 && cpu1 && cpu1[1] > cpu0[1] ? Math.round(((cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1])) * 1000) / 10 : undefined;
  const withMeta = { meta: await meta(cfg, startedAt, performance.now() - t0, facts, stealPct), ...partial };
  const targets = [...evaluateTargets(withMeta), ...websocketTargets(withMeta.websocket)];
  const tables = [renderTable({ ...withMeta, targets })];
  if (withMeta.websocket) tables.push(renderWebSocketTable(withMeta.websocket, targets));
  const table = tables.filter(Boolean).join('\n\n');
  return { ...withMeta, targets, table };
}

async function writeResults(file: string, results: BenchResults): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(results, null, 2)}\n`);
  await rename(tmp, file);
}

async function main(): Promise<number> {
  let cfg: BenchConfig | undefined;
  try {
    cfg = parseConfig(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (!cfg) {
    process.stdout.write(USAGE);
    return 0;
  }
  // The bench measures the shipped build; `npm run bench` has just built it,
  // and this builds it when run some other way and dist/ is stale.
  await ensureDist();
  const results = await runBench(cfg);
  const m = results.meta;
  process.stdout.write(
    `\nNode ${m.node}, ${m.machine.cpus} x ${m.machine.cpuModel}, ${m.machine.memoryGB} GB; ` +
      `holdline ${m.versions.holdline}, engine.io ${m.versions['engine.io']}, engine.io-client ${m.versions['engine.io-client']}; ` +
      `${cfg.payloadBytes}-byte messages, window ${cfg.window}; ${(m.durationMs / 1000).toFixed(0)} s` +
      `${m.machine.stealPct === undefined ? '' : `, CPU steal ${m.machine.stealPct}%`}` +
      `${cfg.nodeFlags.length === 0 ? '' : `; children run with ${cfg.nodeFlags.join(' ')}`}\n\n`,
  );
  process.stdout.write(`${results.table}\n\n${renderTargets(results.targets)}\n`);
  await writeResults(cfg.out, results);
  process.stdout.write(`\nresults: ${cfg.out}\n`);
  const problems = validateResults(JSON.parse(JSON.stringify(results)));
  if (problems.length > 0) {
    process.stderr.write(`\nincomplete results:\n  ${problems.join('\n  ')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
