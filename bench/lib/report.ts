/**
 * Turning results into the targets verdicts and the printed table
 * (markdown, so it can go into the README as it is).
 */
import type { FanoutResult } from '../workloads/fanout.js';
import type { LatencyResult } from '../workloads/latency.js';
import type { LossResult } from '../workloads/loss.js';
import type { LibName } from './adapters/types.js';
import type { PerLib } from './measure.js';
import type { BenchResults, TargetResult, TargetStatus } from './results.js';
import { round } from './stats.js';

/** The idle-heap target applies from 10,000 sessions (fan-out key "10000" or "10000@1000ms"). */
function heapJudged(key: string): boolean {
  return Number.parseInt(key, 10) >= 10_000;
}

function valueOf<T>(p: PerLib<T> | undefined, lib: LibName): T | undefined {
  const o = p?.[lib];
  return o?.ok ? o.value : undefined;
}

/** A target on holdline/reference: `max` ratio (lower is better) or `min` ratio (higher is better). */
function ratioTarget(id: string, description: string, h: number | undefined, ref: number | undefined, bound: { min?: number; max?: number }): TargetResult {
  if (h === undefined || ref === undefined || !Number.isFinite(h) || !Number.isFinite(ref) || ref === 0) {
    return { id, description, holdline: h ?? null, reference: ref ?? null, ratio: null, status: 'n/a' };
  }
  const ratio = h / ref;
  const ok = (bound.min === undefined || ratio >= bound.min) && (bound.max === undefined || ratio <= bound.max);
  return { id, description, holdline: h, reference: ref, ratio: round(ratio, 3), status: ok ? 'pass' : 'miss' };
}

export function evaluateTargets(r: Omit<BenchResults, 'targets' | 'table'>): TargetResult[] {
  const targets: TargetResult[] = [];
  const tH = valueOf(r.throughput, 'holdline');
  const tE = valueOf(r.throughput, 'engine.io');
  if (r.throughput) {
    targets.push(ratioTarget('throughput.s2c', 'throughput server-to-client >= 2x Engine.IO', tH?.s2c.msgPerSec, tE?.s2c.msgPerSec, { min: 2 }));
    targets.push(ratioTarget('throughput.c2s', 'throughput client-to-server >= 2x Engine.IO', tH?.c2s.msgPerSec, tE?.c2s.msgPerSec, { min: 2 }));
  }
  const lH = valueOf(r.latency, 'holdline');
  const lE = valueOf(r.latency, 'engine.io');
  if (r.latency) {
    targets.push(ratioTarget('echo.vsEngineIo', 'echo RTT p50 <= 1/2 of Engine.IO', lH?.echo.latency.p50, lE?.echo.latency.p50, { max: 0.5 }));
    const http = r.baseline?.ok ? r.baseline.value.httpRtt.p50 : undefined;
    targets.push(ratioTarget('echo.vsRawHttp', 'echo RTT p50 <= 4x raw node:http RTT p50 (paced alike)', lH?.echo.latency.p50, http, { max: 4 }));
  }
  for (const [n, per] of Object.entries(r.fanout?.sizes ?? {})) {
    const fH = valueOf(per, 'holdline');
    const fE = valueOf(per, 'engine.io');
    // The issue's memory target is for 10,000 idle sessions; at fewer, the code a
    // server compiles once (hundreds of KB) still weighs on the per-session figure.
    if (heapJudged(n)) {
      targets.push(ratioTarget(`idleHeap.${n}`, `idle heap per session <= 1/2 of Engine.IO (fan-out ${n})`, fH?.idle.heapPerSession, fE?.idle.heapPerSession, { max: 0.5 }));
    }
    targets.push(ratioTarget(`fanout.${n}.p99`, `fan-out p99 <= 1/2 of Engine.IO (fan-out ${n})`, fH?.latency.p99, fE?.latency.p99, { max: 0.5 }));
  }
  if (r.loss) {
    const h = valueOf(r.loss, 'holdline');
    const status: TargetStatus = h === undefined ? 'n/a' : h.faultsSeen === 0 ? 'pass' : 'miss';
    targets.push({ id: 'loss.zero', description: 'under faults: 0 lost, duplicated, out of order', holdline: h?.faultsSeen ?? null, reference: 0, ratio: null, status });
  }
  return targets;
}

// ---- the table ----

const firstLine = (text: string) => text.split('\n', 1)[0] ?? '';
const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const kb = (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? '—' : (bytes / 1024).toFixed(1));
const pct = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : `${Math.round(n)}%`);
const x = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? '—' : `${n.toFixed(2)}x`);

interface Row {
  metric: string;
  h: string;
  e: string;
  ratio: string;
  target: string;
  result: string;
}

function ratioOf(h: number | undefined, e: number | undefined): number | undefined {
  return h === undefined || e === undefined || e === 0 ? undefined : h / e;
}

