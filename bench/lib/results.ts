/**
 * The shape of bench/results/latest.json, and a checker for it (used by the
 * smoke test: a run that produced malformed or one-sided results fails).
 */
import type { BaselineResult } from '../workloads/baseline.js';
import type { FanoutResults } from '../workloads/fanout.js';
import type { LatencyResult } from '../workloads/latency.js';
import type { LossResult } from '../workloads/loss.js';
import type { ThroughputResult } from '../workloads/throughput.js';
import type { AckPacedResult } from '../workloads/ackpaced.js';
import type { RedisResults } from '../workloads/redis.js';
import type { WebSocketResults } from '../workloads/websocket.js';
import { LIBS } from './adapters/types.js';
import { fanoutKey, type BenchConfig } from './config.js';
import type { Outcome, PerLib } from './measure.js';

export interface Meta {
  startedAt: string;
  durationMs: number;
  smoke: boolean;
  /** nofile: open-files limit of the children; stealPct: CPU time taken by the hypervisor during the run. */
  machine: { cpus: number; cpuModel: string; memoryGB: number; platform: string; nofile: number | undefined; stealPct: number | undefined };
  node: string;
  /**
   * What was measured: the Holdline entry points the bench children loaded
   * (the shipped build, dist/) and when that build was written.
   */
  library: { server: string; client: string; builtAt: string };
  versions: Record<string, string>;
  config: Omit<BenchConfig, 'out' | 'cpuProfDir'>;
}

export type TargetStatus = 'pass' | 'miss' | 'n/a';

export interface TargetResult {
  id: string;
  description: string;
  /** Holdline's figure and what it is compared with (Engine.IO's, or the baseline's). */
  holdline: number | null;
  reference: number | null;
  /** holdline / reference */
  ratio: number | null;
  status: TargetStatus;
}

export interface BenchResults {
  meta: Meta;
  baseline?: Outcome<BaselineResult>;
  throughput?: PerLib<ThroughputResult>;
  latency?: PerLib<LatencyResult>;
  /** The polling echo with no protocol (a raw held poll), run in turns with the libraries: their floor. */
  latencyFloor?: Outcome<LatencyResult>;
  fanout?: FanoutResults;
  loss?: PerLib<LossResult>;
  /** Holdline only: ack-paced against unpaced senders. */
  ackpaced?: Outcome<AckPacedResult>;
  /** Holdline only: the Redis store against the memory store, and a cluster. */
  redis?: RedisResults;
  /** Holdline on a WebSocket against raw ws and Engine.IO's websocket transport. */
  websocket?: WebSocketResults;
  targets: TargetResult[];
  /** The printed table (markdown). */
  table: string;
}

// ---- validation ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Problems with a per-library outcome map: both libraries present, ok, with finite numbers at `paths`. */
function checkPerLib(problems: string[], where: string, v: unknown, paths: string[]): void {
  if (!isObject(v)) {
    problems.push(`${where}: missing`);
    return;
  }
  for (const lib of LIBS) {
    const o = v[lib];
    if (!isObject(o)) {
      problems.push(`${where}.${lib}: missing`);
      continue;
    }
    if (o.ok !== true) {
      problems.push(`${where}.${lib}: failed: ${String(o.error).split('\n')[0]}`);
      continue;
    }
    for (const path of paths) checkNumber(problems, `${where}.${lib}.value.${path}`, o.value, path);
  }
}

function checkNumber(problems: string[], where: string, root: Json | undefined, path: string): void {
  let cur: Json | undefined = root;
  for (const key of path.split('.')) cur = isObject(cur) ? cur[key] : undefined;
  if (typeof cur !== 'number' || !Number.isFinite(cur)) problems.push(`${where}: expected a finite number, got ${JSON.stringify(cur)}`);
}

/** An outcome ({ ok, value | error }) that succeeded, with finite numbers at `paths`. */
function checkOutcome(problems: string[], where: string, o: Json | undefined, paths: string[]): void {
  if (!isObject(o)) problems.push(`${where}: missing`);
  else if (o.ok !== true) problems.push(`${where}: failed: ${String(o.error).split('\n')[0]}`);
  else for (const p of paths) checkNumber(problems, `${where}.value.${p}`, o.value, p);
}

