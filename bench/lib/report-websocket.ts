/**
 * The WebSocket section's targets and table: Holdline on its WebSocket
 * transport against raw `ws` and Engine.IO's websocket transport.
 */
import type { WebSocketResults, WsLib } from '../workloads/websocket.js';
import { failed, int, kb, markdown, ms, pct, ratioOf, ratioTarget, verdictOf, x } from './report.js';
import type { TargetResult } from './results.js';

const of = <T>(p: Partial<Record<WsLib, { ok: true; value: T } | { ok: false; error: string }>>, lib: WsLib): T | undefined => {
  const o = p[lib];
  return o?.ok ? o.value : undefined;
};

const DIRS = [
  ['s2c', 'server-to-client', 'server→client'],
  ['c2s', 'client-to-server', 'client→server'],
] as const;

export function websocketTargets(r: WebSocketResults | undefined): TargetResult[] {
  if (!r) return [];
  const out: TargetResult[] = [];
  const H = of(r.throughput, 'holdline');
  const W = of(r.throughput, 'ws');
  const E = of(r.throughput, 'engine.io');
  for (const [dir, name] of DIRS) {
    out.push(ratioTarget(`websocket.throughput.${dir}.vsWs`, `WebSocket: throughput ${name} >= 0.6x raw ws`, H?.[dir].msgPerSec, W?.[dir].msgPerSec, { min: 0.6 }));
    out.push(ratioTarget(`websocket.throughput.${dir}.vsEngineIo`, `WebSocket: throughput ${name} >= Engine.IO's websocket transport`, H?.[dir].msgPerSec, E?.[dir].msgPerSec, { min: 1 }));
  }
  out.push(ratioTarget('websocket.echo.vsWs', 'WebSocket: echo RTT p50 <= 1.3x raw ws', of(r.latency, 'holdline')?.echo.latency.p50, of(r.latency, 'ws')?.echo.latency.p50, { max: 1.3 }));
  return out;
}

export function renderWebSocketTable(r: WebSocketResults, targets: TargetResult[]): string {
  const rows: string[][] = [['WebSocket', 'Holdline', 'raw ws', 'Engine.IO (websocket)', 'Holdline / ws', 'Holdline / Engine.IO', 'Target', 'Result']];
  const add = (metric: string, h: string, w: string, e: string, rw = '', re = '', target = '', ...ids: string[]) =>
    rows.push([metric, h, w, e, rw, re, target, ids.map((id) => verdictOf(targets, id)).filter(Boolean).join(', ')]);
  const t = r.throughput;
  const [H, W, E] = [of(t, 'holdline'), of(t, 'ws'), of(t, 'engine.io')];
  for (const [dir, , arrow] of DIRS) {
    const rate = (v: typeof H, lib: WsLib) => (v ? int(v[dir].msgPerSec) : failed(t[lib]));
    add(`Throughput ${arrow}, msg/s`, rate(H, 'holdline'), rate(W, 'ws'), rate(E, 'engine.io'), x(ratioOf(H?.[dir].msgPerSec, W?.[dir].msgPerSec)), x(ratioOf(H?.[dir].msgPerSec, E?.[dir].msgPerSec)), '≥ 0.6x ws, ≥ 1x Engine.IO', `websocket.throughput.${dir}.vsWs`, `websocket.throughput.${dir}.vsEngineIo`);
    const runs = (v: typeof H) => (v && v.runs[dir].length > 1 ? v.runs[dir].map(int).join(', ') : '—');
    if ((H?.runs[dir].length ?? 0) > 1) add('  each run, msg/s', runs(H), runs(W), runs(E));
    const cpu = (v: typeof H) => (v ? `${pct(v[dir].serverCpuPct)} / ${pct(v[dir].clientCpuPct)}` : '—');
    add('  CPU server / client', cpu(H), cpu(W), cpu(E));
  }
  const l = r.latency;
  const [lH, lW, lE] = [of(l, 'holdline'), of(l, 'ws'), of(l, 'engine.io')];
  const two = (v: typeof lH, k: 'echo' | 'push', lib: WsLib) => (v ? `${ms(v[k].latency.p50)} / ${ms(v[k].latency.p99)}` : k === 'echo' ? failed(l[lib]) : '—');
  add('Echo RTT p50 / p99, ms', two(lH, 'echo', 'holdline'), two(lW, 'echo', 'ws'), two(lE, 'echo', 'engine.io'), x(ratioOf(lH?.echo.latency.p50, lW?.echo.latency.p50)), x(ratioOf(lH?.echo.latency.p50, lE?.echo.latency.p50)), '≤ 1.3x ws (p50)', 'websocket.echo.vsWs');
  const runs = (v: typeof lH) => (v?.runs && v.runs.length > 1 ? v.runs.map((p) => ms(p)).join(', ') : '—');
  if ((lH?.runs?.length ?? 0) > 1) add('  echo p50 of each run, ms', runs(lH), runs(lW), runs(lE));
  add('Push one-way p50 / p99, ms', two(lH, 'push', 'holdline'), two(lW, 'push', 'ws'), two(lE, 'push', 'engine.io'), x(ratioOf(lH?.push.latency.p50, lW?.push.latency.p50)), x(ratioOf(lH?.push.latency.p50, lE?.push.latency.p50)));
  const i = r.idle;
  const [iH, iW, iE] = [of(i, 'holdline'), of(i, 'ws'), of(i, 'engine.io')];
  const heap = (v: typeof iH, lib: WsLib) => (v ? kb(v.heapPerSession) : failed(i[lib]));
  add(`Idle heap per session (${int(iH?.sessions ?? iW?.sessions)} sessions), KB`, heap(iH, 'holdline'), heap(iW, 'ws'), heap(iE, 'engine.io'), x(ratioOf(iH?.heapPerSession, iW?.heapPerSession)), x(ratioOf(iH?.heapPerSession, iE?.heapPerSession)));
  add('  idle RSS per session, KB', kb(iH?.rssPerSession), kb(iW?.rssPerSession), kb(iE?.rssPerSession));
  return markdown(rows);
}