export function renderTable(r: Omit<BenchResults, 'table'>): string {
  const rows: Row[] = [];
  const verdict = (id: string): { target: string; result: string } => {
    const t = r.targets.find((t) => t.id === id);
    if (!t) return { target: '', result: '' };
    const bound: Record<string, string> = {
      'throughput.s2c': '≥ 2x',
      'throughput.c2s': '≥ 2x',
      'echo.vsEngineIo': '≤ 0.5x',
      'echo.vsRawHttp': '≤ 4x raw http',
      'loss.zero': '0',
    };
    const target = bound[id] ?? (id.startsWith('idleHeap') || id.startsWith('fanout') ? '≤ 0.5x' : '');
    return { target, result: t.status === 'pass' ? 'pass' : t.status === 'miss' ? '**MISS**' : 'n/a' };
  };
  const add = (metric: string, h: string, e: string, ratio = '', id?: string) => rows.push({ metric, h, e, ratio, ...(id ? verdict(id) : { target: '', result: '' }) });
  const fail = (p: PerLib<unknown> | undefined, lib: LibName) => {
    const o = p?.[lib];
    return o && !o.ok ? `failed: ${firstLine(o.error).slice(0, 60)}` : '—';
  };

  if (r.throughput) {
    const H = valueOf(r.throughput, 'holdline');
    const E = valueOf(r.throughput, 'engine.io');
    for (const dir of ['s2c', 'c2s'] as const) {
      const name = dir === 's2c' ? 'server→client' : 'client→server';
      const h = H?.[dir];
      const e = E?.[dir];
      add(`Throughput ${name}, msg/s`, h ? int(h.msgPerSec) : fail(r.throughput, 'holdline'), e ? int(e.msgPerSec) : fail(r.throughput, 'engine.io'), x(ratioOf(h?.msgPerSec, e?.msgPerSec)), `throughput.${dir}`);
      add(`Throughput ${name}, MB/s`, h ? h.mbPerSec.toFixed(1) : '—', e ? e.mbPerSec.toFixed(1) : '—', x(ratioOf(h?.mbPerSec, e?.mbPerSec)));
      add(`  CPU server / client`, h ? `${pct(h.serverCpuPct)} / ${pct(h.clientCpuPct)}` : '—', e ? `${pct(e.serverCpuPct)} / ${pct(e.clientCpuPct)}` : '—');
    }
  }
  if (r.latency) {
    const H = valueOf(r.latency, 'holdline');
    const E = valueOf(r.latency, 'engine.io');
    const four = (l: LatencyResult['echo'] | undefined) => (l ? `${ms(l.latency.p50)} / ${ms(l.latency.p90)} / ${ms(l.latency.p99)} / ${ms(l.latency.max)}` : '—');
    add('Echo RTT p50, ms', ms(H?.echo.latency.p50), ms(E?.echo.latency.p50), x(ratioOf(H?.echo.latency.p50, E?.echo.latency.p50)), 'echo.vsEngineIo');
    const http = r.baseline?.ok ? r.baseline.value.httpRtt.p50 : undefined;
    add(`Echo RTT p50 vs raw http paced (${ms(http)} ms)`, x(ratioOf(H?.echo.latency.p50, http)), x(ratioOf(E?.echo.latency.p50, http)), '', 'echo.vsRawHttp');
    const runs = (v: LatencyResult | undefined) => (v?.runs && v.runs.length > 1 ? v.runs.map((p) => ms(p)).join(', ') : undefined);
    if (runs(H) || runs(E)) add('  echo p50 of each run (libraries taking turns), ms', runs(H) ?? '—', runs(E) ?? '—');
    add('Echo RTT p50 / p90 / p99 / max, ms', four(H?.echo) === '—' ? fail(r.latency, 'holdline') : four(H?.echo), four(E?.echo) === '—' ? fail(r.latency, 'engine.io') : four(E?.echo));
    add('Push one-way p50 / p90 / p99 / max, ms', four(H?.push), four(E?.push), x(ratioOf(H?.push.latency.p50, E?.push.latency.p50)));
  }
  for (const [n, per] of Object.entries(r.fanout?.sizes ?? {})) {
    const H = valueOf(per, 'holdline');
    const E = valueOf(per, 'engine.io');
    const any: FanoutResult | undefined = H ?? E;
    const label = any ? `Fan-out ${int(any.sessions)} sessions @ ${any.intervalMs} ms` : `Fan-out ${n}`;
    const lat = (f: FanoutResult | undefined) => (f ? `${ms(f.latency.p50)} / ${ms(f.latency.p99)}` : undefined);
    add(`${label}: p50 / p99, ms`, lat(H) ?? fail(per, 'holdline'), lat(E) ?? fail(per, 'engine.io'), x(ratioOf(H?.latency.p99, E?.latency.p99)), `fanout.${n}.p99`);
    const runs = (f: FanoutResult | undefined) => (f?.runs && f.runs.length > 1 ? f.runs.map((r) => ms(r.p99)).join(', ') : '—');
    if ((H?.runs?.length ?? 0) > 1 || (E?.runs?.length ?? 0) > 1) add('  p99 of each run, ms', runs(H), runs(E));
    const dl = (f: FanoutResult | undefined) => (f ? `${(f.deliveredRatio * 100).toFixed(1)}% (${int(f.delivered)}/${int(f.expected)})` : '—');
    add('  delivered / expected', dl(H), dl(E));
    const span = (f: FanoutResult | undefined) => (f ? `${ms(f.serverWriteSpanMs.p50)} / ${ms(f.serverWriteSpanMs.max)}` : '—');
    add('  server write span p50 / max, ms', span(H), span(E));
    add('  new connections while broadcasting', int(H?.connectionsOpened), int(E?.connectionsOpened));
    add('  CPU server / client', H ? `${pct(H.serverCpuPct)} / ${pct(H.clientCpuPct)}` : '—', E ? `${pct(E.serverCpuPct)} / ${pct(E.clientCpuPct)}` : '—');
    add('  idle heap per session, KB', kb(H?.idle.heapPerSession), kb(E?.idle.heapPerSession), x(ratioOf(H?.idle.heapPerSession, E?.idle.heapPerSession)), heapJudged(n) ? `idleHeap.${n}` : undefined);
    add('  idle RSS per session, KB', kb(H?.idle.rssPerSession), kb(E?.idle.rssPerSession), x(ratioOf(H?.idle.rssPerSession, E?.idle.rssPerSession)));
    const floor = r.fanout?.floor[n];
    if (floor?.ok) {
      const f = floor.value.heapPerSession;
      const above = (v: number | undefined) => (v === undefined ? undefined : v - f);
      add(`  idle heap above bare node:http (${kb(f)} KB), KB`, kb(above(H?.idle.heapPerSession)), kb(above(E?.idle.heapPerSession)), x(ratioOf(above(H?.idle.heapPerSession), above(E?.idle.heapPerSession))));
    }
  }
  if (r.loss) {
    const H = valueOf(r.loss, 'holdline');
    const E = valueOf(r.loss, 'engine.io');
    const s = (l: LossResult | undefined, d: 's2c' | 'c2s') => (l ? `${l[d].lost} / ${l[d].duplicated} / ${l[d].outOfOrder}` : undefined);
    const rate = H?.proxy.killRate ?? E?.proxy.killRate;
    add(`Faults (${rate === undefined ? '?' : Math.round(rate * 100)}% killed): s2c lost / dup / out-of-order`, s(H, 's2c') ?? fail(r.loss, 'holdline'), s(E, 's2c') ?? fail(r.loss, 'engine.io'), '', 'loss.zero');
    add('  c2s lost / dup / out-of-order', s(H, 'c2s') ?? '—', s(E, 'c2s') ?? '—');
    add('  sessions used / exchanges killed', H ? `${H.sessions} / ${H.proxy.faults.total}` : '—', E ? `${E.sessions} / ${E.proxy.faults.total}` : '—');
  }
  if (r.baseline?.ok) {
    const b = r.baseline.value;
    add(`Baseline: raw node:http RTT p50 / p99, ms, paced`, `${ms(b.httpRtt.p50)} / ${ms(b.httpRtt.p99)}`, '');
    add('Baseline: raw node:http RTT p50 / p99, ms, back to back', `${ms(b.httpRttHot.p50)} / ${ms(b.httpRttHot.p99)}`, '');
    add('Baseline: raw undici request RTT p50 / p99, ms', `${ms(b.undiciRtt.p50)} / ${ms(b.undiciRtt.p99)}`, '');
    add('Baseline: raw ws one-way, msg/s', int(b.ws.msgPerSec), '');
  } else if (r.baseline) {
    add('Baseline', `failed: ${firstLine(r.baseline.error).slice(0, 60)}`, '');
  }

  const header: Row = { metric: 'Metric', h: 'Holdline', e: 'Engine.IO', ratio: 'Holdline / Engine.IO', target: 'Target', result: 'Result' };
  const cols = ['metric', 'h', 'e', 'ratio', 'target', 'result'] as const;
  const width = cols.map((c) => Math.max(...[header, ...rows].map((row) => row[c].length), 3));
  const line = (row: Row) => `| ${cols.map((c, i) => row[c].padEnd(width[i] ?? 0)).join(' | ')} |`;
  const rule = `| ${width.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** One line per target, for the summary after the table. */
export function renderTargets(targets: TargetResult[]): string {
  return targets
    .map((t) => `${t.status === 'pass' ? 'PASS' : t.status === 'miss' ? 'MISS' : 'N/A '}  ${t.description}${t.ratio === null ? '' : ` (ratio ${t.ratio})`}`)
    .join('\n');
}