/** The Redis section: every configured part, both stores, key figures finite. */
function checkRedis(problems: string[], r: Json | undefined, config: Json | undefined): void {
  if (!isObject(r)) {
    problems.push('redis: missing');
    return;
  }
  if (typeof r.error === 'string') {
    problems.push(`redis: ${r.error.split('\n')[0]}`);
    return;
  }
  const parts = isObject(config) && Array.isArray(config.parts) ? config.parts : [];
  const pair = (where: string, p: Json | undefined, paths: string[], redisPaths: string[] = []) => {
    if (!isObject(p)) {
      problems.push(`${where}: missing`);
      return;
    }
    checkOutcome(problems, `${where}.memory`, p.memory, paths);
    checkOutcome(problems, `${where}.redis`, p.redis, [...paths, ...redisPaths]);
  };
  if (parts.includes('throughput')) pair('redis.throughput', r.throughput, ['s2c.msgPerSec', 'c2s.msgPerSec'], ['redisCommands.roundTripsPer']);
  if (parts.includes('latency')) pair('redis.latency', r.latency, ['echo.latency.p50', 'echo.latency.p99']);
  if (parts.includes('fanout')) {
    const sizes = isObject(config) && Array.isArray(config.fanoutSizes) ? config.fanoutSizes : [];
    const all = sizes.flatMap((s) => (isObject(s) && typeof s.sessions === 'number' && typeof s.intervalMs === 'number' ? [{ sessions: s.sessions, intervalMs: s.intervalMs }] : []));
    for (const size of all) {
      const key = fanoutKey(size, all);
      pair(`redis.fanout.${key}`, isObject(r.fanout) ? r.fanout[key] : undefined, ['latency.p99', 'deliveredRatio', 'lastDeliveryMs.p50', 'broadcastSettleMs.p50']);
    }
  }
  if (parts.includes('cluster')) checkOutcome(problems, 'redis.cluster', r.cluster, ['deliveredRatio', 'latency.p50', 'latency.p99', 'redisCommands.roundTripsPer', 'cpu.redis']);
}

/** The WebSocket section: Holdline and raw ws (and Engine.IO), every part, key figures finite. */
function checkWebSocket(problems: string[], w: Json | undefined): void {
  if (!isObject(w)) {
    problems.push('websocket: missing');
    return;
  }
  const parts: Array<[string, string[]]> = [
    ['throughput', ['s2c.msgPerSec', 'c2s.msgPerSec']],
    ['latency', ['echo.latency.p50', 'echo.latency.p99']],
    ['idle', ['heapPerSession']],
  ];
  for (const [part, paths] of parts) {
    const per = w[part];
    for (const lib of ['holdline', 'ws', 'engine.io']) {
      const o = isObject(per) ? per[lib] : undefined;
      if (o === undefined && lib === 'engine.io') continue; // --libs=holdline leaves it out
      checkOutcome(problems, `websocket.${part}.${lib}`, o, paths);
    }
  }
}

/**
 * Everything wrong with a results document, as readable lines; empty when it
 * is well-formed: metadata, every configured workload present for both
 * libraries, every key figure a finite number, every target evaluated.
 */
export function validateResults(doc: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(doc)) return ['results: not a JSON object'];
  const meta = doc.meta;
  if (!isObject(meta) || !isObject(meta.config) || typeof meta.node !== 'string' || !isObject(meta.versions)) {
    problems.push('meta: missing or incomplete');
    return problems;
  }
  const lib = meta.library;
  if (!isObject(lib) || typeof lib.server !== 'string' || typeof lib.client !== 'string' || typeof lib.builtAt !== 'string') problems.push('meta.library: missing');
  else if (!lib.server.startsWith('dist/') || !lib.client.startsWith('dist/')) problems.push(`meta.library: not the shipped build in dist/ (${lib.server}, ${lib.client})`);
  const workloads = meta.config.workloads;
  const wants = (w: string) => Array.isArray(workloads) && workloads.includes(w);

  if (wants('baseline')) {
    const b = doc.baseline;
    if (!isObject(b) || b.ok !== true) problems.push(`baseline: ${isObject(b) ? `failed: ${String(b.error)}` : 'missing'}`);
    else for (const p of ['httpRtt.p50', 'httpRttHot.p50', 'undiciRtt.p50', 'undiciRttPaced.p50', 'ws.msgPerSec']) checkNumber(problems, `baseline.${p}`, b.value, p);
  }
  if (wants('throughput')) {
    checkPerLib(problems, 'throughput', doc.throughput, ['s2c.msgPerSec', 's2c.mbPerSec', 's2c.serverCpuPct', 's2c.clientCpuPct', 'c2s.msgPerSec', 'c2s.mbPerSec']);
  }
  if (wants('latency')) {
    checkPerLib(problems, 'latency', doc.latency, ['echo.latency.p50', 'echo.latency.p99', 'push.latency.p50', 'push.latency.p99']);
    const f = doc.latencyFloor;
    if (!isObject(f) || f.ok !== true) problems.push(`latencyFloor: ${isObject(f) ? `failed: ${String(f.error)}` : 'missing'}`);
    else checkNumber(problems, 'latencyFloor.value.echo.latency.p50', f.value, 'echo.latency.p50');
  }
  if (wants('fanout')) {
    const sizes = isObject(meta.config.fanout) && Array.isArray(meta.config.fanout.sizes) ? meta.config.fanout.sizes : [];
    const all = sizes.flatMap((s) => (isObject(s) && typeof s.sessions === 'number' && typeof s.intervalMs === 'number' ? [{ sessions: s.sessions, intervalMs: s.intervalMs }] : []));
    if (all.length !== sizes.length) problems.push('meta.config.fanout.sizes: malformed');
    for (const size of all) {
      const n = fanoutKey(size, all);
      const f = isObject(doc.fanout) && isObject(doc.fanout.sizes) ? doc.fanout.sizes[n] : undefined;
      checkPerLib(problems, `fanout.sizes.${n}`, f, ['latency.p50', 'latency.p99', 'deliveredRatio', 'idle.heapPerSession', 'idle.rssPerSession', 'serverCpuPct', 'clientCpuPct']);
      const floor = isObject(doc.fanout) && isObject(doc.fanout.floor) ? doc.fanout.floor[n] : undefined;
      if (!isObject(floor) || floor.ok !== true) problems.push(`fanout.floor.${n}: ${isObject(floor) ? `failed: ${String(floor.error)}` : 'missing'}`);
      else checkNumber(problems, `fanout.floor.${n}.value.heapPerSession`, floor.value, 'heapPerSession');
    }
  }
  if (wants('loss')) {
    checkPerLib(problems, 'loss', doc.loss, ['s2c.received', 's2c.lost', 's2c.duplicated', 's2c.outOfOrder', 'c2s.received', 'c2s.lost', 'proxy.requests']);
  }
  if (wants('ackpaced')) {
    const a = doc.ackpaced;
    if (!isObject(a) || a.ok !== true) problems.push(`ackpaced: ${isObject(a) ? `failed: ${String(a.error).split('\n')[0]}` : 'missing'}`);
    else for (const p of ['s2c.pacedMsgPerSec', 's2c.unpacedMsgPerSec', 's2c.ratio', 'c2s.pacedMsgPerSec', 'c2s.unpacedMsgPerSec', 'c2s.ratio']) checkNumber(problems, `ackpaced.value.${p}`, a.value, p);
  }
  if (wants('redis')) checkRedis(problems, doc.redis, meta.config.redis);
  if (wants('websocket')) checkWebSocket(problems, doc.websocket);
  if (!Array.isArray(doc.targets)) problems.push('targets: missing');
  else {
    for (const t of doc.targets) {
      if (!isObject(t) || typeof t.id !== 'string' || !['pass', 'miss', 'n/a'].includes(String(t.status))) {
        problems.push(`targets: malformed entry ${JSON.stringify(t)}`);
      }
    }
  }
  const compared = ['baseline', 'throughput', 'latency', 'fanout', 'loss'].some(wants);
  if (typeof doc.table !== 'string' || !doc.table.includes('Holdline') || (compared && !doc.table.includes('Engine.IO'))) problems.push('table: missing');
  return problems;
}
